/**
 * `cache.wrap(fn, { key })`: a function with fn's own signature whose calls go through getOrSet:
 * one run per key at a time, in one process and across processes, grace when fn fails.
 */
import { type Cache, type CacheOptions } from '@idem/cache';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { deferred, until } from '../harness/wait.js';
import { busConnected, fakeClock, newKey, useRedisCaches } from './helpers.js';
import { Worker } from './workers.js';

const redis = useRedisCaches();

async function cacheOn(options: CacheOptions = {}): Promise<Cache> {
  const cache = redis.open({ namespace: newKey('wrap'), ...options });
  await busConnected(cache);
  return cache;
}

interface User {
  id: number;
  name: string;
}

describe('cache.wrap', () => {
  it("keeps fn's parameters, return type and this, and runs it once for concurrent calls with one key", async () => {
    const cache = await cacheOn();
    const gate = deferred<void>();
    const api = {
      base: 'https://users',
      runs: 0,
      async fetchUser(id: number, opts?: { fields: string[] }): Promise<User> {
        this.runs++;
        await gate.promise;
        return { id, name: `${this.base}/${id}/${opts?.fields.join(',') ?? ''}` };
      },
    };
    const fetchUser = cache.wrap(api.fetchUser, { key: (id, opts) => `user:${id}:${opts?.fields.join(',') ?? ''}` });
    expectTypeOf(fetchUser).parameters.toEqualTypeOf<[id: number, opts?: { fields: string[] }]>();
    expectTypeOf(fetchUser).returns.toEqualTypeOf<Promise<User>>();

    const calls = Array.from({ length: 30 }, () => fetchUser.call(api, 7, { fields: ['name'] }));
    await until(() => api.runs === 1, 'fn to start');
    gate.resolve();
    const users = await Promise.all(calls);
    for (const user of users) expect(user).toEqual({ id: 7, name: 'https://users/7/name' });
    expect(api.runs).toBe(1);
    // A second call is a cache hit; other arguments are another key.
    expect(await fetchUser.call(api, 7, { fields: ['name'] })).toEqual(users[0]);
    expect(api.runs).toBe(1);
    expect(await fetchUser.call(api, 8)).toEqual({ id: 8, name: 'https://users/8/' });
    expect(api.runs).toBe(2);
  });

  it('takes tags from the arguments, so deleteByTag makes the next call run fn again', async () => {
    const cache = await cacheOn();
    let runs = 0;
    const orders = cache.wrap(async (customer: string) => ({ customer, run: ++runs }), {
      key: (customer) => `orders:${customer}`,
      tags: (customer) => [`customer:${customer}`],
      ttl: '1h',
    });
    expect(await orders('c1')).toEqual({ customer: 'c1', run: 1 });
    expect(await orders('c2')).toEqual({ customer: 'c2', run: 2 });
    expect(await orders('c1')).toEqual({ customer: 'c1', run: 1 });
    await cache.deleteByTag('customer:c1');
    expect(await orders('c1')).toEqual({ customer: 'c1', run: 3 });
    expect(await orders('c2')).toEqual({ customer: 'c2', run: 2 });
  });

  it('serves the last value within grace when fn fails, and rejects with its error past grace', async () => {
    const clock = fakeClock();
    const cache = await cacheOn({ clock });
    let fail = false;
    const price = cache.wrap(
      async (sku: string) => {
        if (fail) throw new Error('pricing API down');
        return { sku, cents: 999 };
      },
      { key: (sku) => `price:${sku}`, ttl: '1m', grace: '1h' },
    );
    expect(await price('a')).toEqual({ sku: 'a', cents: 999 });
    fail = true;
    clock.advance(30 * 60_000);
    expect(await price('a')).toEqual({ sku: 'a', cents: 999 });
    expect(cache.stats().stale.error).toBe(1);
    clock.advance(31 * 60_000);
    await expect(price('a')).rejects.toThrow('pricing API down');
  });

  it('rejects bad options at wrap time and a bad key at call time, naming them', async () => {
    const cache = await cacheOn();
    expect(() => cache.wrap(async () => 1, {} as never)).toThrow(expect.objectContaining({ option: 'key' }));
    expect(() => cache.wrap('nope' as never, { key: () => 'k' })).toThrow(expect.objectContaining({ option: 'fn' }));
    expect(() => cache.wrap(async () => 1, { key: () => 'k', ttl: 'soon' })).toThrow(
      expect.objectContaining({ name: 'CacheConfigError', option: 'ttl' }),
    );
    const badKey = cache.wrap(async (n: number) => n, { key: (n) => n as unknown as string });
    await expect(badKey(1)).rejects.toMatchObject({ option: 'key' });
    const badTags = cache.wrap(async (n: number) => n, { key: (n) => `n:${n}`, tags: () => [''] });
    await expect(badTags(1)).rejects.toMatchObject({ option: 'tags' });
  });

  it('a wrapped function called from 4 processes × 20 callers runs once per key', async () => {
    const namespace = newKey('wrap-mp');
    const workers = Array.from({ length: 4 }, () => new Worker());
    try {
      await Promise.all(workers.map((w) => w.call('init', { url: redis.server.url, options: { namespace } })));
      const ids = [1, 2, 3];
      await Promise.all(workers.map((w) => w.call('armWrap', { ids, callers: 20, loaderMs: 100 })));
      const results = await Promise.all(
        workers.map((w) => w.call<{ outcomes: { value?: { id: number }; error?: string }[] }>('go')),
      );
      const outcomes = results.flatMap((r) => r.outcomes);
      expect(outcomes).toHaveLength(4 * 3 * 20);
      for (const outcome of outcomes) expect(outcome.error).toBeUndefined();
      const runs = workers.flatMap((w) => w.logged('loaded'));
      expect(runs.map((r) => r.key).sort()).toEqual(['report:1', 'report:2', 'report:3']);
      // Everyone got the value of the one run of its key.
      for (const id of ids) {
        const values = new Set(outcomes.filter((o) => o.value?.id === id).map((o) => JSON.stringify(o.value)));
        expect(values.size).toBe(1);
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});
