import type { CacheContext } from './context.js';
import { toResult } from './entry.js';
import { CacheError } from './errors.js';
import type { Flight } from './single-flight.js';
import type { CacheResult } from './types.js';

/** One caller's patience, in milliseconds; undefined waits as long as the flight takes. @internal */
export interface CallerTimeouts {
  /** Soft timeout: past it, a stale value at hand (or one that turns up later) is served. */
  timeout: number | undefined;
  /** Hard timeout: past it, with nothing stale to serve, the caller gets `cache_hard_timeout`. */
  hardTimeout: number | undefined;
}

/**
 * Waits for a flight on behalf of one caller, with that caller's soft and hard timeouts: each
 * caller of a shared flight gives up (or falls back to stale) on its own terms, while the load goes
 * on for the others and for the cache. A failed load is answered with a stale value within grace
 * when there is one, with the loader's own error otherwise.
 * @internal
 */
export function joinFlight<T>(
  context: CacheContext,
  key: string,
  flight: Flight,
  timeouts: CallerTimeouts,
): Promise<CacheResult<T>> {
  const { counters, options } = context;
  return new Promise<CacheResult<T>>((resolve, reject) => {
    let settled = false;
    let softPassed = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (): void => {
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      unsubscribe();
    };
    const serveStale = (reason: 'error' | 'timeout'): boolean => {
      const stale = flight.stale;
      if (settled || stale === undefined || options.clock() >= stale.staleUntil) return false;
      finish();
      counters.staleServed(key, stale, reason);
      resolve(toResult<T>(stale, true, flight.staleSource));
      return true;
    };
    // A stale value may turn up (from Redis) after the soft timeout has already passed.
    const unsubscribe = flight.onStale(() => {
      if (softPassed) serveStale('timeout');
    });
    if (timeouts.timeout !== undefined) {
      timers.push(
        setTimeout(function softTimeout() {
          softPassed = true;
          serveStale('timeout');
        }, timeouts.timeout),
      );
    }
    if (timeouts.hardTimeout !== undefined) {
      const hardTimeout = timeouts.hardTimeout;
      timers.push(
        setTimeout(function hardTimeoutPassed() {
          if (settled || serveStale('timeout')) return;
          finish();
          const message = `no value for ${JSON.stringify(key)} within ${hardTimeout}ms and nothing stale to serve`;
          reject(new CacheError('cache_hard_timeout', message, { key }));
        }, hardTimeout),
      );
    }
    flight.promise.then(
      ({ entry, source }) => {
        if (settled) return;
        finish();
        resolve(toResult<T>(entry, false, source));
      },
      (error: unknown) => {
        if (settled || serveStale('error')) return;
        finish();
        reject(error);
      },
    );
  });
}
