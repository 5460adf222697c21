/**
 * Prometheus metrics of an @idem/cache, fed by its typed events; the gauges (L1 size, breaker,
 * bus) are read from `stats()` at scrape time, so they cost nothing between scrapes.
 */
import type { BreakerState, Cache, CacheEventMap } from '@idem/cache';
import { Counter, Gauge, Histogram } from 'prom-client';
import { defaults, ensureFree, resolve, unregister, type MetricsHandle, type MetricsOptions } from './shared.js';
import type { Subscribable, Subscriber } from './shared.js';

/** The part of a cache these metrics read: its events and its stats. */
export type ObservedCache = Pick<Cache, 'events' | 'stats'>;

type StaleReason = CacheEventMap['stale']['reason'];
/** Why a stale value was served (the `reason` label). */
export const STALE_REASONS = ['error', 'timeout', 'backoff'] as const satisfies readonly StaleReason[];
// A compile error here means @idem/cache added a stale reason: add it to STALE_REASONS.
const allReasons: Exclude<StaleReason, (typeof STALE_REASONS)[number]> extends never ? true : never = true;
void allReasons;

export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const satisfies readonly BreakerState[];
const allStates: Exclude<BreakerState, (typeof BREAKER_STATES)[number]> extends never ? true : never = true;
void allStates;

type Layer = CacheEventMap['hit']['layer'];
const LAYERS = ['l1', 'l2', 'durable'] as const satisfies readonly Layer[];
// A compile error here means @idem/cache added a tier: add it to LAYERS.
const allLayers: Exclude<Layer, (typeof LAYERS)[number]> extends never ? true : never = true;
void allLayers;
/** The codes of the cache's L2 errors (CacheError.code); another code still counts, from its first error. */
const L2_ERROR_CODES = ['cache_l2_unavailable', 'cache_l2_timeout', 'cache_breaker_open'];
type InvalidateKind = CacheEventMap['invalidate']['kind'];
const INVALIDATE_KINDS = ['set', 'delete', 'tags', 'prefix', 'clear'] as const satisfies readonly InvalidateKind[];
// A compile error here means @idem/cache added an invalidation kind: add it to INVALIDATE_KINDS.
const allKinds: Exclude<InvalidateKind, (typeof INVALIDATE_KINDS)[number]> extends never ? true : never = true;
void allKinds;
const ORIGINS = ['local', 'remote'] as const;

export const LOADER_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const KNOWN = ['registry', 'prefix'];

/**
 * Registers the cache's metrics in `registry`. Two caches in one registry need two prefixes.
 *
 * @example
 * const metrics = cacheMetrics(cache, { registry });
 */
