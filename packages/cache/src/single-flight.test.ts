import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from './cache.js';
import type { CacheEventMap } from './events.js';
import type { Cache, CacheOptions } from './types.js';

/** The part of the test harness's RedisServer used here. */
interface RedisServer {
  url: string;
  stop(): Promise<void>;
}

// A non-literal specifier: the harness is plain JavaScript outside this package's type check.
const harness = new URL('../../../test/harness/redis.mjs', import.meta.url).href;

let server: RedisServer;
const clients: Redis[] = [];
const caches: Cache[] = [];

beforeAll(async () => {
  const { RedisServer } = (await import(harness)) as { RedisServer: { start(): Promise<RedisServer> } };
  server = await RedisServer.start();
});
afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  for (const client of clients.splice(0)) client.disconnect();
});
afterAll(async () => {
  await server?.stop();
});

function nextEvent<K extends keyof CacheEventMap>(
  cache: Cache,
  event: K,
  match: (payload: CacheEventMap[K]) => boolean,
): Promise<CacheEventMap[K]> {
  return new Promise((resolve) => {
    const listener = (payload: CacheEventMap[K]): void => {
      if (!match(payload)) return;
      cache.events.off(event, listener);
      resolve(payload);
    };
    cache.events.on(event, listener);
  });
}

/** Rejects if `promise` has not settled within `ms`: far less than the polling backstop below. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms}ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** An instance of a service: its own client and cache, with its bus subscribed. */
async function instance(options: CacheOptions = {}): Promise<Cache> {
  const redis = new Redis(server.url);
  clients.push(redis);
  // A waiter can only be woken by the bus: polling and the lock's lease take far longer than `within`.
  const cache = createCache({ namespace: 'single-flight', pollInterval: '30s', lockTtl: '30s', ...options, redis });
  caches.push(cache);
  if (!cache.stats().bus.connected) await nextEvent(cache, 'bus', (e) => e.state === 'connected');
  return cache;
}

interface Gate {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface HeldLock {
  a: Cache;
  b: Cache;
  key: string;
  /** a's call, whose loader holds the lock until `gate` settles. */
  first: Promise<unknown>;
  /** b's call, waiting for a's value. */
  second: Promise<unknown>;
  gate: Gate;
}

/** Instance `a` holds the loader lock of a fresh key and instance `b` waits for it. */
async function lockHeldByA(): Promise<HeldLock> {
  const a = await instance();
  const b = await instance();
  const key = `k-${randomUUID()}`;
  let gate!: Gate;
  const held = new Promise<unknown>((resolve, reject) => (gate = { resolve, reject }));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const first = a.getOrSet(key, () => {
    started();
    return held;
  });
  await running;
  // b's miss in Redis is told in the same tick as it starts waiting on the bus.
  const waiting = nextEvent(b, 'miss', (e) => e.key === key && e.layer === 'l2');
  const second = b.getOrSet(key, () => 'from b');
  await waiting;
  return { a, b, key, first, second, gate };
}

describe('the loader lock', () => {
  it('is released when the loader fails: the waiting instance loads at once', async () => {
    const { first, second, gate } = await lockHeldByA();
    gate.reject(new Error('upstream down'));
    await expect(first).rejects.toThrow('upstream down');
    expect(await within(2_000, second, 'the waiting instance')).toBe('from b');
  });

  it('is released when the load was invalidated meanwhile: the waiter loads its own', async () => {
    const { a, key, first, second, gate } = await lockHeldByA();
    await a.delete(key);
    gate.resolve('from a, before the delete');
    expect(await first).toBe('from a, before the delete');
    expect(await within(2_000, second, 'the waiting instance')).toBe('from b');
  });

  it('is released when the value cannot be written to Redis: the waiter loads its own', async () => {
    const { a, first, second, gate } = await lockHeldByA();
    const reported = nextEvent(a, 'l2Error', (e) => e.error.code === 'cache_serialization');
    gate.resolve(10n); // JSON has no BigInt: kept in a's L1 only.
    expect(await first).toBe(10n);
    await reported;
    expect(await within(2_000, second, 'the waiting instance')).toBe('from b');
  });

  it('is freed by the write itself when the value is stored: the waiter gets that value', async () => {
    const { first, second, gate } = await lockHeldByA();
    gate.resolve('from a');
    expect(await first).toBe('from a');
    expect(await within(2_000, second, 'the waiting instance')).toBe('from a');
  });
});
