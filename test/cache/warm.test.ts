/**
 * `warmEvery(interval, entries, { name })`: entries refreshed on a schedule, each turn in one
 * process across all of them (a lock in Redis), never two runs at once, stopped by close().
 */
import { type Cache, type CacheEventMap, type CacheOptions } from '@idem/cache';
import { describe, expect, it } from 'vitest';
import { deferred, until } from '../harness/wait.js';
import { busConnected, newKey, nextEvent, useRedisCaches } from './helpers.js';
import { Worker, type Message } from './workers.js';

const redis = useRedisCaches();

async function cacheOn(options: CacheOptions = {}): Promise<Cache> {
  const cache = redis.open({ namespace: newKey('warm'), ...options });
  await busConnected(cache);
  return cache;
}

/** Every `warm` event of `cache`, as they come. */
function warmEvents(cache: Cache): CacheEventMap['warm'][] {
  const seen: CacheEventMap['warm'][] = [];
  cache.events.on('warm', (e) => seen.push(e));
  return seen;
}

/** Resolves after `ms`: only to show that something does NOT happen over a span of time. */
const quietFor = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('warmEvery', () => {
  it('stores the entries at once and again every interval; close() stops it', async () => {
    const cache = await cacheOn();
    const seen = warmEvents(cache);
    let run = 0;
    cache.warmEvery(
      '40ms',
      () => {
        run++;
        return [
          { key: 'config', value: { run } },
          { key: 'rates', value: { run }, tags: ['rates'] },
        ];
      },
      { name: 'refs' },
    );
    await until(() => seen.filter((e) => e.outcome === 'stored').length >= 3, 'three runs', 5_000);
    expect(seen[0]).toMatchObject({ name: 'refs', outcome: 'stored', entries: 2 });
    const value = (await cache.get<{ run: number }>('config'))?.run ?? 0;
    expect(value).toBeGreaterThanOrEqual(3);
    await cache.close();
    const runs = run;
    await quietFor(200);
    expect(run).toBe(runs);
  });

  it('never overlaps its own runs: a turn that comes while one runs is skipped', async () => {
    const cache = await cacheOn();
    const seen = warmEvents(cache);
    let running = 0;
    let most = 0;
    const gate = deferred<void>();
    const schedule = cache.warmEvery(
      '20ms',
      async () => {
        most = Math.max(most, ++running);
        await gate.promise;
        running--;
        return [{ key: 'slow', value: 1 }];
      },
      { name: 'slow' },
    );
    await until(() => seen.filter((e) => e.reason === 'overlap').length >= 3, 'skipped turns', 5_000);
    expect(most).toBe(1);
    const stored = nextEvent(cache, 'warm', (e) => e.outcome === 'stored');
    gate.resolve();
    await stored;
    schedule.stop();
    expect(most).toBe(1);
  });

  it('reports a failing entries function and goes on with the next turn', async () => {
    const cache = await cacheOn();
    let calls = 0;
    cache.warmEvery(
      '30ms',
      () => {
        if (++calls === 1) throw new Error('upstream down');
        return [{ key: 'k', value: calls }];
      },
      { name: 'flaky' },
    );
    expect(await nextEvent(cache, 'warm', (e) => e.outcome === 'failed')).toMatchObject({ name: 'flaky', entries: 0 });
    await nextEvent(cache, 'warm', (e) => e.outcome === 'stored');
    expect(await cache.get('k')).toBeGreaterThanOrEqual(2);
  });

  it('checks its arguments', async () => {
    const cache = await cacheOn();
    expect(() => cache.warmEvery(0, [])).toThrow(expect.objectContaining({ option: 'interval' }));
    expect(() => cache.warmEvery('1s', 5 as never)).toThrow(expect.objectContaining({ option: 'entries' }));
    expect(() => cache.warmEvery('1s', [], { name: '' })).toThrow(expect.objectContaining({ option: 'name' }));
    expect(() => cache.warmEvery('1s', [], { every: 1 } as never)).toThrow(
      expect.objectContaining({ option: 'every' }),
    );
  });

  describe('across 4 processes', () => {
    /** Each run's [start, end] in wall-clock ms, from every process, in start order. */
    function runs(workers: Worker[]): { start: number; end: number; pid: number }[] {
      const all = workers.flatMap((w) => w.events);
      const ends = all.filter((e) => e.event === 'warmEnd');
      return all
        .filter((e): e is Message & { at: number; pid: number } => e.event === 'warmStart')
        .map((s) => ({
          start: s.at,
          pid: s.pid,
          end: ends.find((e) => e.pid === s.pid && (e.at as number) >= s.at)?.at as number,
        }))
        .sort((a, b) => a.start - b.start);
    }

    it.each([
      ['a short run', 20],
      ['a run longer than the interval', 250],
    ])('each turn runs in one process, never two at once (%s)', async (_label, runMs) => {
      const interval = 100;
      const namespace = newKey('warm-mp');
      const workers = Array.from({ length: 4 }, () => new Worker());
      try {
        await Promise.all(workers.map((w) => w.call('init', { url: redis.server.url, options: { namespace } })));
        await Promise.all(workers.map((w) => w.call('warmEvery', { interval, runMs, name: 'shared' })));
        await until(() => runs(workers).filter((r) => r.end !== undefined).length >= 6, 'six runs', 10_000);
        await Promise.all(workers.map((w) => w.call('closeCache')));
        const done = runs(workers).filter((r) => r.end !== undefined);
        for (let i = 1; i < done.length; i++) {
          const [previous, next] = [done[i - 1], done[i]] as [(typeof done)[0], (typeof done)[0]];
          // Never two at once, and at most one run per interval across every process.
          expect(next.start).toBeGreaterThanOrEqual(previous.end);
          expect(next.start - previous.start).toBeGreaterThanOrEqual(interval - 5);
        }
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
    });
  });
});
