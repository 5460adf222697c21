// One app process of the soak: Express (@idem/express) or Koa (@idem/koa + @koa/router), on the
// store of its run (see stores.mjs): redisStore, or postgresStore in lease or transactional mode.
// Configured by IDEM_SOAK_APP (JSON) and forked with IPC.
//
// Routes (the scope is method + route, so an Express and a Koa process share every key):
//   POST /work   concurrent: 'reject' (a duplicate in flight gets 409)
//   POST /wait   concurrent: 'wait'   (a duplicate in flight waits and replays)
//
// The ledger. Every handler execution is written to this process's own NDJSON file with a
// synchronous write on an O_APPEND descriptor, *before* the side effect (the simulated work): a
// SIGKILL that lands mid-handler cannot lose the record of an execution that started. Records:
//   boot     the process started (pid, slot, framework)
//   start    an execution began: exec id, key, route, payload tag
//   effect   PostgreSQL: the business row was written (lease mode: autocommitted; transactional:
//            in the transaction, so it counts only once committed: the database says which did)
//   unwritten PostgreSQL: the business write failed (the database was down): answered 503
//   respond  the handler produced its response: sha256 of the exact body bytes
//   outcome  what the middleware did with it (execute event): stored | fenced | failed | store_error | …
//   sent     the response was flushed to the client (after the store attempt)
//   lease    a leaseLost event; store: a storeError event
import { createHash } from 'node:crypto';
import { openSync, writeSync } from 'node:fs';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import bodyParser from '@koa/bodyparser';
import { Redis } from 'ioredis';
import pg from 'pg';
import { storageKey } from '@idem/core';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';
import { postgresStore, transactionOf } from '@idem/postgres';
import { redisStore } from '@idem/redis';

const config = JSON.parse(process.env.IDEM_SOAK_APP ?? '{}');
const { framework, slot } = config;
const fd = openSync(config.ledger, 'a');

/** Appends one ledger line, synchronously: it is in the kernel before this returns. */
function record(entry) {
  writeSync(fd, `${JSON.stringify({ ...entry, pid: process.pid, at: Date.now() })}\n`);
}
record({ e: 'boot', slot, framework });

// The soak's harness owns this process: when it goes away, so do we.
process.on('disconnect', () => process.exit(0));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The store of this run, a wait for it to answer, and the handler's side effect on it. */
function backend() {
  const { commandTimeout, pollInterval } = config;
  if (config.store === 'redis') {
    const client = new Redis(config.url, { retryStrategy: () => 50 });
    // Redis going away is part of the soak; the store reports it per request.
    client.on('error', () => {});
    return {
      store: redisStore({ client, commandTimeout, pollInterval }),
      ready: () => new Promise((resolve) => (client.status === 'ready' ? resolve() : client.once('ready', resolve))),
      // The side effect is the execution itself, on the ledger.
      effect: async () => false,
    };
  }
  // Transactional mode holds a pooled client per request in flight: room for every burst.
  const pool = new pg.Pool({ connectionString: config.url, max: 50 });
  // PostgreSQL going away is part of the soak; pg would crash the process on an idle client's error.
  pool.on('error', () => {});
  const transactional = config.store === 'postgres-tx';
  const store = postgresStore({ pool, transactional, queryTimeout: commandTimeout, pollInterval });
  return {
    store,
    async ready() {
      for (;;) {
        try {
          return await store.migrate();
        } catch {
          await sleep(100);
        }
      }
    },
    async effect(reqOrCtx, row) {
      const db = transactional ? transactionOf(reqOrCtx) : pool;
      if (db === undefined) throw new Error('transactionOf() is undefined inside an idempotent execution');
      await db.query('INSERT INTO soak_effects (skey, route, key, exec, pid) VALUES ($1, $2, $3, $4, $5)', row);
      return true;
    },
  };
}
const { store, ready, effect } = backend();

const options = { store, required: true, lockTtl: config.lockTtl, waitTimeout: config.waitTimeout };
const idempotent = framework === 'koa' ? koaIdempotent : expressIdempotent;
const middleware = {
  '/work': idempotent({ ...options, concurrent: 'reject' }),
  '/wait': idempotent({ ...options, concurrent: 'wait' }),
};

