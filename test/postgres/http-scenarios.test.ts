/**
 * The HTTP scenario suite, unchanged, on every adapter with postgresStore in both modes: what holds
 * on one process with memory holds through PostgreSQL too. Then transactional mode through
 * `transactionOf(request)` on Fastify and `transactionOf(c)` on Hono: the business row and the
 * stored response are kept together or not at all.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import Koa2 from 'koa2';
import { idempotent as fastifyIdempotent } from '@idem/fastify';
import { idempotent as honoIdempotent } from '@idem/hono';
import { postgresStore, transactionOf, type PostgresStore, type TransactionClient } from '@idem/postgres';
import type pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { fastifyAdapter } from '../apps/fastify-app.js';
import { honoAdapter } from '../apps/hono-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import { Probe, serve, type ScenarioApp } from '../apps/scenario.js';
import { httpScenarios, post } from '../http/scenarios.js';
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

// `ref` is checked at COMMIT: `x-fail: commit` makes the commit of the handler's insert fail.
const ORDERS_SQL = `
CREATE TABLE IF NOT EXISTS http_order_refs (id int PRIMARY KEY);
INSERT INTO http_order_refs VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS http_orders (
  id serial PRIMARY KEY, key text NOT NULL, n int NOT NULL,
  ref int NOT NULL REFERENCES http_order_refs (id) DEFERRABLE INITIALLY DEFERRED
);`;

/** The handler of both frameworks: insert through the transaction, then answer or fail as told. */
async function order(
  probe: Probe,
  tx: TransactionClient | undefined,
  key: string | undefined,
  fail: string | undefined,
): Promise<{ status: number; body: unknown }> {
  const n = probe.ran('order');
  if (tx === undefined) return { status: 200, body: { n, unprotected: true } };
  await tx.query('INSERT INTO http_orders (key, n, ref) VALUES ($1, $2, $3)', [key, n, fail === 'commit' ? 9 : 1]);
  if (fail === 'throw') throw new Error('failed after its insert');
  return { status: 201, body: { n } };
}

const frameworks: Record<string, (store: PostgresStore) => Promise<ScenarioApp>> = {
  async 'Fastify 5'(store) {
    const probe = new Probe();
    const app = Fastify();
    await app.register(fastifyIdempotent, { store });
    app.post('/order', async (request, reply) => {
      const header = (name: string) => request.headers[name] as string | undefined;
      const { status, body } = await order(probe, transactionOf(request), header('idempotency-key'), header('x-fail'));
      return reply.code(status).send(body);
    });
    await app.ready();
    return serve(app.server, probe, app.idempotency.events);
  },
  async 'Hono 4'(store) {
    const probe = new Probe();
    const app = new Hono();
    const mw = honoIdempotent({ store });
    app.use(mw);
    app.post('/order', async (c) => {
      const { status, body } = await order(
        probe,
        transactionOf(c),
        c.req.header('idempotency-key'),
        c.req.header('x-fail'),
      );
      return c.json(body, status as 200);
    });
    const listener = getRequestListener(app.fetch);
    return serve(
      createServer((req, res) => void listener(req, res)),
      probe,
      mw.events,
    );
  },
};

describe.each(Object.keys(frameworks))('transactional mode on %s: the row and the response together', (name) => {
  const opened: { app: ScenarioApp; store: PostgresStore }[] = [];
  afterEach(async () => {
    for (const { app, store } of opened.splice(0)) {
      await app.close();
      await store.close();
    }
  });
  async function start(): Promise<ScenarioApp> {
    await db.query(ORDERS_SQL);
    const store = postgresStore({ pool, table: `${table}_tx_orders`, transactional: true, pollInterval: 50 });
    const app = await (frameworks[name] as (store: PostgresStore) => Promise<ScenarioApp>)(store);
    opened.push({ app, store });
    return app;
  }
  const rows = async (key: string): Promise<number> =>
    (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM http_orders WHERE key = $1', [key]))[0]?.n ?? -1;

  it('a completed order keeps exactly its row and replays without running again', async () => {
    const app = await start();
    const key = randomUUID();
    const first = await post(app, '/order', { key });
    expect(first.status).toBe(201);
    const replay = await post(app, '/order', { key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.equals(first.body)).toBe(true);
    expect(await rows(key)).toBe(1);
    expect(app.probe.count('order')).toBe(1);
  });

  it('a handler that throws after its insert keeps nothing; the retry runs again and keeps one row', async () => {
    const app = await start();
    const key = randomUUID();
    expect((await post(app, '/order', { key, headers: { 'x-fail': 'throw' } })).status).toBe(500);
    expect(await rows(key)).toBe(0);
    expect((await post(app, '/order', { key })).status).toBe(201);
    expect(await rows(key)).toBe(1);
    expect(app.probe.count('order')).toBe(2);
  });

  it('a commit that fails is answered 503 store_unavailable, not the success, and keeps nothing', async () => {
    const app = await start();
    const key = randomUUID();
    const failed = await post(app, '/order', { key, headers: { 'x-fail': 'commit' } });
    expect(failed.status).toBe(503);
    expect(failed.json().code).toBe('store_unavailable');
    expect(await rows(key)).toBe(0);
    expect((await post(app, '/order', { key })).status).toBe(201);
    expect(await rows(key)).toBe(1);
  });

  it('without a key there is no transaction: transactionOf() is undefined', async () => {
    const app = await start();
    expect((await post(app, '/order')).json()).toMatchObject({ unprotected: true });
  });
});
