/**
 * `warmEvery()`: entries refreshed on a schedule, one run at a time in a process, one process per
 * turn across processes sharing a Redis (each cache here has its own Redis connections, as a
 * process would), stopped by `stop()` and by `close()`.
 */
import { type Cache, type CacheEventMap, type CacheOptions } from '@idem/cache';
import { describe, expect, it } from 'vitest';
import { deferred } from '../harness/wait.js';
import { newKey, useRedisCaches } from './helpers.js';

type Warm = CacheEventMap['warm'];

const redis = useRedisCaches();

/** A cache, on its own Redis client (as a process has) or memory-only. */
function open(options: Partial<CacheOptions> = {}, withRedis = false): Cache {
  return withRedis ? redis.open(options) : redis.memory(options);
}

/** Resolves with the first `count` `warm` events of `cache` that pass `filter`. */
function warmEvents(cache: Cache, count: number, filter: (e: Warm) => boolean = () => true): Promise<Warm[]> {
  const seen: Warm[] = [];
  return new Promise((resolve) => {
    const listener = (event: Warm): void => {
      if (!filter(event)) return;
      seen.push(event);
      if (seen.length === count) {
        cache.events.off('warm', listener);
        resolve(seen);
      }
    };
    cache.events.on('warm', listener);
  });
}

describe('warmEvery', () => {
  it('stores the entries at once and again on every turn, each run calling the entries function', async () => {
    const cache = open();
    const key = newKey('warm');
    let runs = 0;
    const stored = warmEvents(cache, 3, (e) => e.outcome === 'stored');
    cache.warmEvery(20, () => [{ key, value: { run: ++runs } }]);
    const events = await stored;
    expect(events.map((e) => e.entries)).toEqual([1, 1, 1]);
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(await cache.get<{ run: number }>(key)).toEqual({ run: runs });
  });

  it('skips a turn while its previous run still runs, and never runs two at once', async () => {
    const cache = open();
    const gate = deferred<void>();
    let active = 0;
    let most = 0;
    const skipped = warmEvents(cache, 2, (e) => e.outcome === 'skipped');
    cache.warmEvery(10, async () => {
      active++;
      most = Math.max(most, active);
      await gate.promise;
      active--;
      return [{ key: newKey('slow'), value: 1 }];
    });
    const [first] = await skipped;
    expect(first?.reason).toBe('overlap');
    const stored = warmEvents(cache, 1, (e) => e.outcome === 'stored');
    gate.resolve();
    await stored;
    expect(most).toBe(1);
  });

  it('reports a failing run and keeps its schedule', async () => {
    const cache = open();
    let calls = 0;
    const events = warmEvents(cache, 2);
    cache.warmEvery(10, () => {
      calls++;
      if (calls === 1) throw new Error('catalogue down');
      return [{ key: newKey('after'), value: calls }];
    });
    const [failed, next] = await events;
    expect(failed).toMatchObject({ outcome: 'failed', entries: 0 });
    expect((failed?.error as Error).message).toBe('catalogue down');
    expect(next?.outcome).toBe('stored');
  });

  it('runs no more once stopped, nor after close()', async () => {
    const cache = open();
    let stoppedRuns = 0;
    let closedRuns = 0;
    // A live schedule on the same interval is the clock the others are checked against.
    const clock = cache.warmEvery(10, () => [], { name: 'clock' });
    const first = warmEvents(cache, 2, (e) => e.name === 'a' && e.outcome === 'stored');
    const stopped = cache.warmEvery(10, () => [{ key: newKey('a'), value: ++stoppedRuns }], { name: 'a' });
    await first;
    stopped.stop();
    const atStop = stoppedRuns;
    await warmEvents(cache, 3, (e) => e.name === 'clock');
    expect(stoppedRuns).toBe(atStop);

    const other = open();
    const ran = warmEvents(other, 1, (e) => e.outcome === 'stored');
    other.warmEvery(10, () => [{ key: newKey('b'), value: ++closedRuns }], { name: 'b' });
    await ran;
    await other.close();
    const atClose = closedRuns;
    await warmEvents(cache, 3, (e) => e.name === 'clock');
    expect(closedRuns).toBe(atClose);
    clock.stop();
  });

  it('refuses a bad interval, entries or option, naming it', () => {
    const cache = open();
    expect(() => cache.warmEvery('soon' as never, [])).toThrow(/interval/);
    // Past 2^31-1 ms Node fires a timer at once: a schedule would run in a loop.
    expect(() => cache.warmEvery('30d', [])).toThrow(/interval/);
    expect(() => cache.warmEvery(1000, 42 as never)).toThrow(/entries/);
    expect(() => cache.warmEvery(1000, [], { every: 1 } as never)).toThrow(/every/);
  });
});

describe('warmEvery across processes sharing a Redis', () => {
  it('runs each turn in one process only: no two runs start within one interval', async () => {
    const interval = 100;
    const caches = [open({}, true), open({}, true), open({}, true)];
    const starts: number[] = [];
    const name = newKey('schedule');
    const enough = new Promise<void>((resolve) => {
      for (const cache of caches) {
        cache.warmEvery(
          interval,
          () => {
            starts.push(performance.now());
            if (starts.length === 6) resolve();
            return [{ key: `${name}:value`, value: starts.length }];
          },
          { name },
        );
      }
    });
    await enough;
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
    // The lock lives `interval` in Redis from the run's start; a few ms of timer and round-trip slack.
    for (const gap of gaps) expect(gap).toBeGreaterThan(interval - 15);
  });

  it('keeps the turn while a run outlasts the interval: other processes skip it', async () => {
    const interval = 40;
    const [a, b] = [open({}, true), open({}, true)];
    const name = newKey('long');
    const gate = deferred<void>();
    let bRuns = 0;
    const aStarted = deferred<void>();
    a.warmEvery(
      interval,
      async () => {
        aStarted.resolve();
        await gate.promise;
        return [];
      },
      { name },
    );
    await aStarted.promise;
    const skips = warmEvents(b, 3, (e) => e.outcome === 'skipped' && e.reason === 'elsewhere');
    b.warmEvery(interval, () => (bRuns++, []), { name });
    // Three of b's turns, over more than two intervals of a's run: the lock was renewed.
    await skips;
    expect(bRuns).toBe(0);
    gate.resolve();
  });
});
