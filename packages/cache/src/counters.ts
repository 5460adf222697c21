import type { CacheEvents, CacheLayer } from './events.js';
import type { Entry } from './memory-tier.js';
import type { BreakerState, CacheStats, Logger } from './types.js';

/** Why a stale value was served: the loader failed, was too slow, or failed a moment ago. */
export type StaleReason = 'error' | 'timeout' | 'backoff';

/**
 * The counters behind `stats()`, each counted together with the event (and log line) that tells
 * the same thing, so the numbers and the events never disagree.
 * @internal
 */
export class CacheCounters {
  l1Hits = 0;
  l1Misses = 0;
  l2Hits = 0;
  l2Misses = 0;
  durableHits = 0;
  durableMisses = 0;
  staleError = 0;
  staleTimeout = 0;
  staleBackoff = 0;
  loads = 0;
  loadErrors = 0;
  loadMs = 0;
  loadMaxMs = 0;
  /** Waits on another process's loader. */
  waits = 0;
  /** Changes sent to Redis (and from there to the other instances). */
  published = 0;

  constructor(
    private readonly events: CacheEvents,
    private readonly logger: Logger,
    private readonly clock: () => number,
  ) {}

  /** A fresh value was found in `layer`. */
  hit(key: string, layer: CacheLayer): void {
    if (layer === 'l1') this.l1Hits++;
    else if (layer === 'l2') this.l2Hits++;
    else this.durableHits++;
    this.events.emit('hit', { key, layer });
  }

  /** `layer` had no fresh value. */
  miss(key: string, layer: CacheLayer): void {
    if (layer === 'l1') this.l1Misses++;
    else if (layer === 'l2') this.l2Misses++;
    else this.durableMisses++;
    this.events.emit('miss', { key, layer });
  }

  /** A loader started at `started` (performance.now()) finished; `error` when it threw. */
  loaded(key: string, started: number, error: unknown): void {
    const durationMs = performance.now() - started;
    this.loadMs += durationMs;
    if (durationMs > this.loadMaxMs) this.loadMaxMs = durationMs;
    if (error !== undefined) {
      this.loadErrors++;
      this.logger.debug({ err: error, key }, 'idem cache: loader failed');
      this.events.emit('load', { key, ok: false, durationMs, error });
    } else {
      this.events.emit('load', { key, ok: true, durationMs });
    }
  }

  /** An expired `entry` is being served within its grace. */
  staleServed(key: string, entry: Entry, reason: StaleReason): void {
    if (reason === 'error') this.staleError++;
    else if (reason === 'timeout') this.staleTimeout++;
    else this.staleBackoff++;
    this.events.emit('stale', { key, reason, ageMs: Math.max(0, this.clock() - entry.expiresAt) });
  }

  /** The counters with the tiers' own gauges, as `stats()` answers them. */
  stats(
    l1: { size: number; bytes: number; maxBytes: number | undefined },
    l2: { errors: number; breakerState: BreakerState } | undefined,
    bus: { received: number; connected: boolean } | undefined,
    durable: { errors: number; pending: number; breakerState: BreakerState } | undefined,
  ): CacheStats {
    const loads = this.loads;
    return {
      l1: { hits: this.l1Hits, misses: this.l1Misses, size: l1.size, bytes: l1.bytes, maxBytes: l1.maxBytes },
      l2: { hits: this.l2Hits, misses: this.l2Misses, errors: l2?.errors ?? 0, breaker: l2?.breakerState ?? 'closed' },
      durable: {
        hits: this.durableHits,
        misses: this.durableMisses,
        errors: durable?.errors ?? 0,
        pending: durable?.pending ?? 0,
        breaker: durable?.breakerState ?? 'closed',
      },
      stale: {
        served: this.staleError + this.staleTimeout + this.staleBackoff,
        error: this.staleError,
        timeout: this.staleTimeout,
        backoff: this.staleBackoff,
      },
      loader: {
        runs: loads,
        errors: this.loadErrors,
        latency: { count: loads, meanMs: loads === 0 ? 0 : this.loadMs / loads, maxMs: this.loadMaxMs },
      },
      waits: this.waits,
      bus: { published: this.published, received: bus?.received ?? 0, connected: bus?.connected ?? false },
    };
  }
}
