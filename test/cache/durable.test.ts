/**
 * The durable tier (`postgresTier()` of @idem/postgres behind L1 and Redis), on a real PostgreSQL
 * and a real redis-server: read after both miss, written on every load and set, served stale
 * within its own grace when the loader fails (with the upstream and Redis both gone), surviving a
 * Redis flush and the restart of every process, and reached by every invalidation.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createCache, type Cache, type CacheOptions, type DurableTier } from '@idem/cache';
import { durableSchemaSql, postgresTier, type PostgresTierOptions } from '@idem/postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { until } from '../harness/wait.js';
import { useDatabase } from '../postgres/helpers.js';
import { fakeClock, newKey, nextEvent, useRedisCaches } from './helpers.js';

const db = useDatabase();
const caches = useRedisCaches();

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A durable tier on a table of the test's own. */
function tier(options: Partial<PostgresTierOptions> = {}) {
  const table = options.table ?? `cache_${randomUUID().slice(0, 8)}`;
  return { table, tier: postgresTier({ pool: db.pool({ max: 4 }), table, cleanupInterval: false, ...options }) };
}

/** Rows of `table`, by key. */
async function rows(table: string): Promise<Map<string, { tags: string[]; namespace: string }>> {
  const found = await db.query<{ key: string; tags: string[]; namespace: string }>(
    `SELECT key, tags, namespace FROM "${table}"`,
  );
  return new Map(found.map((r) => [r.key, r]));
}

/** A cache with Redis and the durable tier, as one process of a service has it. */
function processOn(durable: CacheOptions['durable'], options: CacheOptions = {}): Cache {
  return caches.open({ namespace: 'durable', ttl: '1h', ...options, durable });
}