export function cacheMetrics(cache: ObservedCache, options: MetricsOptions): MetricsHandle {
  const c = cache as Partial<ObservedCache> | null;
  if (typeof c?.events?.on !== 'function' || typeof c.stats !== 'function') {
    throw new TypeError('@idem/prometheus: cacheMetrics() takes what createCache() returns');
  }
  const { registry, prefix } = resolve(options, KNOWN, defaults.cache.prefix);
  const name = (base: string): string => `${prefix}${base}`;
  const names = [
    'hits_total',
    'misses_total',
    'loader_runs_total',
    'loader_duration_seconds',
    'stale_served_total',
    'l2_errors_total',
    'durable_errors_total',
    'invalidations_total',
    'breaker_state',
    'bus_connected',
    'l1_entries',
    'l1_bytes',
    'loader_waits_total',
    'warm_runs_total',
  ].map(name);
  ensureFree(registry, names, 'cacheMetrics()');
  const registers = [registry];

  const hits = new Counter({
    name: name('hits_total'),
    help: 'Lookups that found a fresh value, by tier (l1: memory, l2: Redis, durable: the durable tier).',
    labelNames: ['layer'],
    registers,
  });
  const misses = new Counter({
    name: name('misses_total'),
    help: 'Lookups that found no fresh value in a tier, by tier.',
    labelNames: ['layer'],
    registers,
  });
  const loads = new Counter({
    name: name('loader_runs_total'),
    help: 'Loader runs, by result (ok, or error when it threw).',
    labelNames: ['result'],
    registers,
  });
  const loadTime = new Histogram({
    name: name('loader_duration_seconds'),
    help: 'Loader run time, by result.',
    labelNames: ['result'],
    buckets: LOADER_BUCKETS,
    registers,
  });
  const stale = new Counter({
    name: name('stale_served_total'),
    help: 'Expired values served within grace, by reason.',
    labelNames: ['reason'],
    registers,
  });
  const l2Errors = new Counter({
    name: name('l2_errors_total'),
    help: 'Redis tier calls that failed, timed out or were refused by the open breaker, by error code.',
    labelNames: ['code'],
    registers,
  });
  const durableErrors = new Counter({
    name: name('durable_errors_total'),
    help: 'Durable tier calls that failed or timed out, by operation (read, write: the request goes on; an invalidation is retried).',
    labelNames: ['operation'],
    registers,
  });
  const invalidations = new Counter({
    name: name('invalidations_total'),
    help: 'L1 invalidations, by kind and origin (remote: asked by another instance over the bus).',
    labelNames: ['kind', 'origin'],
    registers,
  });
  new Gauge({
    name: name('breaker_state'),
    help: 'Circuit breaker of the Redis tier: 1 for the current state, 0 for the others.',
    labelNames: ['state'],
    registers,
    collect() {
      const current = cache.stats().l2.breaker;
      for (const state of BREAKER_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });
  new Gauge({
    name: name('bus_connected'),
    help: 'Whether the invalidation bus is subscribed (1) or not (0; always 0 without Redis).',
    registers,
    collect() {
      this.set(cache.stats().bus.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: name('l1_entries'),
    help: 'Entries in the in-memory tier.',
    registers,
    collect() {
      this.set(cache.stats().l1.size);
    },
  });

  new Gauge({
    name: name('l1_bytes'),
    help: 'Estimated bytes held by the in-memory tier (0 unless l1.maxBytes is set).',
    registers,
    collect() {
      this.set(cache.stats().l1.bytes);
    },
  });
  new Counter({
    name: name('loader_waits_total'),
    help: "Lookups that waited for another process's loader instead of running their own (cross-process single-flight).",
    registers,
    collect() {
      // The cache counts these itself (no event): mirrored at scrape time, a counter still.
      this.reset();
      this.inc(cache.stats().waits);
    },
  });

  const warms = new Counter({
    name: name('warm_runs_total'),
    help: 'Turns of warmEvery() schedules, by schedule and outcome (stored, failed, skipped: another run or process had it).',
    labelNames: ['schedule', 'outcome'],
    registers,
  });

  for (const layer of LAYERS) {
    hits.inc({ layer }, 0);
    misses.inc({ layer }, 0);
  }
  for (const result of ['ok', 'error']) {
    loads.inc({ result }, 0);
    loadTime.zero({ result });
  }
  for (const reason of STALE_REASONS) stale.inc({ reason }, 0);
  for (const code of L2_ERROR_CODES) l2Errors.inc({ code }, 0);
  for (const kind of INVALIDATE_KINDS) for (const origin of ORIGINS) invalidations.inc({ kind, origin }, 0);

  type Listeners = { [K in keyof CacheEventMap]?: (event: CacheEventMap[K]) => void };
  const listeners: Listeners = {
    hit: (e) => hits.inc({ layer: e.layer }),
    miss: (e) => misses.inc({ layer: e.layer }),
    load(e) {
      const result = e.ok ? 'ok' : 'error';
      loads.inc({ result });
      loadTime.observe({ result }, e.durationMs / 1000);
    },
    stale: (e) => stale.inc({ reason: e.reason }),
    l2Error: (e) => l2Errors.inc({ code: e.error.code }),
    durableError: (e) => durableErrors.inc({ operation: e.operation }),
    invalidate: (e) => invalidations.inc({ kind: e.kind, origin: e.origin }),
    // Schedule names are the application's own, few and fixed (each is a lock name).
    warm: (e) => warms.inc({ schedule: e.name, outcome: e.outcome }),
  };
  const entries = Object.entries(listeners) as [keyof CacheEventMap & string, Subscriber][];
  const target = cache.events as unknown as Subscribable;
  for (const [event, listener] of entries) target.on(event, listener);

  let closed = false;
  return {
    names,
    close() {
      if (closed) return;
      closed = true;
      for (const [event, listener] of entries) target.off(event, listener);
      unregister(registry, names);
    },
  };
}
