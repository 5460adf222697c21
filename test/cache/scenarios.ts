/**
 * The cache scenario suite: the behaviour every tier configuration must show, written once and
 * run against memory-only and memory+Redis (see cache-memory.test.ts, cache-redis.test.ts).
 * Each test gets a fresh namespace and random keys. Time passes through a fake clock, never sleeps.
 *
 * @example
 * cacheScenarios('memory', { shared: false, create: async (options) => createCache(options) });
 */
import { CacheError, type Cache, type CacheOptions } from '@idem/cache';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deferred, until } from '../harness/wait.js';
import { busConnected, fakeClock, heldLoad, newKey, nextEvent } from './helpers.js';

export interface CacheTier {
  /** True when instances share an L2: a second instance with a cold L1 still finds the value. */
  shared: boolean;
  /** A new cache on this tier; the suite closes it after the test. */
  create(options: CacheOptions): Promise<Cache>;
}

export function cacheScenarios(name: string, tier: CacheTier): void {
  describe(`cache scenarios: ${name}`, () => {
    let namespace = '';
    const opened: Cache[] = [];
    const make = async (options: CacheOptions = {}): Promise<Cache> => {
      const cache = await tier.create({ namespace, ...options });
      opened.push(cache);
      return cache;
    };
    /** A second instance on the same backend, or undefined when the tier shares nothing. */
    const peer = async (options: CacheOptions = {}): Promise<Cache | undefined> =>
      tier.shared ? make(options) : undefined;

    beforeEach(() => {
      namespace = newKey('ns');
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((c) => c.close()));
    });

    it('runs the loader once, then answers from memory', async () => {
      const cache = await make();
      const key = newKey();
      let runs = 0;
      expect(await cache.getOrSet(key, () => ++runs && { n: runs })).toEqual({ n: 1 });
      expect(await cache.getOrSetEntry(key, () => ++runs && { n: runs })).toMatchObject({
        value: { n: 1 },
        source: 'l1',
        stale: false,
      });
      expect(runs).toBe(1);
      expect(cache.stats().l1).toMatchObject({ hits: 1, misses: 1 });
      expect(cache.stats().loader.runs).toBe(1);
    });

    it('round-trips values exactly: JSON, Buffers, Uint8Arrays, undefined, tag look-alikes', async () => {
      const cache = await make();
      const reader = (await peer()) ?? cache;
      const values: unknown[] = [
        { nested: { list: [1, 'two', null, true, { deep: -0.5 }] }, emoji: 'héllo ✓' },
        'plain',
        42,
        null,
        [],
        Buffer.from([0, 1, 2, 254, 255]),
        new Uint8Array([9, 8, 7]),
        { image: Buffer.from('png-bytes'), parts: [Buffer.from('a'), { b: Buffer.alloc(0) }] },
        { '\u0000b': 'not a buffer', '\u0000\u0000x': 1 },
        undefined,
      ];
      const keys = values.map(() => newKey());
      await Promise.all(values.map((value, i) => cache.set(keys[i] as string, value)));
      for (const [i, value] of values.entries()) {
        const entry = await reader.getOrSetEntry(keys[i] as string, () => 'loader must not run');
        expect(entry.value).toEqual(value);
        expect(entry.source).toBe(tier.shared ? 'l2' : 'l1');
      }
      const buffer = await reader.get<Buffer>(keys[5] as string);
      expect(Buffer.isBuffer(buffer)).toBe(true);
      const bytes = await reader.get<Uint8Array>(keys[6] as string);
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(bytes)).toBe(false);
      const nested = await reader.get<{ image: Buffer; parts: [Buffer, { b: Buffer }] }>(keys[7] as string);
      expect(Buffer.isBuffer(nested?.image)).toBe(true);
      expect(Buffer.isBuffer(nested?.parts[1].b)).toBe(true);
    });

    it('runs the loader once for many concurrent callers, and hands all of them its value', async () => {
      const a = await make();
      const b = await peer();
      const key = newKey();
      const gate = deferred<string>();
      let runs = 0;
      const loader = (): Promise<string> => {
        runs++;
        return gate.promise;
      };
      const instances = b === undefined ? [a] : [a, b];
      const calls = Array.from({ length: 60 }, (_, i) =>
        (instances[i % instances.length] as Cache).getOrSet(key, loader),
      );
      await until(() => runs > 0, 'the loader to start', 5_000);
      gate.resolve('one value');
      expect(await Promise.all(calls)).toEqual(Array(60).fill('one value'));
      expect(runs).toBe(1);
    });

    it('shares a loader error with every caller of that flight and never caches it', async () => {
      const cache = await make();
      const other = await peer();
      const key = newKey();
      const gate = deferred<string>();
      let runs = 0;
      const failure = new Error('upstream down');
      const calls = Array.from({ length: 10 }, () =>
        cache
          .getOrSet(key, () => {
            runs++;
            return gate.promise;
          })
          .then(
            () => 'resolved',
            (error: unknown) => error,
          ),
      );
      await until(() => runs > 0, 'the loader to start', 5_000);
      gate.reject(failure);
      for (const outcome of await Promise.all(calls)) expect(outcome).toBe(failure);
      expect(runs).toBe(1);
      expect(cache.stats().loader.errors).toBe(1);
      if (other !== undefined) expect(await other.get(key)).toBeUndefined();
      expect(await cache.getOrSet(key, () => 'recovered')).toBe('recovered');
    });

    it('keeps a value fresh until ttl and reloads it at ttl', async () => {
      const clock = fakeClock();
      const cache = await make({ clock, ttl: 60_000 });
      const other = await peer({ clock, ttl: 60_000 });
      const key = newKey();
      await cache.getOrSet(key, () => 'v1');
      clock.advance(59_999);
      expect(await cache.getOrSet(key, () => 'v2')).toBe('v1');
      if (other !== undefined)
        expect(await other.getOrSetEntry(key, () => 'v2')).toMatchObject({ value: 'v1', source: 'l2' });
      clock.advance(1);
      expect(await cache.get(key)).toBeUndefined();
      expect(await cache.getOrSetEntry(key, () => 'v2')).toMatchObject({ value: 'v2', source: 'loader', stale: false });
    });

    it('serves the stale value while the loader throws, until ttl + grace, marked and counted', async () => {
      const clock = fakeClock();
      const cache = await make({ clock, ttl: 10_000, grace: 5_000 });
      const other = await peer({ clock, ttl: 10_000, grace: 5_000 });
      const key = newKey();
      await cache.getOrSet(key, () => 'v1');
      clock.advance(14_999);
      const staleEvent = nextEvent(cache, 'stale', (e) => e.key === key);
      const entry = await cache.getOrSetEntry(key, () => {
        throw new Error('upstream down');
      });
      expect(entry).toMatchObject({ value: 'v1', stale: true });
      expect(await staleEvent).toEqual({ key, reason: 'error', ageMs: 4_999 });
      expect(cache.stats().stale).toMatchObject({ served: 1, error: 1 });
      if (other !== undefined) {
        // A cold instance finds the expired value in Redis and serves it just the same.
        expect(await other.getOrSetEntry(key, () => Promise.reject(new Error('down too')))).toMatchObject({
          value: 'v1',
          stale: true,
          source: 'l2',
        });
      }
      clock.advance(1);
      await expect(cache.getOrSet(key, () => Promise.reject(new Error('still down')))).rejects.toThrow('still down');
    });

    it('soft timeout: serves stale after `timeout` and lets the refresh land in the background', async () => {
      const clock = fakeClock();
      const cache = await make({ clock, ttl: 1_000, grace: 60_000 });
      const key = newKey();
      await cache.getOrSet(key, () => 'v1');
      clock.advance(1_000);
      const gate = deferred<string>();
      const entry = await cache.getOrSetEntry(key, () => gate.promise, { timeout: 20 });
      expect(entry).toMatchObject({ value: 'v1', stale: true });
      expect(cache.stats().stale.timeout).toBe(1);
      const landed = nextEvent(cache, 'load', (e) => e.key === key && e.ok);
      gate.resolve('v2');
      await landed;
      expect(await cache.getOrSet(key, () => 'v3')).toBe('v2');
    });

    it('hard timeout: with nothing stale, gives up with cache_hard_timeout; the late value is still cached', async () => {
      const cache = await make();
      const key = newKey();
      const gate = deferred<string>();
      const call = cache.getOrSet(key, () => gate.promise, { hardTimeout: 30 });
      await expect(call).rejects.toBeInstanceOf(CacheError);
      await expect(call).rejects.toMatchObject({ code: 'cache_hard_timeout', key });
      const landed = nextEvent(cache, 'load', (e) => e.key === key && e.ok);
      gate.resolve('late');
      await landed;
      expect(await cache.getOrSet(key, () => 'other')).toBe('late');
    });

    it('grace backoff: after a failure, serves stale without calling the loader until the backoff passes', async () => {
      const clock = fakeClock();
      const cache = await make({ clock, ttl: 1_000, grace: 60_000, graceBackoff: 5_000 });
      const key = newKey();
      await cache.getOrSet(key, () => 'v1');
      clock.advance(1_000);
      let runs = 0;
      const failing = (): never => {
        runs++;
        throw new Error('down');
      };
      expect(await cache.getOrSetEntry(key, failing)).toMatchObject({ value: 'v1', stale: true });
      clock.advance(4_999);
      const backoff = nextEvent(cache, 'stale', (e) => e.reason === 'backoff');
      expect(await cache.getOrSetEntry(key, failing)).toMatchObject({ value: 'v1', stale: true });
      await backoff;
      expect(runs).toBe(1);
      clock.advance(1);
      expect(await cache.getOrSet(key, failing)).toBe('v1');
      expect(runs).toBe(2);
    });

    it('eager refresh: past the given fraction of ttl, answers at once and refreshes in the background', async () => {
      const clock = fakeClock();
      const cache = await make({ clock, ttl: 10_000, eagerRefresh: 0.8 });
      const key = newKey();
      await cache.getOrSet(key, () => 'v1');
      let runs = 0;
      clock.advance(7_999);
      expect(await cache.getOrSet(key, () => ++runs && 'v2')).toBe('v1');
      expect(runs).toBe(0);
      clock.advance(1);
      const landed = nextEvent(cache, 'load', (e) => e.key === key && e.ok);
      expect(await cache.getOrSetEntry(key, () => ++runs && 'v2')).toMatchObject({ value: 'v1', stale: false });
      await landed;
      expect(runs).toBe(1);
      expect(await cache.getOrSet(key, () => 'v3')).toBe('v2');
    });

    it('jitter shortens each ttl by a random fraction up to the given one', async () => {
      const cache = await make({ ttl: 10_000, jitter: 0.5 });
      const ttls = new Set<number>();
      for (let i = 0; i < 40; i++) {
        const entry = await cache.getOrSetEntry(newKey(), () => i);
        const ttl = entry.expiresAt - entry.createdAt;
        expect(ttl).toBeGreaterThanOrEqual(5_000);
        expect(ttl).toBeLessThanOrEqual(10_000);
        ttls.add(ttl);
      }
      expect(ttls.size).toBeGreaterThan(5);
    });

    it('deleteByTag removes every entry carrying a tag, and only those', async () => {
      const cache = await make();
      const other = await peer();
      const [a, b, c, d] = [newKey('a'), newKey('b'), newKey('c'), newKey('d')] as const;
      await cache.set(a, 'a', { tags: ['customer:1'] });
      await cache.getOrSet(b, () => 'b', { tags: ['customer:1', 'region:eu'] });
      await cache.set(c, 'c', { tags: ['region:eu'] });
      await cache.set(d, 'd');
      await cache.deleteByTag('customer:1');
      expect(await cache.get(a)).toBeUndefined();
      expect(await cache.get(b)).toBeUndefined();
      expect(await cache.get(c)).toBe('c');
      expect(await cache.get(d)).toBe('d');
      if (other !== undefined) {
        expect(await other.get(a)).toBeUndefined();
        expect(await other.get(c)).toBe('c');
      }
      // `other` now holds c in its memory tier: it drops it when the invalidation reaches it over
      // the bus, which is asynchronous. Wait for that event, not for time.
      if (other !== undefined) await busConnected(other);
      const reached =
        other &&
        nextEvent(
          other,
          'invalidate',
          (e) => e.origin === 'remote' && e.kind === 'tags' && e.tags?.includes('region:eu') === true,
        );
      await cache.deleteByTag(['region:eu', 'unused']);
      expect(await cache.get(c)).toBeUndefined();
      expect(await cache.get(d)).toBe('d');
      await reached;
      expect(await (other ?? cache).get(c)).toBeUndefined();
    });

    it('delete removes keys; clear empties the namespace and leaves other namespaces alone', async () => {
      const cache = await make();
      const other = await peer();
      const neighbour = await make({ namespace: `${namespace}-neighbour` });
      const [k1, k2, k3] = [newKey(), newKey(), newKey()];
      for (const k of [k1, k2, k3]) await cache.set(k, k);
      await neighbour.set(k3, 'neighbour');
      await cache.delete(k1);
      expect(await cache.get(k1)).toBeUndefined();
      expect(await cache.get(k2)).toBe(k2);
      await cache.delete([k2]);
      expect(await (other ?? cache).get(k2)).toBeUndefined();
      await cache.clear();
      expect(await cache.get(k3)).toBeUndefined();
      expect(await (other ?? cache).get(k3)).toBeUndefined();
      expect(await neighbour.get(k3)).toBe('neighbour');
    });

    it('a delete during a load is not undone when the load lands', async () => {
      const cache = await make();
      const other = await peer();
      const key = newKey();
      const { call, gate } = await heldLoad<string>(cache, key);
      await cache.delete(key);
      gate.resolve('loaded before the delete');
      expect(await call).toBe('loaded before the delete');
      expect(await cache.get(key)).toBeUndefined();
      if (other !== undefined) expect(await other.get(key)).toBeUndefined();
    });

    it('set wins over a load that was already running', async () => {
      const cache = await make();
      const key = newKey();
      const { call, gate } = await heldLoad<string>(cache, key);
      await cache.set(key, 'explicit');
      gate.resolve('from the loader');
      await call;
      expect(await cache.get(key)).toBe('explicit');
    });

    it('warm stores many entries at once, with their options', async () => {
      const cache = await make();
      const other = await peer();
      const keys = [newKey(), newKey(), newKey()];
      expect(await cache.warm(keys.map((key, i) => ({ key, value: { i }, tags: ['warm'] })))).toBe(3);
      for (const [i, key] of keys.entries()) expect(await (other ?? cache).get(key)).toEqual({ i });
      await cache.deleteByTag('warm');
      expect(await cache.get(keys[0] as string)).toBeUndefined();
    });

    it('passes the stale value to the loader that replaces it', async () => {
      const clock = fakeClock();
      const cache = await make({ clock, ttl: 1_000, grace: 10_000 });
      const key = newKey();
      await cache.getOrSet(key, () => ({ etag: 'e1' }));
      clock.advance(1_000);
      let seen: unknown;
      await cache.getOrSet<{ etag: string }>(key, ({ stale, key: k }) => {
        seen = { stale, k };
        return { etag: 'e2' };
      });
      expect(seen).toEqual({ stale: { etag: 'e1' }, k: key });
    });

    it('holds at most l1.maxEntries in memory', async () => {
      const cache = await make({ l1: { maxEntries: 3 } });
      const keys = Array.from({ length: 10 }, () => newKey());
      for (const [i, key] of keys.entries()) await cache.set(key, `v${i}`);
      expect(cache.stats().l1.size).toBe(3);
      // Evicted from memory: gone on a memory-only cache, still in Redis otherwise.
      expect(await cache.get(keys[0] as string)).toBe(tier.shared ? 'v0' : undefined);
      expect(await cache.get(keys[9] as string)).toBe('v9');
    });

    it('counts hits and misses per tier, loader runs and latency', async () => {
      const cache = await make();
      const other = await peer();
      const key = newKey();
      await cache.getOrSet(key, () => 1);
      await cache.getOrSet(key, () => 2);
      const stats = cache.stats();
      expect(stats.l1).toMatchObject({ hits: 1, misses: 1 });
      expect(stats.loader.runs).toBe(1);
      expect(stats.loader.latency.count).toBe(1);
      expect(stats.loader.latency.maxMs).toBeGreaterThanOrEqual(stats.loader.latency.meanMs);
      if (other !== undefined) {
        expect(stats.l2).toMatchObject({ hits: 0, misses: 1, errors: 0, breaker: 'closed' });
        await other.getOrSet(key, () => 3);
        expect(other.stats().l2).toMatchObject({ hits: 1, misses: 0 });
        expect(other.stats().loader.runs).toBe(0);
      } else {
        expect(stats.l2).toEqual({ hits: 0, misses: 0, errors: 0, breaker: 'closed' });
      }
    });

    it('emits typed events; a throwing listener never breaks a call; once() fires once', async () => {
      const cache = await make();
      const key = newKey();
      const seen: string[] = [];
      cache.events.on('hit', () => {
        throw new Error('observer bug');
      });
      cache.events.once('miss', (e) => seen.push(`miss:${e.layer}`));
      cache.events.on('load', (e) => seen.push(`load:${e.ok}`));
      await cache.getOrSet(key, () => 1);
      expect(await cache.getOrSet(key, () => 2)).toBe(1);
      expect(seen).toEqual(['miss:l1', 'load:true']);
    });

    it('rejects bad per-call options with a TypeError naming the option', async () => {
      const cache = await make();
      await expect(cache.getOrSet(newKey(), () => 1, { ttl: 'soon' })).rejects.toMatchObject({
        name: 'CacheConfigError',
        option: 'ttl',
      });
      await expect(cache.set(newKey(), 1, { tags: [''] })).rejects.toBeInstanceOf(TypeError);
      await expect(cache.getOrSet(newKey(), 'not a function' as never)).rejects.toMatchObject({ option: 'loader' });
      await expect(cache.getOrSet(42 as never, () => 1)).rejects.toMatchObject({ option: 'key' });
    });

    it('refuses calls after close()', async () => {
      const cache = await make();
      await cache.close();
      await expect(cache.getOrSet(newKey(), () => 1)).rejects.toMatchObject({ code: 'cache_closed' });
      await expect(cache.get(newKey())).rejects.toMatchObject({ code: 'cache_closed' });
    });
  });
}
