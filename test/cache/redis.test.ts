import { Redis } from 'ioredis';
import { createCache, type Cache, type CacheOptions } from '@idem/cache';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serialize, deserialize } from 'node:v8';
import { RedisServer } from '../harness/redis.mjs';
import { until, within } from '../harness/wait.js';
import { busConnected, heldLoad, newKey, nextEvent } from './helpers.js';
import { cacheScenarios } from './scenarios.js';

let server: RedisServer;
const clients: Redis[] = [];

/** A fresh ioredis client per cache, as separate instances of a service would have. */
async function client(): Promise<Redis> {
  const redis = new Redis(server.url);
  clients.push(redis);
  await new Promise((resolve) => redis.once('ready', resolve));
  return redis;
}

async function cacheOn(options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({ ...options, redis: await client() });
  await busConnected(cache);
  return cache;
}

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await server.stop();
});

cacheScenarios('memory + redis', { shared: true, create: cacheOn });

describe('cache on redis: tiers and the bus', () => {
  const opened: Cache[] = [];
  const make = async (options: CacheOptions = {}): Promise<Cache> => {
    const cache = await cacheOn({ namespace: 'extras', ...options });
    opened.push(cache);
    return cache;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  const commandsProcessed = async (): Promise<number> =>
    Number(/total_commands_processed:(\d+)/.exec(await server.cli('info', 'stats'))?.[1]);

  it('an L1 hit sends no command to Redis; an L2 hit refills L1', async () => {
    const a = await make();
    const b = await make();
    const key = newKey();
    await a.set(key, { big: 'x'.repeat(1000) });
    expect(await b.getOrSetEntry(key, () => 'no')).toMatchObject({ source: 'l2' });
    const before = await commandsProcessed();
    for (let i = 0; i < 20; i++) {
      expect(await a.getOrSetEntry(key, () => 'no')).toMatchObject({ source: 'l1' });
      expect(await b.getOrSetEntry(key, () => 'no')).toMatchObject({ source: 'l1' });
    }
    // Only the INFO of the second reading itself.
    expect((await commandsProcessed()) - before).toBe(1);
  });

  it("delete, set, deleteByTag and clear reach the other instance's L1 over the bus", async () => {
    const a = await make();
    const b = await make();
    const key = newKey();
    const read = async (): Promise<unknown> => b.getOrSetEntry(key, () => 'from b loader');
    await a.set(key, 'v1', { tags: ['t'] });
    expect(await read()).toMatchObject({ value: 'v1', source: 'l2' });
    expect(await read()).toMatchObject({ value: 'v1', source: 'l1' });

    let seen = nextEvent(b, 'invalidate', (e) => e.origin === 'remote' && e.kind === 'set');
    await a.set(key, 'v2', { tags: ['t'] });
    expect(await seen).toMatchObject({ keys: [key] });
    expect(await read()).toMatchObject({ value: 'v2', source: 'l2' });

    seen = nextEvent(b, 'invalidate', (e) => e.origin === 'remote' && e.kind === 'delete');
    await a.delete(key);
    await seen;
    expect(await b.get(key)).toBeUndefined();

    await a.set(key, 'v3', { tags: ['t'] });
    await until(async () => (await b.get(key)) === 'v3');
    seen = nextEvent(b, 'invalidate', (e) => e.origin === 'remote' && e.kind === 'tags');
    await a.deleteByTag('t');
    expect(await seen).toMatchObject({ tags: ['t'] });
    expect(await b.get(key)).toBeUndefined();

    await a.set(key, 'v4');
    await until(async () => (await b.get(key)) === 'v4');
    seen = nextEvent(b, 'invalidate', (e) => e.origin === 'remote' && e.kind === 'clear');
    await a.clear();
    await seen;
    expect(await b.get(key)).toBeUndefined();
  });

  it('clear(namespace) reaches the instances of that namespace', async () => {
    const a = await make({ namespace: 'billing' });
    const b = await make({ namespace: 'records' });
    const key = newKey();
    await b.set(key, 'record');
    expect(await a.get(key)).toBeUndefined();
    const cleared = nextEvent(b, 'invalidate', (e) => e.kind === 'clear' && e.origin === 'remote');
    await a.clear('records');
    await cleared;
    expect(await b.get(key)).toBeUndefined();
  });

  it('a waiter in another instance is woken by pub/sub when the value lands, not by polling', async () => {
    const a = await make({ pollInterval: '10s' });
    const b = await make({ pollInterval: '10s' });
    const key = newKey();
    const { call: first, gate } = await heldLoad<string>(a, key);
    let bRan = false;
    const second = b.getOrSet(key, () => {
      bRan = true;
      return 'b';
    });
    await until(() => b.stats().waits === 1, 'b to wait on a', 5_000);
    gate.resolve('from a');
    expect(await within(second, 2_000, 'the woken waiter')).toBe('from a');
    expect(await first).toBe('from a');
    expect(bRan).toBe(false);
  });

  it("when the lock holder's loader fails, a waiting instance takes over", async () => {
    const a = await make({ pollInterval: '10s' });
    const b = await make({ pollInterval: '10s' });
    const key = newKey();
    const { call: first, gate } = await heldLoad<string>(a, key);
    const second = b.getOrSet(key, () => 'b took over');
    await until(() => b.stats().waits === 1, 'b to wait on a', 5_000);
    gate.reject(new Error('a failed'));
    await expect(first).rejects.toThrow('a failed');
    expect(await within(second, 2_000, 'the woken waiter')).toBe('b took over');
    expect(await a.get(key)).toBe('b took over');
  });

  it('uses a custom serializer for Redis', async () => {
    const v8 = { serialize: (v: unknown) => serialize(v), deserialize: (b: Buffer) => deserialize(b) };
    const a = await make({ serializer: v8 });
    const b = await make({ serializer: v8 });
    const key = newKey();
    const value = { when: new Date(0), map: new Map([[1, 'one']]) };
    await a.set(key, value);
    const read = await b.get<typeof value>(key);
    expect(read?.when).toBeInstanceOf(Date);
    expect(read?.map.get(1)).toBe('one');
  });

  it('works on a client with an ioredis keyPrefix, and keeps other prefixes apart', async () => {
    const prefixed = async (keyPrefix: string): Promise<Cache> => {
      const redis = new Redis(server.url, { keyPrefix });
      clients.push(redis);
      const cache = createCache({ redis, namespace: 'kp' });
      opened.push(cache);
      await busConnected(cache);
      return cache;
    };
    const [a, b, other] = [await prefixed('app:'), await prefixed('app:'), await prefixed('other:')];
    await a.set('k', 'from-a', { tags: ['t'] });
    expect(await b.get('k')).toBe('from-a');
    expect(await other.get('k')).toBeUndefined();
    expect(await server.cli('exists', 'app:idem:cache:{kp}:v:k')).toMatch(/^1/);
    expect(await server.cli('exists', 'idem:cache:{kp}:v:k')).toMatch(/^0/);
    await other.set('k', 'from-other', { tags: ['t'] });
    await a.deleteByTag('t');
    expect(await server.cli('exists', 'app:idem:cache:{kp}:v:k')).toMatch(/^0/);
    expect(await server.cli('exists', 'other:idem:cache:{kp}:v:k')).toMatch(/^1/);
    await a.set('k2', 'v');
    await a.clear();
    expect(await server.cli('exists', 'app:idem:cache:{kp}:v:k2')).toMatch(/^0/);
    expect(await other.get('k')).toBe('from-other');
  });

  it('close() closes only the connection the cache opened', async () => {
    const redis = await client();
    const cache = createCache({ redis, namespace: 'extras' });
    await busConnected(cache);
    const count = async (): Promise<number> => ((await redis.client('LIST')) as string).trim().split('\n').length;
    const withBus = await count();
    await cache.close();
    await until(async () => (await count()) === withBus - 1, 'the bus connection to close', 5_000);
    expect(redis.status).toBe('ready');
    expect(await redis.ping()).toBe('PONG');
  });
});
