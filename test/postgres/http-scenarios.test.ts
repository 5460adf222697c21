/**
 * The HTTP scenario suite, unchanged, on every adapter with postgresStore in both modes: what holds
 * on one process with memory holds through PostgreSQL too.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Koa2 from 'koa2';
import { postgresStore } from '@idem/postgres';
import type pg from 'pg';
import { beforeAll } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { fastifyAdapter } from '../apps/fastify-app.js';
import { honoAdapter } from '../apps/hono-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import { httpScenarios } from '../http/scenarios.js';
import { useDatabase } from './helpers.js';

const db = useDatabase();
let pool: pg.Pool;
beforeAll(() => {
  pool = db.pool({ max: 30 });
});
const table = `http_${randomUUID().slice(0, 8)}`;

for (const transactional of [false, true]) {
  const mode = transactional ? 'transactional' : 'lease';
  const createStore = () => postgresStore({ pool, table: `${table}_${mode}`, transactional, pollInterval: 50 });
  for (const adapter of [
    expressAdapter(`Express 5 + PostgreSQL (${mode})`, express as never),
    expressAdapter(`Express 4 + PostgreSQL (${mode})`, express4 as never),
    koaAdapter(`Koa 3 + PostgreSQL (${mode})`, Koa),
    koaAdapter(`Koa 2 + PostgreSQL (${mode})`, Koa2 as never),
    fastifyAdapter(`Fastify 5 + PostgreSQL (${mode})`),
    honoAdapter(`Hono 4 + PostgreSQL (${mode})`),
  ]) {
    httpScenarios(adapter, { createStore });
  }
}
