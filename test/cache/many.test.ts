/**
 * `getOrSetMany(keys, loadMissing)`: one L1 pass and one Redis round trip for all keys, the loader
 * called once with only the missing keys, each missing key still loaded once across processes.
 */
import { type Cache, type CacheOptions } from '@idem/cache';
import { describe, expect, it } from 'vitest';
import { until } from '../harness/wait.js';
import { busConnected, fakeClock, heldLoad, newKey, useRedisCaches } from './helpers.js';
import { Worker } from './workers.js';

const redis = useRedisCaches();

async function cacheOn(namespace: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = redis.open({ namespace, ...options });
  await busConnected(cache);
  return cache;
}

/** A batch loader that records every call's keys. */
function recording(): { calls: string[][]; load: (keys: string[]) => Promise<Map<string, string>> } {
  const calls: string[][] = [];
  return {
    calls,
    load: async (keys) => {
      calls.push(keys);
      return new Map(keys.map((k) => [k, `loaded ${k}`]));
    },
  };
}

/** Script calls Redis ran (EVALSHA, or EVAL where ioredis had to send the body). */
const scriptCalls = async (): Promise<number> => {
  const stats = await redis.server.cli('info', 'commandstats');
  const calls = (name: string): number => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  return calls('evalsha') + calls('eval');
};