describe('durable tier', () => {
  it('a loaded value is written there; after a Redis flush and a restart of every process it is served from it, without the loader', async () => {
    const { table, tier: durable } = tier();
    const key = newKey('record');
    let runs = 0;
    const loader = () => {
      runs++;
      return { id: key, total: 42 };
    };
    const first = processOn(durable);
    expect(await first.getOrSet(key, loader, { tags: ['customer:7'] })).toEqual({ id: key, total: 42 });
    expect(runs).toBe(1);
    expect((await rows(table)).get(key)?.tags).toEqual(['customer:7']);

    await first.close();
    await caches.server.cli('FLUSHALL');
    // Every process restarted: a new cache, a new tier object, nothing in memory.
    const { tier: again } = tier({ table });
    const restarted = processOn(again);
    const result = await restarted.getOrSetEntry(key, loader);
    expect(result).toMatchObject({
      value: { id: key, total: 42 },
      stale: false,
      source: 'durable',
      tags: ['customer:7'],
    });
    expect(runs).toBe(1);
    expect(restarted.stats().durable).toMatchObject({ hits: 1, misses: 0 });
    // Written back to Redis: another process finds it there, not in PostgreSQL.
    const other = processOn(tier({ table }).tier);
    expect(await other.getOrSetEntry(key, loader)).toMatchObject({ source: 'l2' });
    expect(other.stats().durable.hits).toBe(0);
  });

  it('with the upstream and Redis both down, values keep coming from it, marked stale and counted', async () => {
    const clock = fakeClock();
    const { table, tier: durable } = tier({ ttl: '1h', grace: '7d' });
    const redisServer = await RedisServer.start();
    cleanup.push(() => redisServer.stop());
    const connect = () => {
      const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
      redis.on('error', () => {});
      cleanup.push(() => redis.disconnect());
      return redis;
    };
    const writer = createCache({ redis: connect(), namespace: 'offline', ttl: '5m', clock, durable });
    cleanup.push(() => writer.close());
    const keys = [newKey('a'), newKey('b'), newKey('c')];
    for (const key of keys) await writer.getOrSet(key, () => `value of ${key}`);

    await redisServer.stop();
    clock.advance(3 * 24 * 3600_000); // three days: past every ttl, within the durable grace
    const failing = () => {
      throw new Error('upstream down');
    };
    // A process started after the outage began: nothing in its L1, Redis unreachable.
    const reader = createCache({
      redis: connect(),
      namespace: 'offline',
      ttl: '5m',
      redisTimeout: 100,
      clock,
      durable: tier({ table }).tier,
    });
    cleanup.push(() => reader.close());
    for (const key of keys) {
      const result = await reader.getOrSetEntry(key, failing);
      expect(result).toMatchObject({ value: `value of ${key}`, stale: true, source: 'durable' });
    }
    const stats = reader.stats();
    expect(stats.stale.error).toBe(3);
    expect(stats.durable.misses).toBe(3);
    expect(stats.loader.errors).toBe(3);

    // Past the durable grace, nothing is left to serve: the loader's error reaches the caller.
    clock.advance(5 * 24 * 3600_000);
    await expect(reader.getOrSet(newKey('never-loaded'), failing)).rejects.toThrow('upstream down');
    await expect(reader.getOrSet(keys[0] as string, failing)).rejects.toThrow('upstream down');
  });

  it('within its ttl it answers fresh even with Redis gone, and the loader is not called', async () => {
    const { tier: durable } = tier({ ttl: '24h' });
    const redisServer = await RedisServer.start();
    cleanup.push(() => redisServer.stop());
    const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => {});
    cleanup.push(() => redis.disconnect());
    const writer = createCache({ redis, namespace: 'fresh', durable });
    cleanup.push(() => writer.close());
    const key = newKey();
    await writer.set(key, 'kept');
    await redisServer.stop();

    const reader = createCache({ redis, namespace: 'fresh', redisTimeout: 100, durable });
    cleanup.push(() => reader.close());
    let runs = 0;
    expect(
      await reader.getOrSetEntry(key, () => {
        runs++;
        return 'loaded';
      }),
    ).toMatchObject({ value: 'kept', stale: false, source: 'durable' });
    expect(runs).toBe(0);
    expect(await reader.get(key)).toBe('kept');
  });

  it('every invalidation reaches it: delete, deleteByTag, deleteByPrefix, clear', async () => {
    const { table, tier: durable } = tier();
    const cache = processOn(durable);
    const user = `user:${randomUUID()}:`;
    const values = {
      a: `${user}profile`,
      b: `${user}orders`,
      c: `tagged-${randomUUID()}`,
      d: `kept-${randomUUID()}`,
      e: `other-${randomUUID()}`,
    };
    for (const key of Object.values(values)) {
      await cache.set(key, key, { tags: key === values.c ? ['t:promo'] : [] });
    }
    // A key whose prefix contains LIKE's wildcards only matches literally.
    await cache.set('50%_off', 'x');
    await cache.set('500_off', 'y');
    expect((await rows(table)).size).toBe(7);

    await cache.delete(values.e);
    await cache.deleteByTag('t:promo');
    await cache.deleteByPrefix(user);
    await cache.deleteByPrefix('50%_');
    expect([...(await rows(table)).keys()].sort()).toEqual(['500_off', values.d].sort());

    await cache.clear();
    expect((await rows(table)).size).toBe(0);
    // And nothing comes back from it after an invalidation: the loader runs.
    let runs = 0;
    await cache.getOrSet(values.d, () => ++runs);
    expect(runs).toBe(1);
  });

  it('clear() of one namespace leaves the others', async () => {
    const { table, tier: durable } = tier();
    const one = processOn(durable, { namespace: 'one' });
    const two = processOn(tier({ table }).tier, { namespace: 'two' });
    await one.set('k', 1);
    await two.set('k', 2);
    await one.clear();
    expect([...(await rows(table)).values()].map((r) => r.namespace)).toEqual(['two']);
    expect(await two.get('k')).toBe(2);
  });

  it('an invalidation that cannot reach it is queued and lands once PostgreSQL answers again', async () => {
    const { table, tier: durable } = tier({ queryTimeout: '200ms' });
    const cache = processOn(durable);
    const key = newKey();
    await cache.set(key, 'old');
    db.server.pause();
    try {
      const failed = nextEvent(cache, 'durableError', (e) => e.operation === 'delete');
      await cache.delete(key);
      await failed;
      expect(cache.stats().durable.pending).toBe(1);
    } finally {
      db.server.resume();
    }
    await until(() => cache.stats().durable.pending === 0, 'the queued delete to land');
    expect((await rows(table)).has(key)).toBe(false);
  });

  it('getOrSetMany loads only the keys that no tier has, the durable one included', async () => {
    const { table, tier: durable } = tier();
    const writer = processOn(durable);
    const [a, b, c] = [newKey('a'), newKey('b'), newKey('c')];
    await writer.set(a, 'A');
    await writer.set(b, 'B');
    await caches.server.cli('FLUSHALL');
    const reader = processOn(tier({ table }).tier);
    const asked: string[][] = [];
    const values = await reader.getOrSetMany([a, b, c], (missing) => {
      asked.push(missing);
      return Object.fromEntries(missing.map((k) => [k, `loaded ${k}`]));
    });
    expect(values).toEqual(['A', 'B', `loaded ${c}`]);
    expect(asked).toEqual([[c]]);
    expect(reader.stats().durable).toMatchObject({ hits: 2, misses: 1 });
  });

  it('a value loaded earlier never replaces one loaded later', async () => {
    const { tier: durable } = tier();
    const now = Date.now();
    const record = (value: string, createdAt: number) => ({
      value: Buffer.from(value),
      createdAt,
      expiresAt: createdAt + 60_000,
      staleUntil: createdAt + 120_000,
      tags: [],
    });
    await durable.set('ns', 'k', record('newer', now));
    await durable.set('ns', 'k', record('older', now - 1_000));
    const [found] = await durable.getMany('ns', ['k'], now);
    expect(found?.value.toString()).toBe('newer');
    expect(found).toMatchObject({ createdAt: now, expiresAt: now + 60_000, staleUntil: now + 120_000 });
    expect(await durable.getMany('ns', ['k', 'absent'], now + 120_000)).toEqual([undefined, undefined]);
  });

  it('an eager refresh still calls the loader, though the durable record is fresh', async () => {
    const clock = fakeClock();
    const { tier: durable } = tier();
    const cache = caches.memory({ ttl: 1_000, eagerRefresh: 0.5, clock, durable, namespace: 'eager' });
    const key = newKey();
    let runs = 0;
    await cache.getOrSet(key, () => ++runs);
    clock.advance(600);
    const refreshed = nextEvent(cache, 'load');
    expect(await cache.getOrSet(key, () => ++runs)).toBe(1);
    await refreshed;
    expect(runs).toBe(2);
  });

  it('a memory-only cache with a durable tier: the loader runs once, then the tier answers a new process', async () => {
    const { tier: durable } = tier();
    const key = newKey();
    await caches.memory({ durable }).getOrSet(key, () => 'v');
    expect(await caches.memory({ durable }).getOrSetEntry(key, () => 'other')).toMatchObject({
      value: 'v',
      source: 'durable',
    });
  });

  it('without a durable tier nothing is read or counted there', async () => {
    const cache = processOn(undefined);
    await cache.getOrSet(newKey(), () => 1);
    expect(cache.stats().durable).toEqual({ hits: 0, misses: 0, errors: 0, pending: 0, breaker: 'closed' });
  });

  it('a delete that reached the tier late is repeated on Redis: the old value does not come back from where another process copied it', async () => {
    const { table, tier: durable } = tier();
    // The tier refuses the first delete only (the database away for a moment), as a fault would.
    let refuse = true;
    const flaky: DurableTier = {
      ...durable,
      name: durable.name,
      ttl: durable.ttl,
      grace: durable.grace,
      delete(namespace, keys) {
        if (refuse) {
          refuse = false;
          return Promise.reject(new Error('connection refused'));
        }
        return durable.delete(namespace, keys);
      },
    };
    const writer = processOn(flaky);
    const key = newKey();
    await writer.set(key, 'old');
    await writer.delete(key);
    expect(writer.stats().durable.pending).toBe(1);
    // Meanwhile another process misses Redis, finds the old row and copies it back into Redis.
    const other = processOn(tier({ table }).tier);
    expect(await other.getOrSetEntry(key, () => 'new')).toMatchObject({ value: 'old', source: 'durable' });
    expect((await caches.server.cli('EXISTS', `idem:cache:{durable}:v:${key}`)).trim()).toBe('1');

    await until(() => writer.stats().durable.pending === 0, 'the queued delete to land');
    expect((await rows(table)).has(key)).toBe(false);
    // Repeated on Redis and the bus: every process, new or old, loads the new value.
    await until(
      async () => (await caches.server.cli('EXISTS', `idem:cache:{durable}:v:${key}`)).trim() === '0',
      'Redis to drop it',
    );
    expect(await processOn(tier({ table }).tier).getOrSet(key, () => 'new')).toBe('new');
  });

  it('deletes more rows than one batch, and prefixes match literally, also with standard_conforming_strings off', async () => {
    const table = `cache_${randomUUID().slice(0, 8)}`;
    const legacy = postgresTier({
      pool: db.pool({ max: 2, options: '-c standard_conforming_strings=off' }),
      table,
      cleanupBatch: 2,
      cleanupInterval: false,
    });
    const cache = processOn(legacy);
    for (let i = 0; i < 5; i++) await cache.set(`a\\b%_${i}`, i, { tags: ['t'] });
    for (let i = 0; i < 5; i++) await cache.set(`a\\bX${i}`, i);
    for (let i = 0; i < 5; i++) await cache.set(`tagged-${i}`, i, { tags: ['t2'] });
    await cache.deleteByPrefix('a\\b%_');
    expect([...(await rows(table)).keys()].filter((k) => k.startsWith('a')).sort()).toEqual(
      [0, 1, 2, 3, 4].map((i) => `a\\bX${i}`),
    );
    await cache.deleteByTag('t2');
    expect([...(await rows(table)).keys()].some((k) => k.startsWith('tagged-'))).toBe(false);
    await cache.clear();
    expect((await rows(table)).size).toBe(0);
    expect(cache.stats().durable.errors).toBe(0);
  });

  it('get() reads it after L1 and Redis missed', async () => {
    const { table, tier: durable } = tier();
    const key = newKey();
    await processOn(durable).set(key, { kept: true });
    await caches.server.cli('FLUSHALL');
    const reader = processOn(tier({ table }).tier);
    expect(await reader.get(key)).toEqual({ kept: true });
    expect(reader.stats().durable).toMatchObject({ hits: 1, misses: 0 });
    expect(await reader.get(newKey('absent'))).toBeUndefined();
    expect(reader.stats().durable.misses).toBe(1);
  });

  it('a database that does not answer trips its breaker: reads and writes are then not sent to it', async () => {
    const { tier: durable } = tier({ queryTimeout: '100ms' });
    const cache = caches.memory({ namespace: 'breaker', durable, breaker: { threshold: 2, cooldown: '1h' } });
    db.server.pause();
    try {
      await cache.getOrSet(newKey(), () => 'first');
      await until(() => cache.stats().durable.breaker === 'open', 'the breaker to open');
      const sent: string[] = [];
      cache.events.on('durableError', (e) => sent.push(e.operation));
      for (let i = 0; i < 3; i++) expect(await cache.getOrSet(newKey(), () => `loaded ${i}`)).toBe(`loaded ${i}`);
      expect(sent).toEqual([]);
      expect(cache.stats().durable.misses).toBe(4);
    } finally {
      db.server.resume();
    }
  });

  it('a bad durable option is refused at creation, naming it', () => {
    expect(() => createCache({ durable: {} as never })).toThrow(/invalid option `durable`: expected a durable tier/);
    expect(() => postgresTier({ pool: {} as never })).toThrow(/pool/);
    expect(() => postgresTier({ pool: db.pool(), ttl: 'soon' as never })).toThrow(/ttl/);
    expect(() => postgresTier({ pool: db.pool(), table: 'bad name' })).toThrow(/table/);
    expect(() => postgresTier({ pool: db.pool(), tll: '1h' } as never)).toThrow(/tll/);
  });

  it('the table is what durableSchemaSql() says, and it is created once by many processes at once', async () => {
    const table = `race_${randomUUID().slice(0, 8)}`;
    const tiers = Array.from({ length: 8 }, () =>
      postgresTier({ pool: db.pool({ max: 2 }), table, cleanupInterval: false }),
    );
    await Promise.all(tiers.map((t) => t.getMany('ns', ['k'], Date.now())));
    const indexes = await db.query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE tablename = $1', [
      table,
    ]);
    expect(indexes.map((i) => i.indexname).sort()).toEqual([
      `${table}_pkey`,
      `${table}_stale_until_idx`,
      `${table}_tags_idx`,
    ]);
    expect(durableSchemaSql(table)).toContain(`CREATE TABLE IF NOT EXISTS "${table}"`);
    await Promise.all(tiers.map((t) => t.close()));
  });

  it('cleanup removes rows past their grace, in batches, and leaves the others', async () => {
    const { table, tier: durable } = tier({ cleanupBatch: 2 });
    const past = Date.now() - 3_600_000;
    for (let i = 0; i < 3; i++) {
      await durable.set('ns', `old-${i}`, {
        value: Buffer.from('x'),
        createdAt: past,
        expiresAt: past + 1,
        staleUntil: past + 2,
        tags: [],
      });
    }
    await durable.set('ns', 'live', {
      value: Buffer.from('y'),
      createdAt: Date.now(),
      expiresAt: Date.now() + 60_000,
      staleUntil: Date.now() + 120_000,
      tags: [],
    });
    expect(await durable.cleanup()).toBe(2);
    expect(await durable.cleanup()).toBe(1);
    expect(await durable.cleanup()).toBe(0);
    expect([...(await rows(table)).keys()]).toEqual(['live']);
  });
});
