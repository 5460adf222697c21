import { EventEmitter } from 'node:events';
import type { CacheError } from './errors.js';
import type { BreakerState } from './types.js';

/** Payloads of the cache's events. Times are in milliseconds. */
export interface CacheEventMap {
  /** A fresh value was found in a tier. */
  hit: { key: string; layer: 'l1' | 'l2' };
  /** A tier had no fresh value. */
  miss: { key: string; layer: 'l1' | 'l2' };
  /** The loader ran (`ok: false` when it threw). */
  load: { key: string; ok: boolean; durationMs: number; error?: unknown };
  /** An expired value was served within grace. `ageMs`: how long past its ttl. */
  stale: { key: string; reason: 'error' | 'timeout' | 'backoff'; ageMs: number };
  /** A Redis call failed, timed out, or was refused by the open breaker. */
  l2Error: { operation: string; error: CacheError };
  /** The circuit breaker changed state. */
  breaker: { state: BreakerState; previous: BreakerState };
  /** L1 entries were dropped; `origin: 'remote'` when another instance asked over the bus. */
  invalidate: { kind: 'set' | 'delete' | 'tags' | 'clear'; keys?: readonly string[]; tags?: readonly string[]; origin: 'local' | 'remote' };
  /**
   * The bus connection changed. On `recovered`, every L1 entry written before it is treated as
   * expired (re-checked against Redis, kept only as a stale fallback), since messages may have
   * been missed while it was down; invalidations that failed meanwhile are replayed.
   */
  bus: { state: 'connected' | 'disconnected' | 'recovered' };
}

type Listener<K extends keyof CacheEventMap> = (event: CacheEventMap[K]) => void;

/**
 * A typed event emitter. A listener that throws never affects a cache call.
 *
 * @example
 * cache.events.on('stale', ({ key, reason }) => metrics.stale.inc({ reason }));
 */
export class CacheEvents {
  readonly #emitter = new EventEmitter();

  /** Adds a listener. */
  on<K extends keyof CacheEventMap>(event: K, listener: Listener<K>): this {
    this.#emitter.on(event, listener);
    return this;
  }

  /** Removes a listener. */
  off<K extends keyof CacheEventMap>(event: K, listener: Listener<K>): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /** Adds a listener called at most once. */
  once<K extends keyof CacheEventMap>(event: K, listener: Listener<K>): this {
    this.#emitter.once(event, listener);
    return this;
  }

  /** @internal */
  hasListeners(event: keyof CacheEventMap): boolean {
    return this.#emitter.listenerCount(event) > 0;
  }

  /** @internal */
  emit<K extends keyof CacheEventMap>(event: K, payload: CacheEventMap[K]): void {
    if (this.#emitter.listenerCount(event) === 0) return;
    for (const listener of this.#emitter.rawListeners(event) as Listener<K>[]) {
      try {
        listener.call(this, payload);
      } catch {
        // An observer's bug must not turn a cache hit into an error.
      }
    }
  }
}
