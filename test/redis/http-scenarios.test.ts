/**
 * The HTTP scenario suite, unchanged, on every adapter with the Redis store on a real
 * redis-server: what holds on one process with memory holds through Redis too.
 */
import express from 'express';
import express4 from 'express4';
import { Redis } from 'ioredis';
import Koa from 'koa';
import Koa2 from 'koa2';
import { redisStore } from '@idem/redis';
import { afterAll, beforeAll } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { fastifyAdapter } from '../apps/fastify-app.js';
import { honoAdapter } from '../apps/hono-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import { RedisServer } from '../harness/redis.mjs';
import { httpScenarios } from '../http/scenarios.js';

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.quit()));
  await server.stop();
});

function createStore() {
  const client = new Redis(server.port, '127.0.0.1', { lazyConnect: false });
  clients.push(client);
  return redisStore({ client });
}

for (const adapter of [
  expressAdapter('Express 5 + Redis', express as never),
  expressAdapter('Express 4 + Redis', express4 as never),
  koaAdapter('Koa 3 + Redis', Koa),
  koaAdapter('Koa 2 + Redis', Koa2 as never),
  fastifyAdapter('Fastify 5 + Redis'),
  honoAdapter('Hono 4 + Redis'),
]) {
  httpScenarios(adapter, { createStore });
}
