/**
 * Tracing of an @idem/cache: what the cache did (a hit, a miss, a load, a stale value served, a
 * Redis error) as events on the span active where it was called. For a load shared by several
 * callers (single-flight), the load's events land on the span of the caller that started it.
 * Cache keys are the application's and may carry identifiers: they are not recorded.
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTR, activeSpan, eventsOf, subscribe, type TracingHandle } from './shared.js';

/** The cache's event payloads this reads (a structural copy of @idem/cache's CacheEventMap). */
export interface TracedCacheEvents {
  hit: { layer: 'l1' | 'l2' };
  miss: { layer: 'l1' | 'l2' };
  load: { ok: boolean; durationMs: number };
  stale: { reason: string; ageMs: number };
  l2Error: { operation: string; error: { code: string } };
}

/** What `createCache()` returns, as far as tracing reads it. */
export interface WithCacheEvents {
  readonly events: {
    on(event: never, listener: never): unknown;
    off(event: never, listener: never): unknown;
  };
}

/**
 * Adds the cache's events to the active span.
 *
 * @example
 * const cache = createCache({ redis, namespace: 'records' });
 * cacheTracing(cache);
 */
export function cacheTracing(cache: WithCacheEvents | readonly WithCacheEvents[]): TracingHandle {
  const targets = eventsOf(cache, 'cacheTracing()', 'createCache()');
  const event = (name: string, attributes: Attributes): void => {
    activeSpan()?.addEvent(name, attributes);
  };
  const listeners: { [K in keyof TracedCacheEvents]: (e: TracedCacheEvents[K]) => void } = {
    hit: (e) => event('idem.cache.hit', { [ATTR.cacheLayer]: e.layer }),
    miss: (e) => event('idem.cache.miss', { [ATTR.cacheLayer]: e.layer }),
    load: (e) => event('idem.cache.load', { [ATTR.cacheOk]: e.ok, [ATTR.cacheDurationMs]: e.durationMs }),
    stale: (e) => event('idem.cache.stale', { [ATTR.cacheReason]: e.reason, [ATTR.cacheAgeMs]: e.ageMs }),
    l2Error: (e) =>
      event('idem.cache.l2_error', { [ATTR.cacheOperation]: e.operation, [ATTR.cacheCode]: e.error.code }),
  };
  return subscribe(targets, listeners);
}
