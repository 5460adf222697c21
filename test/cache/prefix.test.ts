/**
 * `deleteByPrefix(prefix)`: every key starting with it leaves Redis (SCAN in bounded batches,
 * never KEYS, on every master of a Cluster) and every instance's L1, in this process and others.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { createCache, type Cache, type CacheOptions } from '@idem/cache';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type RedisCluster } from '../harness/redis.mjs';
import { busConnected, newKey, nextEvent, useRedisCaches } from './helpers.js';
import { Worker } from './workers.js';

const redis = useRedisCaches();

async function cacheOn(namespace: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = redis.open({ namespace, ttl: '1h', ...options });
  await busConnected(cache);
  return cache;
}

const commandCalls = async (name: string): Promise<number> => {
  const stats = await redis.server.cli('info', 'commandstats');
  return Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
};

describe('deleteByPrefix', () => {
  it('removes every key under the prefix from Redis and both instances, and nothing else, with SCAN batches', async () => {
    const namespace = newKey('pfx');
    const a = await cacheOn(namespace);
    const b = await cacheOn(namespace);
    const doomed = Array.from({ length: 2_500 }, (_, i) => `user:1:item:${i}`);
    const kept = ['user:10:item:0', 'user:2:item:0', 'user:1', 'other:user:1:x'];
    await a.warm([...doomed, ...kept].map((key) => ({ key, value: key })));
    // b holds some of them in its own L1.
    for (const key of [doomed[0], doomed[2_499], kept[0]] as string[]) expect(await b.get(key)).toBe(key);

    const keysBefore = await commandCalls('keys');
    const scansBefore = await commandCalls('scan');
    const reached = nextEvent(b, 'invalidate', (e) => e.kind === 'prefix' && e.origin === 'remote');
    await a.deleteByPrefix('user:1:');
    expect(await reached).toMatchObject({ prefix: 'user:1:' });

    expect(await commandCalls('keys')).toBe(keysBefore);
    // 2,504 keys in the namespace at about 1,000 per SCAN: several bounded calls, not one.
    expect((await commandCalls('scan')) - scansBefore).toBeGreaterThanOrEqual(3);
    const remaining = (await redis.server.cli('--scan', '--pattern', `idem:cache:{${namespace}}:v:*`))
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((k) => k.slice(`idem:cache:{${namespace}}:v:`.length))
      .sort();
    expect(remaining).toEqual([...kept].sort());
    for (const cache of [a, b]) {
      expect(await cache.get(doomed[0] as string)).toBeUndefined();
      expect(await cache.get(doomed[2_499] as string)).toBeUndefined();
      for (const key of kept) expect(await cache.get(key)).toBe(key);
    }
    // A load that was running under the prefix is not cached when it lands.
    let runs = 0;
    expect(await a.getOrSet('user:1:item:0', () => `reloaded ${++runs}`)).toBe('reloaded 1');
  });

  it('takes the prefix literally: glob characters in it match only themselves', async () => {
    const namespace = newKey('pfx');
    const cache = await cacheOn(namespace);
    const reader = await cacheOn(namespace);
    await cache.warm(['a*[1]:x', 'ab[1]:x', 'a*[1]x', 'a\\b:y'].map((key) => ({ key, value: key })));
    await cache.deleteByPrefix('a*[1]:');
    expect(await reader.get('a*[1]:x')).toBeUndefined();
    expect(await reader.get('ab[1]:x')).toBe('ab[1]:x');
    expect(await reader.get('a*[1]x')).toBe('a*[1]x');
    await cache.deleteByPrefix('a\\');
    expect(await reader.get('a\\b:y')).toBeUndefined();
  });

  it('refuses an empty prefix (clear() is for the whole namespace)', async () => {
    const cache = await cacheOn(newKey('pfx'));
    await expect(cache.deleteByPrefix('')).rejects.toMatchObject({ name: 'CacheConfigError', option: 'prefix' });
  });

  it('a prefix deletion in one process is seen by every other process', async () => {
    const namespace = newKey('pfx-mp');
    const parent = await cacheOn(namespace);
    const workers = Array.from({ length: 3 }, () => new Worker());
    try {
      await Promise.all(
        workers.map((w) => w.call('init', { url: redis.server.url, options: { namespace, ttl: '1h' } })),
      );
      await parent.warm(['tenant:9:a', 'tenant:9:b', 'tenant:90:a'].map((key) => ({ key, value: 'old' })));
      for (const w of workers) {
        // Into each process's L1, then watched.
        for (const key of ['tenant:9:a', 'tenant:9:b', 'tenant:90:a'])
          expect(await w.call('get', { key })).toEqual({ value: 'old' });
        await w.call('watchAll');
      }
      await parent.deleteByPrefix('tenant:9:');
      for (const w of workers) {
        await w.waitEvent((e) => e.event === 'invalidated' && e.kind === 'prefix' && e.prefix === 'tenant:9:');
        expect(await w.call('get', { key: 'tenant:9:a' })).toEqual({});
        expect(await w.call('get', { key: 'tenant:9:b' })).toEqual({});
        expect(await w.call('get', { key: 'tenant:90:a' })).toEqual({ value: 'old' });
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});

describe('deleteByPrefix on a Redis Cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  let last: Cluster | undefined;
  async function instance(namespace: string): Promise<Cache> {
    const client = new Cluster(cluster.startupNodes);
    last = client;
    await new Promise((resolve) => client.once('ready', resolve));
    const cache = createCache({ redis: client as unknown as Redis, namespace, ttl: '1h' });
    redis.track(cache, client);
    await busConnected(cache);
    return cache;
  }

  it('reaches the keys on whichever master holds each namespace', async () => {
    const namespaces = Array.from({ length: 6 }, (_, i) => `ns${i}-${randomUUID().slice(0, 8)}`);
    const writers = await Promise.all(namespaces.map((namespace) => instance(namespace)));
    for (const writer of writers) await writer.warm(['p:1', 'p:2', 'q:1'].map((key) => ({ key, value: 'old' })));
    const masters = (last as Cluster).nodes('master');
    const holding = await Promise.all(masters.map(async (master) => (await master.dbsize()) > 0));
    expect(holding.filter(Boolean).length).toBeGreaterThan(1);
    for (const [i, writer] of writers.entries()) {
      await writer.deleteByPrefix('p:');
      // A fresh instance has nothing in L1: only Redis could still answer the old value.
      const reader = await instance(namespaces[i] as string);
      expect(await reader.getOrSet('p:1', () => 'new')).toBe('new');
      expect(await reader.getOrSet('p:2', () => 'new')).toBe('new');
      expect(await reader.getOrSet('q:1', () => 'new')).toBe('old');
    }
  });
});
