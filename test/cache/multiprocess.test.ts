/**
 * @idem/cache across real processes sharing one Redis: cold-key storms (loader runs counted from
 * the loader side), grace while the upstream is down, and invalidations crossing processes.
 * Children run test/fixtures/cache-worker.mjs against the built package.
 */
import { Redis } from 'ioredis';
import { createCache, type Cache } from '@idem/cache';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { busConnected, newKey } from './helpers.js';
import { Worker } from './workers.js';

const PROCESSES = 4;
const CALLERS = 50;

interface StormResult {
  outcomes: { value?: unknown; stale?: boolean; error?: string }[];
}

let server: RedisServer;
let workers: Worker[] = [];
let parent: Cache;
let parentRedis: Redis;

beforeAll(async () => {
  server = await RedisServer.start();
  workers = Array.from({ length: PROCESSES }, () => new Worker());
  await Promise.all(
    workers.map((w) => w.call('init', { url: server.url, options: { namespace: 'mp', ttl: '1m', grace: '1h' } })),
  );
  parentRedis = new Redis(server.url);
  parent = createCache({ redis: parentRedis, namespace: 'mp' });
  await busConnected(parent);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await parent?.close();
  parentRedis?.disconnect();
  await server?.stop();
});

afterEach(() => {
  for (const w of workers) w.events.length = 0;
});

/** Arms every process, then fires them together; returns every caller's outcome and the loader runs. */
async function storm(
  key: string,
  loader: { loaderMs: number; fail?: boolean },
): Promise<{ outcomes: StormResult['outcomes']; loaderRuns: number }> {
  await Promise.all(workers.map((w) => w.call('arm', { key, callers: CALLERS, ...loader })));
  const results = await Promise.all(workers.map((w) => w.call<StormResult>('go')));
  // Replies and events share one ordered IPC channel per child: every 'loaded' is already logged.
  const loaderRuns = workers.reduce(
    (n, w) => n + w.events.filter((e) => e.event === 'loaded' && e.key === key).length,
    0,
  );
  return { outcomes: results.flatMap((r) => r.outcomes), loaderRuns };
}

describe('cache across processes', () => {
  it(`a cold-key storm (${PROCESSES} processes × ${CALLERS} callers) runs the loader once`, async () => {
    for (let round = 0; round < 3; round++) {
      const key = newKey('cold');
      const { outcomes, loaderRuns } = await storm(key, { loaderMs: 150 });
      expect(loaderRuns).toBe(1);
      expect(outcomes).toHaveLength(PROCESSES * CALLERS);
      const first = outcomes[0]?.value;
      expect(first).toMatchObject({ key });
      for (const outcome of outcomes) expect(outcome).toEqual({ value: first, stale: false });
    }
  });

  it('upstream down with grace: every caller in every process gets the stale value, none an error', async () => {
    const key = newKey('down');
    // Written a minute "ago" with a 10 s ttl: expired now, well inside its hour of grace.
    const past = createCache({
      redis: parentRedis,
      namespace: 'mp',
      ttl: '10s',
      grace: '1h',
      clock: () => Date.now() - 60_000,
    });
    await past.set(key, { report: 'last good' });
    await past.close();
    const { outcomes, loaderRuns } = await storm(key, { loaderMs: 20, fail: true });
    expect(outcomes).toHaveLength(PROCESSES * CALLERS);
    for (const outcome of outcomes) expect(outcome).toEqual({ value: { report: 'last good' }, stale: true });
    // The upstream was asked (one flight per process at most), and its failure never cached.
    expect(loaderRuns).toBeGreaterThanOrEqual(1);
    expect(loaderRuns).toBeLessThanOrEqual(PROCESSES);
  });

  it("delete, set and deleteByTag in one process reach another process's L1", async () => {
    const [child] = workers as [Worker];
    const key = newKey('shared');
    await child.call('getOrSet', { key, value: 'v1', tags: ['customer:7'] });
    expect(await child.call('getOrSet', { key, value: 'other' })).toMatchObject({ value: 'v1', source: 'l1' });
    await child.call('watch', { key, tag: 'customer:7' });

    await parent.set(key, 'v2');
    await child.waitEvent((e) => e.event === 'invalidated' && e.kind === 'set');
    expect(await child.call('get', { key })).toEqual({ value: 'v2' });

    await parent.delete(key);
    await child.waitEvent((e) => e.event === 'invalidated' && e.kind === 'delete');
    expect(await child.call('get', { key })).toEqual({});

    await child.call('getOrSet', { key, value: 'v3', tags: ['customer:7'] });
    await parent.deleteByTag('customer:7');
    await child.waitEvent((e) => e.event === 'invalidated' && e.kind === 'tags');
    expect(await child.call('get', { key })).toEqual({});
  });
});
