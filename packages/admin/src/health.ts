/**
 * `GET /health`: is the store reachable and how fast does it answer, and what state is the
 * cache's Redis tier in. The store's probe is its `ping()` where it has one, else a `get` of a
 * key nobody uses (one read, as cheap as a replay's); either is bounded by `healthTimeout`.
 */
import type { IdempotencyStore } from '@idem/core';
import { sha256 } from '@idem/core/adapter';
import type { AdminCache } from './types.js';

/** What `/health` reports. */
export interface HealthReport {
  /** `ok`; `degraded` when the cache's breaker is not closed; `unavailable` when the store is not reachable. */
  status: 'ok' | 'degraded' | 'unavailable';
  store: {
    name: string;
    reachable: boolean;
    /** How long the probe took (to its failure, or to `healthTimeout`). */
    latencyMs: number;
    probe: 'ping' | 'get';
    /** Why it is not reachable; what the store threw goes to the logger only. */
    error?: 'timeout' | 'failed';
  };
  cache?: {
    breaker: string;
    bus: { connected: boolean };
    l1: { size: number };
  };
}

// A stored key no request can have: hashed like every key, from a value no scope and key hash to.
const PROBE_KEY = sha256('idem admin health probe');

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Probes the store (and reads the cache's state); never rejects. */
export async function checkHealth(
  store: IdempotencyStore,
  cache: AdminCache | undefined,
  timeoutMs: number,
  onError: (error: unknown) => void,
): Promise<HealthReport> {
  const probe = typeof store.ping === 'function' ? 'ping' : 'get';
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    (probe === 'ping' ? (store.ping as () => Promise<void>)() : store.get(PROBE_KEY)).then(
      () => 'ok' as const,
      (error: unknown) => {
        onError(error);
        return 'failed' as const;
      },
    ),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, 'timeout');
    }),
  ]);
  clearTimeout(timer);
  const report: HealthReport = {
    status: outcome === 'ok' ? 'ok' : 'unavailable',
    store: {
      name: store.name,
      reachable: outcome === 'ok',
      latencyMs: round(performance.now() - started),
      probe,
      ...(outcome === 'ok' ? {} : { error: outcome }),
    },
  };
  if (cache !== undefined) {
    const stats = cache.stats();
    report.cache = {
      breaker: stats.l2.breaker,
      bus: { connected: stats.bus.connected },
      l1: { size: stats.l1.size },
    };
    if (report.status === 'ok' && stats.l2.breaker !== 'closed') report.status = 'degraded';
  }
  return report;
}
