/**
 * `l1: { maxBytes }`: memory bounded by bytes beside entries. Each entry is charged its size when
 * stored (estimated, or by `l1.sizeOf`), the least recently used go first, `stats()` tells the
 * bytes held, and a process loading large values stays under its bound.
 */
import { type Cache, type CacheOptions } from '@idem/cache';
import { describe, expect, it } from 'vitest';
import { busConnected, newKey, useRedisCaches } from './helpers.js';
import { Worker } from './workers.js';

const redis = useRedisCaches();

function memoryOnly(options: CacheOptions): Cache {
  return redis.memory(options);
}

async function cacheOn(options: CacheOptions = {}): Promise<Cache> {
  const cache = redis.open({ namespace: newKey('bytes'), ...options });
  await busConnected(cache);
  return cache;
}

const KB = 1024;

describe('l1.maxBytes', () => {
  it('holds at most maxBytes of values, evicting the least recently used, and reports the bytes', async () => {
    const cache = memoryOnly({ l1: { maxBytes: 100 * KB } });
    expect(cache.stats().l1).toMatchObject({ bytes: 0, maxBytes: 100 * KB });
    for (let i = 0; i < 50; i++) {
      await cache.set(`blob:${i}`, Buffer.alloc(10 * KB, i));
      expect(cache.stats().l1.bytes).toBeLessThanOrEqual(100 * KB);
    }
    const { l1 } = cache.stats();
    // About nine 10 KB values fit (each also pays for its key and entry): far below 50 entries.
    expect(l1.size).toBeGreaterThanOrEqual(8);
    expect(l1.size).toBeLessThanOrEqual(9);
    expect(l1.bytes).toBeGreaterThan(80 * KB);
    expect(await cache.get('blob:49')).toEqual(Buffer.alloc(10 * KB, 49));
    expect(await cache.get('blob:0')).toBeUndefined();
  });

  it('estimates strings, objects and arrays high rather than low', async () => {
    const cache = memoryOnly({ l1: { maxBytes: 1_000 * KB } });
    await cache.set('text', 'x'.repeat(10_000));
    const afterText = cache.stats().l1.bytes;
    // Two bytes a character at most in V8, plus the entry.
    expect(afterText).toBeGreaterThanOrEqual(20_000);
    expect(afterText).toBeLessThan(21_000);
    const rows = Array.from({ length: 1_000 }, (_, i) => ({ id: i, name: `row ${i}`, active: true }));
    await cache.set('rows', rows);
    expect(cache.stats().l1.bytes - afterText).toBeGreaterThan(Buffer.byteLength(JSON.stringify(rows)));
  });

  it('sizes entries with l1.sizeOf when given, and keeps no value larger than the bound', async () => {
    const cache = await cacheOn({ l1: { maxBytes: 10 * KB, sizeOf: (value) => (value as { size: number }).size } });
    await cache.set('small', { size: 1 * KB });
    await cache.set('huge', { size: 50 * KB });
    expect(cache.stats().l1.size).toBe(1);
    expect(cache.stats().l1.bytes).toBeLessThanOrEqual(10 * KB);
    // Too large for memory, still in Redis.
    expect(await cache.getOrSetEntry('huge', () => ({ size: 0 }))).toMatchObject({
      source: 'l2',
      value: { size: 50 * KB },
    });
    expect(await cache.getOrSetEntry('small', () => ({ size: 0 }))).toMatchObject({ source: 'l1' });
  });

  it('bounded by both, the tighter one wins', async () => {
    const cache = memoryOnly({ l1: { maxEntries: 3, maxBytes: 1_000 * KB } });
    for (let i = 0; i < 10; i++) await cache.set(`k${i}`, i);
    expect(cache.stats().l1.size).toBe(3);
  });

  it('a process loading 60 values of 1 MiB with maxBytes of 8 MiB stays under its bound, in L1 and in memory', async () => {
    const MiB = 1024 * 1024;
    const worker = new Worker({ execArgv: ['--expose-gc'] });
    try {
      await worker.call('init', {
        url: redis.server.url,
        options: { namespace: newKey('large'), l1: { maxBytes: 8 * MiB } },
      });
      const before = await worker.call<{ arrayBuffers: number }>('memory');
      const filled = await worker.call<{ mostBytes: number; mostEntries: number; stats: { l1: { size: number } } }>(
        'fillLarge',
        { count: 60, bytes: MiB },
      );
      expect(filled.mostBytes).toBeLessThanOrEqual(8 * MiB);
      expect(filled.mostEntries).toBeLessThanOrEqual(8);
      expect(filled.stats.l1.size).toBe(7);
      const after = await worker.call<{ arrayBuffers: number }>('memory');
      // The Buffers L1 keeps, and no more (60 MiB were loaded): under the bound after a collection.
      expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(8 * MiB);
    } finally {
      await worker.stop();
    }
  });
});
