/**
 * Helpers of the @idem/cache suites: a load held in flight, event waits (no sleep-and-hope) and a
 * fake clock. The generic waits are in ../harness/wait.ts, the chaos proxy in ../harness.
 */
import { randomUUID } from 'node:crypto';
import type { Cache, CacheEventMap } from '@idem/cache';
import { deferred, type Deferred } from '../harness/wait.js';

/**
 * Starts `cache.getOrSet(key)` with a loader held open until `gate` settles; resolves once the
 * loader is running, so the load is known to be in flight.
 */
export async function heldLoad<T>(cache: Cache, key: string): Promise<{ call: Promise<T>; gate: Deferred<T> }> {
  const gate = deferred<T>();
  const started = deferred();
  const call = cache.getOrSet(key, () => {
    started.resolve();
    return gate.promise;
  });
  await started.promise;
  return { call, gate };
}

/** A random key, so tests never share state. */
export const newKey = (label = 'k'): string => `${label}-${randomUUID()}`;

/** Resolves with the first `event` whose payload passes `match`; rejects after `timeoutMs`. */
export function nextEvent<K extends keyof CacheEventMap>(
  cache: Cache,
  event: K,
  match: (payload: CacheEventMap[K]) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<CacheEventMap[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cache.events.off(event, listener);
      reject(new Error(`no '${event}' event within ${timeoutMs}ms`));
    }, timeoutMs);
    const listener = (payload: CacheEventMap[K]): void => {
      if (!match(payload)) return;
      clearTimeout(timer);
      cache.events.off(event, listener);
      resolve(payload);
    };
    cache.events.on(event, listener);
  });
}

/** Resolves once the cache's invalidation bus is subscribed. */
export async function busConnected(cache: Cache, timeoutMs = 5_000): Promise<void> {
  if (cache.stats().bus.connected) return;
  await nextEvent(cache, 'bus', (e) => e.state === 'connected' || e.state === 'recovered', timeoutMs);
}

/** A manual epoch clock for TTL and grace boundaries. */
export interface FakeClock {
  (): number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let now = start;
  const clock = (() => now) as FakeClock;
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}
