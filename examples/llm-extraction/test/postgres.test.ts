/**
 * The service with DATABASE_URL, on a real PostgreSQL started by the repository's test harness
 * (never the machine's own server): duplicates across two instances cost one model call, records
 * outlive the app (a new instance on the same database replays), the pool is closed with the app,
 * REDIS_URL beside it carries only the customer cache, and an unreachable database falls back to
 * memory, loudly.
 */
import type { Server } from 'node:http';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer } from '../../../test/harness/postgres.mjs';
import { freePort, RedisServer } from '../../../test/harness/redis.mjs';
import { createApp, type Service } from '../src/app.js';
import { connectBackend } from '../src/backend.js';
import { testConfig } from '../src/config.js';
import { APPLICATION_NAME } from '../src/postgres-backend.js';
import { closeServer, fakeLlm, listen, meeting, memoryLogger, waitTracker, type FakeLlm } from './helpers.js';

interface Instance {
  service: Service;
  server: Server;
  llm: FakeLlm;
}

let database: PostgresServer;
let admin: pg.Pool;
const waits = waitTracker();

beforeAll(async () => {
  database = await PostgresServer.start();
  admin = new pg.Pool({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.stop();
});

/** An instance of the service on the test database, as `DATABASE_URL=… npm start` builds it. */
async function start(redisUrl?: string): Promise<Instance> {
  const backend = await connectBackend({ databaseUrl: database.url, redisUrl }, memoryLogger().logger);
  expect(backend.kind).toBe('postgres');
  const llm = fakeLlm();
  const service = createApp(testConfig(), { backend: { ...backend, store: waits.wrap(backend.store) }, llm });
  const { server } = await listen(service.app);
  return { service, server, llm };
}

async function stop({ service, server }: Instance): Promise<void> {
  await closeServer(server);
  await service.close();
}

/** Connections the service holds on the database, by their application_name. */
async function connections(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
    [APPLICATION_NAME],
  );
  return rows[0]!.n;
}

describe('the service on PostgreSQL (DATABASE_URL, lease mode)', () => {
  it('answers ten concurrent duplicates spread over two instances with one model call', async () => {
    const instances = [await start(), await start()];
    try {
      waits.reset();
      const releases = instances.map((i) => i.llm.hold());
      const responses = Promise.all(
        Array.from({ length: 10 }, (_, n) =>
          request(instances[n % 2]!.server)
            .post('/extract')
            .send(meeting('pg-burst-1')),
        ),
      );
      // Release the model only once the nine others are provably waiting on the in-flight key.
      try {
        await waits.waiters(9);
      } finally {
        for (const release of releases) release();
      }
      const all = await responses;

      expect(instances.reduce((n, i) => n + i.llm.calls, 0)).toBe(1);
      expect(all.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(new Set(all.map((r) => r.text)).size).toBe(1);
      expect(all.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(9);
    } finally {
      for (const instance of instances) await stop(instance);
    }
  });

  it('replays after a restart: a new instance on the same database answers from the stored record', async () => {
    const before = await start();
    const first = await request(before.server).post('/analyze').send(meeting('pg-durable-1'));
    expect(first.status).toBe(200);
    expect(before.llm.calls).toBe(1);
    await stop(before);

    const after = await start();
    try {
      const replay = await request(after.server)
        .post('/analyze')
        .send(meeting(' pg-durable-1 ', { meet_date: '2024-05-01T10:00:00Z' }));
      expect(replay.status).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.text).toBe(first.text);
      expect(after.llm.calls).toBe(0);
    } finally {
      await stop(after);
    }
  });

  it('reports PostgreSQL in /health, and closes its connections with the app', async () => {
    const instance = await start();
    let closed = false;
    try {
      const health = await request(instance.server).get('/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({
        status: 'ok',
        store: { kind: 'postgres', reachable: true },
        customer_cache: { redis: 'off' },
      });
      expect(await connections()).toBeGreaterThan(0);
      await stop(instance);
      closed = true;
      // A backend exits a moment after its client hung up: look again until it has.
      for (let tries = 0; (await connections()) > 0 && tries < 100; tries++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await connections()).toBe(0);
    } finally {
      if (!closed) await stop(instance);
    }
  });

  it('with REDIS_URL too, keeps records on PostgreSQL and shares the customer cache on Redis', async () => {
    const redis = await RedisServer.start();
    const instances = [await start(redis.url), await start(redis.url)];
    try {
      const [a, b] = instances as [Instance, Instance];
      const first = await request(a.server).post('/extract').send(meeting('pg-redis-1'));
      const replay = await request(b.server).post('/extract').send(meeting('pg-redis-1'));
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.text).toBe(first.text);
      // The record is a row in PostgreSQL, not a key in Redis.
      const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM idem_records WHERE key = $1', [
        first.body.idempotency_key,
      ]);
      expect(rows[0]!.n).toBe(1);

      const loaded = await request(a.server).get('/customers/pg-cust');
      const shared = await request(b.server).get('/customers/pg-cust');
      expect([loaded.body.cache.source, shared.body.cache.source]).toEqual(['loader', 'l2']);
      const health = await request(b.server).get('/health');
      expect(health.body).toMatchObject({ store: { kind: 'postgres' }, customer_cache: { redis: 'ok' } });
    } finally {
      for (const instance of instances) await stop(instance);
      await redis.stop();
    }
  });
});

describe('an unreachable DATABASE_URL', () => {
  it('falls back to the memory store, says so at error level, and reports degraded health', async () => {
    const { logger, lines } = memoryLogger();
    // A free port: nothing listens there.
    const url = `postgres://app:secret@127.0.0.1:${await freePort()}/idem`;
    const backend = await connectBackend({ databaseUrl: url, redisUrl: undefined }, logger, {
      connectTimeoutMs: 2_000,
    });
    const service = createApp(testConfig(), { backend, llm: fakeLlm() });
    try {
      expect(backend.kind).toBe('memory');
      expect(backend.fallbackReason).toMatch(/127\.0\.0\.1.*ECONNREFUSED/);
      const loud = lines.find((l) => l.level === 50);
      expect(String(loud?.msg)).toContain('DATABASE_URL is set but PostgreSQL is unreachable');
      expect(String(loud?.msg)).toContain('FALLING BACK TO THE IN-MEMORY STORE');
      // The password never reaches the logs.
      expect(JSON.stringify(lines)).not.toContain('secret');

      const health = await request(service.app).get('/health');
      expect(health.body).toMatchObject({ status: 'degraded', store: { kind: 'memory', reachable: true } });
      expect(health.body.store.fallback_reason).toContain('127.0.0.1');
      const served = await request(service.app).post('/extract').send(meeting('pg-fallback-1'));
      expect(served.status).toBe(200);
    } finally {
      await service.close();
    }
  });
});
