import { Redis } from 'ioredis';
import { redisStore } from '@idem/redis';
import { afterAll, beforeAll } from 'vitest';
import { RedisServer } from './harness/redis.js';
import { storeConformance } from './store-conformance.js';

let server: RedisServer;
let client: Redis;

beforeAll(async () => {
  server = await RedisServer.start();
  client = new Redis(server.url);
});

afterAll(async () => {
  client?.disconnect();
  await server?.stop();
});

storeConformance('redis, single node', () => redisStore({ client, commandTimeout: 1_000, pollInterval: 100 }));