describe('getOrSetMany', () => {
  it('calls the loader once with only the missing keys and answers in the order asked, duplicates included', async () => {
    const namespace = newKey('many');
    const writer = await cacheOn(namespace);
    const reader = await cacheOn(namespace);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((l) => newKey(l)) as [string, string, string, string];
    await writer.set(b, 'stored b');
    await reader.set(d, 'stored d'); // in the reader's own L1
    const loader = recording();
    const before = await scriptCalls();
    expect(await reader.getOrSetMany([a, b, c, d, a], loader.load)).toEqual([
      `loaded ${a}`,
      'stored b',
      `loaded ${c}`,
      'stored d',
      `loaded ${a}`,
    ]);
    expect(loader.calls).toEqual([[a, c]]);
    // One getOrLock per key not in L1 (a, b, c), sent as one pipeline, and the writes of a and c;
    // d came from L1.
    expect((await scriptCalls()) - before).toBe(5);
    expect(reader.stats().l1).toMatchObject({ hits: 1, misses: 3 });
    expect(reader.stats().l2).toMatchObject({ hits: 1, misses: 2 });
    // Stored for everyone: the writer's instance reads them from Redis without a loader.
    expect(await writer.getOrSetMany([a, c], () => ({}))).toEqual([`loaded ${a}`, `loaded ${c}`]);
    // Everything is now in L1: no loader, no Redis.
    const again = await scriptCalls();
    expect(await reader.getOrSetMany([a, b, c, d], loader.load)).toHaveLength(4);
    expect(loader.calls).toHaveLength(1);
    expect(await scriptCalls()).toBe(again);
  });

  it('joins a load of the same key already running in this process instead of loading it again', async () => {
    const cache = await cacheOn(newKey('many'));
    const [x, y] = [newKey('x'), newKey('y')];
    const { call, gate } = await heldLoad<string>(cache, x);
    const loader = recording();
    const batch = cache.getOrSetMany([x, y], loader.load);
    await until(() => loader.calls.length === 1, 'the batch loader');
    expect(loader.calls).toEqual([[y]]);
    gate.resolve('from getOrSet');
    expect(await batch).toEqual(['from getOrSet', `loaded ${y}`]);
    expect(await call).toBe('from getOrSet');
  });

  it('waits for a key another instance is loading rather than loading it twice', async () => {
    const namespace = newKey('many');
    const a = await cacheOn(namespace);
    const b = await cacheOn(namespace);
    const [x, y] = [newKey('x'), newKey('y')];
    const { call, gate } = await heldLoad<string>(a, x);
    const loader = recording();
    const batch = b.getOrSetMany([x, y], loader.load);
    await until(() => b.stats().waits === 1, 'b to wait for a');
    expect(loader.calls).toEqual([[y]]);
    gate.resolve('loaded by a');
    expect(await batch).toEqual(['loaded by a', `loaded ${y}`]);
    await call;
    expect(loader.calls).toHaveLength(1);
  });

  it('a key the loader leaves out fails the call with cache_missing_value; the others are cached', async () => {
    const cache = await cacheOn(newKey('many'));
    const [x, y] = [newKey('x'), newKey('y')];
    await expect(cache.getOrSetMany([x, y], (keys) => ({ [keys[0] as string]: 'only x' }))).rejects.toMatchObject({
      code: 'cache_missing_value',
      key: y,
    });
    expect(await cache.get(x)).toBe('only x');
    expect(await cache.get(y)).toBeUndefined();
    // null is a value: "not found" is cached like any other answer.
    expect(await cache.getOrSetMany([y], () => new Map([[y, null]]))).toEqual([null]);
    expect(await cache.getOrSetMany([y], () => ({}))).toEqual([null]);
  });

  it('serves stale values within grace when the loader fails, and its error past grace', async () => {
    const clock = fakeClock();
    const cache = await cacheOn(newKey('many'), { clock, ttl: '1m', grace: '1h' });
    const [x, y] = [newKey('x'), newKey('y')];
    await cache.getOrSetMany([x, y], (keys) => Object.fromEntries(keys.map((k) => [k, `v1 ${k}`])));
    clock.advance(10 * 60_000);
    const down = (): never => {
      throw new Error('upstream down');
    };
    expect(await cache.getOrSetMany([x, y], down)).toEqual([`v1 ${x}`, `v1 ${y}`]);
    expect(cache.stats().stale.error).toBe(2);
    const z = newKey('z');
    await expect(cache.getOrSetMany([x, z], down)).rejects.toThrow('upstream down');
  });

  it('works on a memory-only cache, and checks its arguments', async () => {
    const cache = redis.memory({ namespace: newKey('many') });
    const loader = recording();
    expect(await cache.getOrSetMany(['p', 'q'], loader.load)).toEqual(['loaded p', 'loaded q']);
    expect(await cache.getOrSetMany(['q', 'r'], loader.load)).toEqual(['loaded q', 'loaded r']);
    expect(loader.calls).toEqual([['p', 'q'], ['r']]);
    expect(await cache.getOrSetMany([], loader.load)).toEqual([]);
    await expect(cache.getOrSetMany('p' as never, loader.load)).rejects.toMatchObject({ option: 'keys' });
    await expect(cache.getOrSetMany([1 as never], loader.load)).rejects.toMatchObject({ option: 'key' });
    await expect(cache.getOrSetMany(['p'], null as never)).rejects.toMatchObject({ option: 'loadMissing' });
  });

  it('4 processes × 10 callers asking for the same 6 keys: each key is loaded once in all', async () => {
    const namespace = newKey('many-mp');
    const workers = Array.from({ length: 4 }, () => new Worker());
    try {
      await Promise.all(workers.map((w) => w.call('init', { url: redis.server.url, options: { namespace } })));
      const keys = Array.from({ length: 6 }, (_, i) => `item:${i}`);
      await Promise.all(workers.map((w) => w.call('armMany', { keys, callers: 10, loaderMs: 100 })));
      const results = await Promise.all(
        workers.map((w) => w.call<{ outcomes: { value?: { key: string }[]; error?: string }[] }>('go')),
      );
      const outcomes = results.flatMap((r) => r.outcomes);
      expect(outcomes).toHaveLength(40);
      for (const outcome of outcomes) {
        expect(outcome.error).toBeUndefined();
        expect(outcome.value?.map((v) => v.key)).toEqual(keys);
      }
      const loaded = workers.flatMap((w) => w.logged('loadedMany')).flatMap((e) => e.keys as string[]);
      expect(loaded.sort()).toEqual([...keys].sort());
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});
