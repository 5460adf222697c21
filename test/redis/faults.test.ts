/**
 * Faults with real processes: an app process SIGKILLed or frozen while it holds a key, Redis
 * paused or killed under fail-closed and fail-open apps, lock masters going down. Every wait is
 * for an event: an IPC message from an app, a Redis state, a request completing.
 */
import { randomUUID } from 'node:crypto';
import { storageKey } from '@idem/core';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
import { RedisServer, startCluster, startMasters, type RedisCluster } from '../harness/redis.mjs';

/** Where the store keeps the record of a key sent to POST `route` (the default scope is method + route). */
const recordKey = (key: string, route = '/work'): string => `idem:{${storageKey(`POST ${route}`, key)}}:rec`;

describe('app processes that die or freeze while holding a key', () => {
  let server: RedisServer;
  let redis: Redis;
  const apps: App[] = [];
  const start = async (config: Partial<AppConfig> = {}): Promise<App> => {
    const app = await App.start({
      redis: { url: server.url },
      store: { commandTimeout: 1_000, pollInterval: 100 },
      idempotency: { lockTtl: 400 },
      ...config,
    });
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.stop()));
    redis?.disconnect();
    await server?.stop();
  });

  it('SIGKILL of the holder mid-handler: duplicates get 409 until the lease lapses, then the retry runs exactly once', async () => {
    const [holder, b, c] = await Promise.all([start(), start(), start()]);
    const key = randomUUID();
    const first = post(holder.port, '/work', { key, hold: true }).catch((error: Error) => error);
    await holder.next((m) => m.type === 'ran' && m.key === key, 'the holder to run the handler');

    expect((await post(b.port, '/work', { key })).status).toBe(409);
    await holder.kill();
    expect(await first).toBeInstanceOf(Error);

    // Nobody renews the dead holder's lease: it lapses by itself.
    await until(async () => (await redis.exists(recordKey(key))) === 0, "the dead holder's lease to lapse", 5_000);
    const retries = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post((i % 2 ? b : c).port, '/work', { key, delayMs: 100 })),
    );
    const fresh = retries.filter((r) => r.status === 201 && r.headers['idempotent-replayed'] === undefined);
    expect(fresh).toHaveLength(1);
    for (const retry of retries) expect([201, 409]).toContain(retry.status);
    // One run in the killed process, one retry: no more.
    expect(await executions([b, c], key)).toBe(1);
    expect(holder.ran(key)).toHaveLength(1);
  });

  it("a lease that lapses while the app is frozen (SIGSTOP past lockTtl): the late writer's result is not stored over the new owner's", async () => {
    const [late, owner] = await Promise.all([start(), start()]);
    const key = randomUUID();
    const lateReply = post(late.port, '/work', { key, hold: true });
    await late.next((m) => m.type === 'ran' && m.key === key, 'the first process to run the handler');

    late.pause();
    await until(async () => (await redis.exists(recordKey(key))) === 0, "the frozen process's lease to lapse", 5_000);

    // A retry on another process becomes the new owner and is still running...
    const ownerReply = post(owner.port, '/work', { key, hold: true });
    await owner.next((m) => m.type === 'ran' && m.key === key, 'the new owner to run the handler');

    // ...when the late process thaws and finishes: its answer goes to its own client only.
    late.resume();
    late.release(key);
    expect((await lateReply).status).toBe(201);
    await late.next(
      (m) => m.type === 'event' && m.name === 'leaseLost' && m.key !== undefined,
      'the late process to report its lost lease',
    );
    await late.next(
      (m) => m.type === 'event' && m.name === 'execute' && m.outcome === 'fenced',
      'the late write to be fenced',
    );
    expect(await redis.getrange(recordKey(key), 0, 0)).toBe('f');

    owner.release(key);
    const stored = await ownerReply;
    expect(stored.status).toBe(201);
    for (const app of [late, owner]) {
      const replay = await post(app.port, '/work', { key });
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.equals(stored.body)).toBe(true);
      expect(replay.json().pid).toBe(owner.pid);
    }
  });
});

