import { TypedEvents } from '@idem/core';
import type { CacheError } from './errors.js';
import type { BreakerState } from './types.js';

/** A tier a read can hit or miss: memory, Redis, the durable tier. */
export type CacheLayer = 'l1' | 'l2' | 'durable';

/** Payloads of the cache's events. Times are in milliseconds. */
export interface CacheEventMap {
  /** A fresh value was found in a tier. */
  hit: { key: string; layer: CacheLayer };
  /** A tier had no fresh value. */
  miss: { key: string; layer: CacheLayer };
  /** The loader ran (`ok: false` when it threw). */
  load: { key: string; ok: boolean; durationMs: number; error?: unknown };
  /** An expired value was served within grace. `ageMs`: how long past its ttl. */
  stale: { key: string; reason: 'error' | 'timeout' | 'backoff'; ageMs: number };
  /** A Redis call failed, timed out, or was refused by the open breaker. */
  l2Error: { operation: string; error: CacheError };
  /**
   * A call of the durable tier failed or timed out (`operation`: `read`, `write`, or the
   * invalidation's kind: `delete`, `tags`, `prefix`, `clear`). A read that fails is a miss; a
   * write that fails is followed by a delete of the key there; an invalidation that fails is
   * queued and retried until it lands (and then repeated on Redis).
   */
  durableError: { operation: string; error: unknown };
  /** The circuit breaker changed state. */
  breaker: { state: BreakerState; previous: BreakerState };
  /** L1 entries were dropped; `origin: 'remote'` when another instance asked over the bus. */
  invalidate: {
    kind: 'set' | 'delete' | 'tags' | 'prefix' | 'clear';
    keys?: readonly string[];
    tags?: readonly string[];
    /** For `kind: 'prefix'`. */
    prefix?: string;
    origin: 'local' | 'remote';
  };
  /**
   * A `warmEvery` schedule's turn came: `stored` (how many entries, how long), `failed` (its
   * entries function threw), or `skipped` because its previous run still runs here (`overlap`) or
   * another process has this turn (`elsewhere`).
   */
  warm: {
    name: string;
    outcome: 'stored' | 'failed' | 'skipped';
    entries: number;
    durationMs: number;
    reason?: 'overlap' | 'elsewhere';
    error?: unknown;
  };
  /**
   * The bus connection changed. On `recovered`, every L1 entry written before it is treated as
   * expired (re-checked against Redis, kept only as a stale fallback), since messages may have
   * been missed while it was down; invalidations that failed meanwhile are replayed.
   */
  bus: { state: 'connected' | 'disconnected' | 'recovered' };
}

/**
 * The cache's typed events. A listener that throws never affects a cache call.
 *
 * @example
 * cache.events.on('stale', ({ key, reason }) => metrics.stale.inc({ reason }));
 */
export class CacheEvents extends TypedEvents<CacheEventMap> {}
