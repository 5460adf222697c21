/**
 * The admin API's shared suite on the Redis store (a real redis-server), and what the health
 * endpoint says when that server stops answering.
 */
import { randomUUID } from 'node:crypto';
import { redisStore } from '@idem/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { expressApp, koaApp } from './apps.js';
import { adminSuite } from './suite.js';

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await server?.stop();
});

function connect(): Redis {
  const client = new Redis(server.url);
  client.on('error', () => {}); // the paused-server test makes reconnects fail, as expected
  clients.push(client);
  return client;
}

adminSuite('Redis', {
  createStore: () => redisStore({ client: connect(), prefix: `admin-${randomUUID().slice(0, 8)}:` }),
});

describe('admin health with the Redis store', () => {
  for (const start of [expressApp, koaApp]) {
    it(`${start.name}: a paused server is 503 problem+json with the health report`, async () => {
      const store = redisStore({ client: connect(), commandTimeout: 200 });
      const app = await start({ store });
      try {
        expect((await app.admin('/health')).status).toBe(200);
        server.pause();
        const response = await app.admin('/health');
        expect(response.status).toBe(503);
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        expect(response.headers.get('retry-after')).toBe('1');
        const body = (await response.json()) as { code: string; health: { status: string; store: object } };
        expect(body.code).toBe('store_unavailable');
        expect(body.health.status).toBe('unavailable');
        expect(body.health.store).toMatchObject({ name: 'redis', reachable: false, probe: 'ping', error: 'failed' });
      } finally {
        server.resume();
        await app.close();
        await store.close();
      }
      // Back when the server is.
      const again = await start({ store: redisStore({ client: connect() }) });
      expect((await again.admin('/health')).status).toBe(200);
      await again.close();
    });
  }
});
