/**
 * Helpers of the @idem/cache suites: a load held in flight, event waits (no sleep-and-hope) and a
 * fake clock. The generic waits are in ../harness/wait.ts, the chaos proxy in ../harness.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createCache, type Cache, type CacheEventMap, type CacheOptions } from '@idem/cache';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
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

/** What {@link useRedisCaches} hands a test file. */
export interface RedisCaches {
  /** The file's redis-server (started before the first test). */
  readonly server: RedisServer;
  /** A cache on a client of its own, as one instance of a service has; closed after the test. */
  open(options?: CacheOptions): Cache;
  /** A memory-only cache, closed after the test. */
  memory(options?: CacheOptions): Cache;
  /** Closes `cache` (and disconnects `client`) after the test, for caches made another way. */
  track(cache: Cache, client?: { disconnect(): void }): void;
}

/**
 * A redis-server for the test file that calls it, and caches on it that are closed after each
 * test, each on its own client. Registers the file's hooks.
 */
export function useRedisCaches(): RedisCaches {
  let server: RedisServer | undefined;
  const clients: { disconnect(): void }[] = [];
  const caches: Cache[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((cache) => cache.close()));
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const started = (): RedisServer => {
    if (server === undefined) throw new Error('the redis-server of this file is not started yet');
    return server;
  };
  const track = (cache: Cache, client?: { disconnect(): void }): void => {
    caches.push(cache);
    if (client !== undefined) clients.push(client);
  };
  return {
    get server() {
      return started();
    },
    open(options = {}) {
      const redis = new Redis(started().url);
      const cache = createCache({ ...options, redis });
      track(cache, redis);
      return cache;
    },
    memory(options = {}) {
      const cache = createCache(options);
      track(cache);
      return cache;
    },
    track,
  };
}