describe('Redis paused or killed under fail-closed and fail-open apps', () => {
  let server: RedisServer;
  let closed: App;
  let open: App;

  beforeAll(async () => {
    server = await RedisServer.start();
    const base: AppConfig = {
      redis: { url: server.url },
      store: { commandTimeout: 500, pollInterval: 100 },
      idempotency: { lockTtl: 1_000 },
    };
    [closed, open] = await Promise.all([
      App.start(base),
      App.start({ ...base, idempotency: { ...base.idempotency, onStoreError: 'fail-open' } }),
    ]);
  });
  afterEach(() => server.resume());
  afterAll(async () => {
    await Promise.all([closed?.stop(), open?.stop()]);
    await server?.stop();
  });

  async function expectUnavailable(): Promise<void> {
    const key = randomUUID();
    const reply = await post(closed.port, '/work', { key });
    expect(reply.status).toBe(503);
    expect(reply.headers['retry-after']).toBeDefined();
    expect(reply.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(reply.json().code).toBe('store_unavailable');
    expect(await executions([closed], key)).toBe(0);

    const openKey = randomUUID();
    const ran = await post(open.port, '/work', { key: openKey });
    expect(ran.status).toBe(201);
    expect(await executions([open], openKey)).toBe(1);
    expect(open.events('storeError').some((e) => e.failOpen === true)).toBe(true);
  }

  /** Recovered: a fresh key runs once and then replays, on the same processes. */
  async function expectRecovered(): Promise<void> {
    const key = randomUUID();
    const first = await until(async () => {
      const reply = await post(closed.port, '/work', { key });
      return reply.status === 201 ? reply : undefined;
    }, 'the fail-closed app to answer 201 again');
    const replay = await post(open.port, '/work', { key });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.equals((first as Reply).body)).toBe(true);
    expect(await executions([closed, open], key)).toBe(1);
  }

  it('paused (SIGSTOP): 503 + Retry-After fail-closed, the handler runs fail-open; recovers on resume without a restart', async () => {
    const before = randomUUID();
    expect((await post(closed.port, '/work', { key: before })).status).toBe(201);
    server.pause();
    await expectUnavailable();
    server.resume();
    await expectRecovered();
    // What was stored before the pause is still replayed.
    expect((await post(open.port, '/work', { key: before })).headers['idempotent-replayed']).toBe('true');
  });

  it('killed: 503 fail-closed, the handler runs fail-open; recovers when Redis is back, without restarting the apps', async () => {
    await server.kill();
    await expectUnavailable();
    await server.restart();
    await expectRecovered();
  });
});

describe('three lock masters going down under app processes', () => {
  let records: RedisServer;
  let masters: RedisServer[];
  let apps: App[];

  beforeAll(async () => {
    [records, masters] = await Promise.all([RedisServer.start(), startMasters(3)]);
    const config: AppConfig = {
      redis: { url: records.url },
      lockUrls: masters.map((m) => m.url),
      store: { commandTimeout: 500, pollInterval: 100 },
      idempotency: { lockTtl: 1_000 },
    };
    apps = await Promise.all([App.start(config), App.start(config)]);
  });
  afterAll(async () => {
    await Promise.all((apps ?? []).map((app) => app.stop()));
    await Promise.all([records, ...(masters ?? [])].map((s) => s?.stop()));
  });

  it('one master down: still exactly once; two down: 503; both back: works again', async () => {
    const [m1, m2] = masters as [RedisServer, RedisServer];
    await m1.kill();

    const key = randomUUID();
    let answered = 0;
    const replies = Array.from({ length: 20 }, (_, i) =>
      post((apps[i % 2] as App).port, '/work', { key, hold: true }).then((reply) => {
        answered++;
        return reply;
      }),
    );
    await handlerStarted(apps, key);
    await until(() => answered >= 19, '19 duplicates to be answered');
    for (const app of apps) app.release(key);
    const statuses = (await Promise.all(replies)).map((r) => r.status).sort();
    expect(statuses, storeErrors(apps)).toEqual([201, ...Array(19).fill(409)]);
    expect(await executions(apps, key)).toBe(1);

    m2.pause();
    const refused = await post((apps[0] as App).port, '/work', { key: randomUUID() });
    expect(refused.status).toBe(503);
    expect(refused.json().code).toBe('store_unavailable');

    m2.resume();
    await m1.restart();
    const back = randomUUID();
    await until(
      async () => (await post((apps[1] as App).port, '/work', { key: back })).status === 201,
      'a 201 with the masters back',
    );
    expect(await executions(apps, back)).toBe(1);
  });
});