// Executions in this process, per stored key, oldest first: the execute event (which carries only
// the stored key) closes the oldest open one. Within one process a key runs at most once at a time
// unless its lease was lost, and then the oldest is the one that finishes first.
const open = new Map();
for (const [route, mw] of Object.entries(middleware)) {
  mw.events.on('execute', (event) => {
    const queue = open.get(event.key);
    const exec = queue?.shift();
    if (queue?.length === 0) open.delete(event.key);
    record({ e: 'outcome', x: exec, r: route, o: event.outcome, s: event.status });
  });
  mw.events.on('leaseLost', (event) =>
    record({ e: 'lease', r: route, x: open.get(event.key)?.[0], heldMs: event.heldMs }),
  );
  mw.events.on('storeError', (event) =>
    record({
      e: 'store',
      r: route,
      op: event.operation,
      msg: String(event.error?.cause?.message ?? event.error?.message),
    }),
  );
}

let runs = 0;

/**
 * The handler both frameworks share. Test controls travel in headers, which are not part of the
 * fingerprint: x-work-ms (how long the work after the side effect takes), x-pad (extra body bytes).
 * Resolves `{ exec, failed }` when the business write failed (answered 503 by the caller).
 */
async function execute(reqOrCtx, route, key, body, headers) {
  const exec = `${slot}-${process.pid}-${++runs}`;
  const skey = key === undefined ? undefined : storageKey(`POST ${route}`, key);
  if (skey !== undefined) {
    if (!open.has(skey)) open.set(skey, []);
    open.get(skey).push(exec);
  }
  // The ledger line comes first: whatever happens next, this execution is on record.
  record({ e: 'start', x: exec, k: key ?? null, r: route, v: body?.v ?? null });
  try {
    // First the side effect, then the work: a SIGKILL mid-handler mostly lands after the write.
    if (await effect(reqOrCtx, [skey ?? '', route, key ?? '', exec, process.pid])) record({ e: 'effect', x: exec });
  } catch (error) {
    record({ e: 'unwritten', x: exec, msg: String(error?.message) });
    return { exec, failed: true };
  }
  await sleep(Number(headers['x-work-ms'] ?? 0));
  const text = JSON.stringify({
    exec,
    key,
    route,
    framework,
    pid: process.pid,
    input: body,
    pad: 'p'.repeat(Number(headers['x-pad'] ?? 0)),
  });
  record({ e: 'respond', x: exec, sha: createHash('sha256').update(text).digest('hex') });
  return { exec, text };
}

/** The app's own answer when its business write failed: the database is down, try again. */
const UNWRITTEN = JSON.stringify({
  type: 'about:blank',
  title: 'Service Unavailable',
  status: 503,
  code: 'business_write_failed',
});

function keyOf(value) {
  return typeof value === 'string' ? value : undefined;
}

let server;
if (framework === 'koa') {
  const app = new Koa();
  app.silent = true;
  app.on('error', (error) => process.stderr.write(`[koa ${slot}] ${error.stack}\n`));
  const router = new Router();
  for (const [route, mw] of Object.entries(middleware)) {
    router.post(route, mw, async (ctx) => {
      const { exec, text, failed } = await execute(
        ctx,
        route,
        keyOf(ctx.get('idempotency-key') || undefined),
        ctx.request.body,
        ctx.headers,
      );
      ctx.res.once('finish', () => record({ e: 'sent', x: exec }));
      if (failed) {
        ctx.status = 503;
        ctx.type = 'application/problem+json';
        ctx.body = UNWRITTEN;
        return;
      }
      ctx.status = 201;
      ctx.set('Location', `/things/${exec}`);
      ctx.set('X-Exec', exec);
      ctx.type = 'application/json';
      ctx.body = text;
    });
  }
  app.use(bodyParser());
  app.use(router.routes());
  server = app.listen(0, '127.0.0.1');
} else {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  for (const [route, mw] of Object.entries(middleware)) {
    app.post(route, mw, async (req, res) => {
      const { exec, text, failed } = await execute(
        req,
        route,
        keyOf(req.get('idempotency-key')),
        req.body,
        req.headers,
      );
      res.once('finish', () => record({ e: 'sent', x: exec }));
      if (failed) return void res.status(503).type('application/problem+json').send(UNWRITTEN);
      res.status(201).location(`/things/${exec}`).set('X-Exec', exec).type('application/json').send(text);
    });
  }
  app.use((error, _req, res, _next) => {
    process.stderr.write(`[express ${slot}] ${error.stack}\n`);
    res.status(500).end();
  });
  server = app.listen(0, '127.0.0.1');
}

process.on('message', (message) => {
  if (message?.type === 'shutdown') server.close(() => process.exit(0));
});

// Serve once the store answers, so that the first requests meet a running store.
await ready();
if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
process.send?.({ type: 'ready', port: server.address().port, pid: process.pid });
