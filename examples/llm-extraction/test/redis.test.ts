/**
 * Two instances of the service sharing one real redis-server (started by the harness): duplicates
 * spread across both cost one model call; customers loaded by one are served from Redis to the
 * other; and an unreachable REDIS_URL falls back to memory, loudly.
 */
import type { Server } from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, RedisServer } from '../../../test/harness/redis.mjs';
import { createApp, type Service } from '../src/app.js';
import { connectBackend } from '../src/backend.js';
import { testConfig } from '../src/config.js';
import { closeServer, fakeLlm, listen, meeting, memoryLogger, waitTracker, type FakeLlm } from './helpers.js';

interface Instance {
  service: Service;
  server: Server;
  llm: FakeLlm;
}

describe('two instances sharing Redis', () => {
  let redis: RedisServer;
  const instances: Instance[] = [];
  // Both instances report their waiting requests to one tracker.
  const waits = waitTracker();

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (let i = 0; i < 2; i++) {
      const backend = await connectBackend({ redisUrl: redis.url, databaseUrl: undefined }, memoryLogger().logger);
      expect(backend.kind).toBe('redis');
      const llm = fakeLlm();
      const service = createApp(testConfig(), { backend: { ...backend, store: waits.wrap(backend.store) }, llm });
      const { server } = await listen(service.app);
      instances.push({ service, server, llm });
    }
  });

  afterAll(async () => {
    for (const { service, server } of instances) {
      await closeServer(server);
      await service.close();
    }
    await redis?.stop();
  });

  const totalCalls = (): number => instances.reduce((n, i) => n + i.llm.calls, 0);

  it('answers ten concurrent duplicates spread over both instances with one model call', async () => {
    const before = totalCalls();
    waits.reset();
    const releases = instances.map((i) => i.llm.hold());
    const responses = Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        request(instances[n % 2]!.server)
          .post('/extract')
          .send(meeting('shared-1')),
      ),
    );
    try {
      await waits.waiters(9);
    } finally {
      for (const release of releases) release();
    }
    const all = await responses;

    expect(totalCalls()).toBe(before + 1);
    expect(all.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(new Set(all.map((r) => r.text)).size).toBe(1);
    expect(all.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(9);
    // The instance that did not run the model answered all five of its requests with the replay.
    const ranOn = instances.findIndex((i) => i.llm.calls > before);
    const otherResponses = all.filter((_, n) => n % 2 !== ranOn);
    expect(otherResponses).toHaveLength(5);
    expect(otherResponses.every((r) => r.headers['idempotent-replayed'] === 'true')).toBe(true);
  });

  it('replays on one instance what the other stored', async () => {
    const [a, b] = instances as [Instance, Instance];
    const first = await request(a.server).post('/analyze').send(meeting('shared-2'));
    const before = totalCalls();
    const replay = await request(b.server)
      .post('/analyze')
      .send(meeting(' shared-2 ', { meet_date: '2024-05-01T10:00:00Z' }));
    expect(first.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
    expect(totalCalls()).toBe(before);
  });

  it('shares customer records through the cache: loaded by one instance, read from Redis by the other', async () => {
    const [a, b] = instances as [Instance, Instance];
    const loaded = await request(a.server).get('/customers/shared-cust');
    const shared = await request(b.server).get('/customers/shared-cust');
    expect(loaded.body.cache.source).toBe('loader');
    expect(shared.body.cache.source).toBe('l2');
    expect(shared.body.customer).toEqual(loaded.body.customer);
  });

  it('reports Redis in /health', async () => {
    const res = await request(instances[0]!.server).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      store: { kind: 'redis', reachable: true },
      customer_cache: { redis: 'ok' },
    });
  });
});

describe('an unreachable REDIS_URL', () => {
  it('falls back to the memory store, says so at error level, and reports degraded health', async () => {
    const { logger, lines } = memoryLogger();
    // A free port: nothing listens there.
    const url = `redis://:secret@127.0.0.1:${await freePort()}`;
    const backend = await connectBackend({ redisUrl: url, databaseUrl: undefined }, logger, {
      connectTimeoutMs: 2_000,
    });
    const service = createApp(testConfig(), { backend, llm: fakeLlm() });
    try {
      expect(backend.kind).toBe('memory');
      expect(backend.fallbackReason).toContain('127.0.0.1');
      const loud = lines.find((l) => l.level === 50);
      expect(String(loud?.msg)).toContain('FALLING BACK TO THE IN-MEMORY STORE');
      // The password never reaches the logs.
      expect(JSON.stringify(lines)).not.toContain('secret');

      const health = await request(service.app).get('/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'degraded', store: { kind: 'memory', reachable: true } });
      const served = await request(service.app).post('/extract').send(meeting('fallback-1'));
      expect(served.status).toBe(200);
    } finally {
      await service.close();
    }
  });
});