describe('a Cluster node paused or killed under app processes', () => {
  let cluster: RedisCluster;
  let probe: Cluster;
  let apps: App[];

  beforeAll(async () => {
    // Without full coverage the other masters keep serving while one is down; with it (the
    // default) the whole Cluster answers CLUSTERDOWN once cluster-node-timeout passes.
    cluster = await startCluster(3, { args: ['--cluster-require-full-coverage', 'no'] });
    probe = new Cluster(cluster.startupNodes, { clusterRetryStrategy: () => 50 });
    probe.on('error', () => {});
    const config: AppConfig = {
      redis: { cluster: cluster.startupNodes },
      store: { commandTimeout: 500, pollInterval: 100 },
      idempotency: { lockTtl: 1_000 },
    };
    apps = await Promise.all([App.start(config), App.start(config)]);
  });
  afterAll(async () => {
    await Promise.all((apps ?? []).map((app) => app.stop()));
    probe?.disconnect();
    await cluster?.stop();
  });

  /** The node that owns the slot of a key sent to POST `route`. */
  async function ownerOf(key: string, route: string): Promise<RedisServer> {
    const slot = Number(await probe.cluster('KEYSLOT', recordKey(key, route)));
    const [address] = (probe.slots[slot] ?? []) as string[];
    return cluster.nodes.find((node) => address === `127.0.0.1:${node.port}`) as RedisServer;
  }

  /** A fresh key for POST `route` whose slot lives on `node` (or, with `elsewhere`, on another node). */
  async function keyOn(node: RedisServer, route: string, elsewhere = false): Promise<string> {
    for (;;) {
      const key = randomUUID();
      if (((await ownerOf(key, route)) === node) !== elsewhere) return key;
    }
  }

  it("paused node: its keys answer 503, the other masters' keys run exactly once, also for waiters; recovers on resume", async () => {
    const node = cluster.nodes[1] as RedisServer;
    const [onNode, healthy] = [await keyOn(node, '/work'), await keyOn(node, '/wait', true)];
    node.pause();
    try {
      const down = await post((apps[0] as App).port, '/work', { key: onNode });
      expect(down.status).toBe(503);
      expect(await executions(apps, onNode)).toBe(0);

      // Duplicates of a key on a healthy master, waiting across both processes: one run, one answer.
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) => post((apps[i % 2] as App).port, '/wait', { key: healthy, delayMs: 200 })),
      );
      expect(
        replies.map((r) => r.status),
        storeErrors(apps),
      ).toEqual(Array(10).fill(201));
      expect(new Set(replies.map((r) => r.body.toString('base64'))).size).toBe(1);
      expect(await executions(apps, healthy)).toBe(1);
    } finally {
      node.resume();
    }
    await until(
      async () => (await post((apps[1] as App).port, '/work', { key: onNode })).status === 201,
      "the paused node's key to work again",
    );
    expect(await executions(apps, onNode)).toBe(1);
  });

  it('killed node: its keys answer 503, then recover when the node is back, without restarting the apps', async () => {
    const node = cluster.nodes[2] as RedisServer;
    const key = await keyOn(node, '/work');
    await node.kill();
    expect((await post((apps[0] as App).port, '/work', { key })).status).toBe(503);
    await node.restart();
    await until(
      async () => (await post((apps[0] as App).port, '/work', { key })).status === 201,
      "the restarted node's key to work again",
      20_000,
      100,
    );
    const replay = await post((apps[1] as App).port, '/work', { key });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(await executions(apps, key)).toBe(1);
  });
});
