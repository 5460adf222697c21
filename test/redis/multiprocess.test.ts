/**
 * Exactly-once across processes: three Express app processes share one Redis (a single node, then
 * a 3-master Cluster; Fastify and Hono apps on the single node) and receive truly concurrent duplicates over real HTTP. Executions are
 * counted from the handler side (each process reports every run over IPC).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  App,
  executions,
  handlerStarted,
  post,
  storeErrors,
  type AppConfig,
  type Reply,
} from '../fixtures/redis-apps.js';
import { until } from '../harness/wait.js';
import { RedisServer, startCluster, type RedisCluster } from '../harness/redis.mjs';

const PROCESSES = 3;

interface Topology {
  name: string;
  start(): Promise<{ redis: AppConfig['redis']; stop(): Promise<void> }>;
}

const topologies: Topology[] = [
  {
    name: 'one Redis node',
    async start() {
      const server = await RedisServer.start();
      return { redis: { url: server.url }, stop: () => server.stop() };
    },
  },
  {
    name: 'a 3-master Redis Cluster',
    async start() {
      const cluster: RedisCluster = await startCluster(3);
      return { redis: { cluster: cluster.startupNodes }, stop: () => cluster.stop() };
    },
  },
];

/** The parts of a response a replay must reproduce exactly. */
function replayable(reply: Reply): {
  status: number;
  body: string;
  location: unknown;
  servedBy: unknown;
  type: unknown;
} {
  return {
    status: reply.status,
    body: reply.body.toString('base64'),
    location: reply.headers.location,
    servedBy: reply.headers['x-served-by'],
    type: reply.headers['content-type'],
  };
}

/** Express on every topology; Fastify and Hono, on the same engine, on one node. */
const runs = [
  ...topologies.map((topology) => ({ topology, framework: 'express' as const, label: `Express, ${topology.name}` })),
  ...(['fastify', 'hono'] as const).map((framework) => ({
    topology: topologies[0] as Topology,
    framework,
    label: `${framework === 'fastify' ? 'Fastify' : 'Hono'}, ${(topologies[0] as Topology).name}`,
  })),
];

describe.each(runs)('exactly once across processes: $label', ({ topology, framework }) => {
  let apps: App[] = [];
  let stopRedis: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const redis = await topology.start();
    stopRedis = redis.stop;
    const config: AppConfig = {
      framework,
      redis: redis.redis,
      store: { commandTimeout: 5_000, pollInterval: 200 },
      idempotency: { lockTtl: 1_000, waitTimeout: 20_000 },
    };
    apps = await Promise.all(Array.from({ length: PROCESSES }, () => App.start(config)));
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.stop()));
    await stopRedis();
  });

  const appFor = (i: number): App => apps[i % apps.length] as App;

  it('reject: 60 concurrent duplicates over 3 processes run the handler once; 59 get 409, one gets 201; every process replays it byte for byte', async () => {
    const key = randomUUID();
    let answered = 0;
    const replies = Array.from({ length: 60 }, (_, i) =>
      post(appFor(i).port, '/work', { key, body: { item: 'book' }, hold: true }).then((reply) => {
        answered++;
        return reply;
      }),
    );
    // The first holds its handler: every other duplicate must be answered while it runs.
    await handlerStarted(apps, key);
    await until(() => answered >= 59, '59 answers while the handler is held');
    for (const app of apps) app.release(key);
    const all = await Promise.all(replies);

    expect(await executions(apps, key)).toBe(1);
    const statuses = all.map((r) => r.status).sort();
    expect(statuses, storeErrors(apps)).toEqual([201, ...Array(59).fill(409)]);
    for (const reply of all.filter((r) => r.status === 409)) {
      expect(reply.headers['retry-after']).toBeDefined();
      expect(reply.json().code).toBe('in_flight');
    }

    const original = all.find((r) => r.status === 201) as Reply;
    const replays = await Promise.all(apps.map((app) => post(app.port, '/work', { key, body: { item: 'book' } })));
    for (const replay of replays) {
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replayable(replay)).toEqual(replayable(original));
    }
    expect(await executions(apps, key)).toBe(1);
  });

  it('wait: 60 concurrent duplicates over 3 processes all get the one response', async () => {
    const key = randomUUID();
    const before = apps.map((app) => app.messages.filter((m) => m.type === 'arrived' && m.key === key).length);
    expect(before.every((n) => n === 0)).toBe(true);
    const replies = Array.from({ length: 60 }, (_, i) => post(appFor(i).port, '/wait', { key, hold: true }));
    // Release only when all 60 reached the apps: 59 of them are waiting on (or about to see) the held one.
    await until(
      () =>
        apps.reduce((sum, app) => sum + app.messages.filter((m) => m.type === 'arrived' && m.key === key).length, 0) ===
        60,
      'all 60 requests to arrive',
    );
    await handlerStarted(apps, key);
    for (const app of apps) app.release(key);
    const all = await Promise.all(replies);

    expect(await executions(apps, key)).toBe(1);
    expect(
      all.map((r) => r.status),
      storeErrors(apps),
    ).toEqual(Array(60).fill(201));
    const first = replayable(all[0] as Reply);
    for (const reply of all) expect(replayable(reply)).toEqual(first);
    expect(all.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(59);
  });

  it('hundreds: 25 keys x 8 duplicates fired at once run 25 handlers, one per key, each key answered identically', async () => {
    const keys = Array.from({ length: 25 }, () => randomUUID());
    const requests = keys.flatMap((key, k) => Array.from({ length: 8 }, (_, i) => ({ key, app: appFor(k + i) })));
    const all = await Promise.all(
      requests.map(({ key, app }) => post(app.port, '/wait', { key, delayMs: 150 }).then((reply) => ({ key, reply }))),
    );

    expect(await executions(apps)).toBeGreaterThanOrEqual(25);
    for (const key of keys) {
      expect(await executions(apps, key)).toBe(1);
      const replies = all.filter((r) => r.key === key).map((r) => r.reply);
      expect(
        replies.map((r) => r.status),
        storeErrors(apps),
      ).toEqual(Array(8).fill(201));
      const first = replayable(replies[0] as Reply);
      for (const reply of replies) expect(replayable(reply)).toEqual(first);
    }
  });

  it('hundreds, reject: 25 keys x 8 held duplicates give exactly 25 x 201 and 175 x 409', async () => {
    const keys = Array.from({ length: 25 }, () => randomUUID());
    let answered = 0;
    const all = keys.flatMap((key, k) =>
      Array.from({ length: 8 }, (_, i) =>
        post(appFor(k + i).port, '/work', { key, hold: true }).then((reply) => {
          answered++;
          return { key, reply };
        }),
      ),
    );
    for (const key of keys) await handlerStarted(apps, key);
    await until(() => answered >= 175, 'the 175 duplicates to be answered');
    for (const app of apps) app.release();
    const settled = await Promise.all(all);
    for (const key of keys) {
      expect(await executions(apps, key)).toBe(1);
      const statuses = settled
        .filter((r) => r.key === key)
        .map((r) => r.reply.status)
        .sort();
      expect(statuses, storeErrors(apps)).toEqual([201, ...Array(7).fill(409)]);
    }
  });
});
