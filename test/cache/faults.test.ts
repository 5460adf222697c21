/**
 * The cache under Redis trouble: a frozen server (timeouts, breaker), a killed and restarted
 * server (no request hangs; answers from L1 and the loader; recovery), and a dropped bus
 * connection (missed invalidations must not leave stale L1 copies; failed ones are replayed).
 */
import { Redis } from 'ioredis';
import { createCache, type Cache, type CacheOptions } from '@idem/cache';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { ChaosProxy } from '../harness/chaos-proxy.js';
import { until, within } from '../harness/wait.js';
import { busConnected, newKey, nextEvent } from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function cacheOn(url: string, options: CacheOptions = {}): Promise<{ cache: Cache; redis: Redis }> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  await new Promise((resolve) => redis.once('ready', resolve));
  const cache = createCache({ namespace: 'faults', ...options, redis });
  await busConnected(cache);
  cleanup.push(async () => {
    await cache.close();
    redis.disconnect();
  });
  return { cache, redis };
}

async function startServer(): Promise<RedisServer> {
  const server = await RedisServer.start();
  cleanup.push(() => server.stop());
  return server;
}

describe('cache under Redis faults', () => {
  it('a frozen Redis: calls are bounded by redisTimeout, the breaker opens, then recovers alone', async () => {
    const server = await startServer();
    const { cache } = await cacheOn(server.url, { redisTimeout: 50, breaker: { threshold: 3, cooldown: 200 } });
    const { cache: reader } = await cacheOn(server.url);
    const hot = newKey('hot');
    await cache.set(hot, 'hot value');

    server.pause();
    try {
      // An L1 hit never waits on Redis.
      expect(
        await within(
          cache.getOrSet(hot, () => 'loader'),
          100,
          'an L1 hit',
        ),
      ).toBe('hot value');
      const opened = nextEvent(cache, 'breaker', (e) => e.state === 'open');
      for (let i = 0; i < 3; i++) {
        expect(
          await within(
            cache.getOrSet(newKey('cold'), () => `loaded ${i}`),
            1_000,
            'a cold read',
          ),
        ).toBe(`loaded ${i}`);
      }
      await opened;
      // Open breaker: Redis is not even asked.
      const refused = nextEvent(cache, 'l2Error', (e) => e.error.code === 'cache_breaker_open');
      expect(
        await within(
          cache.getOrSet(newKey('cold'), () => 'no redis'),
          1_000,
        ),
      ).toBe('no redis');
      await refused;
      await within(cache.set(newKey(), 'x'), 1_000, 'set');
      expect(await within(cache.get(newKey()), 1_000, 'get')).toBeUndefined();
      await within(cache.delete(newKey()), 1_000, 'delete');
      await within(cache.deleteByTag('t'), 1_000, 'deleteByTag');
      expect(cache.stats().l2.breaker).toBe('open');
      expect(cache.stats().l2.errors).toBeGreaterThanOrEqual(3);
    } finally {
      server.resume();
    }

    // After the cooldown a probe goes through and closes the breaker: nothing to restart by hand.
    const closed = nextEvent(cache, 'breaker', (e) => e.state === 'closed');
    await until(
      async () => {
        await cache.get(newKey('probe'));
        return cache.stats().l2.breaker === 'closed';
      },
      'the breaker to close',
      5_000,
    );
    await closed;
    const after = newKey('after');
    await cache.set(after, 'written after recovery');
    expect(await reader.get(after)).toBe('written after recovery');
  });

  it('Redis killed mid-run: no request hangs, answers come from L1 and the loader, and it recovers alone', async () => {
    const server = await startServer();
    const { cache, redis } = await cacheOn(server.url, {
      redisTimeout: 100,
      breaker: { threshold: 3, cooldown: 200 },
      ttl: '1h',
    });
    const hot = Array.from({ length: 10 }, (_, i) => `hot-${i}-${newKey()}`);
    for (const key of hot) await cache.getOrSet(key, () => `value of ${key}`);

    let stop = false;
    let answered = 0;
    let loaderRuns = 0;
    const failures: unknown[] = [];
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = i % 3 === 0 ? `cold-${w}-${i}-${newKey()}` : (hot[(w + i) % hot.length] as string);
        try {
          // A hang detector, far above redisTimeout: every request must come back.
          const value = await within(
            cache.getOrSet(key, () => {
              loaderRuns++;
              return `value of ${key}`;
            }),
            1_500,
            `getOrSet(${key})`,
          );
          if (value !== `value of ${key}`) failures.push(new Error(`wrong value for ${key}: ${String(value)}`));
          answered++;
        } catch (error) {
          failures.push(error);
        }
        // Yield so the kill and the reconnection can happen between requests.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    await until(() => answered >= 100, '100 answers before the kill', 5_000);
    await server.kill();
    const atKill = answered;
    await until(() => answered >= atKill + 400, '400 answers while Redis is dead', 10_000);
    await until(() => redis.status !== 'ready', 'the client to notice', 5_000);
    const runsWhileDead = loaderRuns;
    const afterDeath = answered;
    await until(() => answered >= afterDeath + 200, '200 more answers while Redis is dead', 10_000);
    // Hot keys came from L1; only cold ones needed the loader.
    expect(loaderRuns - runsWhileDead).toBeLessThanOrEqual(Math.ceil((answered - afterDeath) / 3) + 4);

    const recovered = nextEvent(cache, 'bus', (e) => e.state === 'recovered', 10_000);
    await server.restart();
    await recovered;
    await until(() => redis.status === 'ready', 'the client to reconnect', 5_000);
    stop = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);

    // Redis came back empty; the cache writes to it again without being told (once a breaker
    // opened by the kill has let its probe through).
    await until(() => cache.stats().l2.breaker !== 'open', 'the breaker cooldown', 5_000);
    const { cache: reader } = await cacheOn(server.url);
    const key = newKey('after');
    await cache.getOrSet(key, () => 'after restart');
    expect(await reader.getOrSetEntry(key, () => 'reader loader')).toMatchObject({
      value: 'after restart',
      source: 'l2',
    });
  });

  it('a dropped bus connection: L1 copies from before the gap are re-checked, failed invalidations replayed', async () => {
    const server = await startServer();
    const proxy = await ChaosProxy.start(server.port);
    cleanup.push(() => proxy.stop());
    const { cache: a, redis: aRedis } = await cacheOn(proxy.url, { ttl: '1h' });
    const { cache: b } = await cacheOn(server.url, { ttl: '1h' });
    const changed = newKey('changed');
    const doomed = newKey('doomed');
    await a.getOrSet(changed, () => 'v1');
    await b.set(doomed, 'doomed value');
    expect(await a.get(doomed)).toBe('doomed value');
    expect(await b.get(doomed)).toBe('doomed value');

    const down = nextEvent(a, 'bus', (e) => e.state === 'disconnected');
    proxy.refuse();
    proxy.cut();
    await down;
    // While a is cut off: b changes a key a holds in L1 (a misses the message)…
    await b.set(changed, 'v2');
    // …and a deletes a key, which cannot reach Redis or b yet.
    await a.delete(doomed);
    expect(await b.get(doomed)).toBe('doomed value');

    const recovered = nextEvent(a, 'bus', (e) => e.state === 'recovered', 10_000);
    const replayed = nextEvent(b, 'invalidate', (e) => e.kind === 'delete' && e.origin === 'remote', 10_000);
    proxy.accept();
    await recovered;
    await until(() => aRedis.status === 'ready', 'a to reconnect', 5_000);
    expect(await a.getOrSetEntry(changed, () => 'loader')).toMatchObject({ value: 'v2', source: 'l2' });
    await replayed;
    expect(await b.get(doomed)).toBeUndefined();
  });
});
