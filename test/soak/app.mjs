// One app process of the soak: Express (@idem/express) or Koa (@idem/koa + @koa/router), both
// with redisStore on the one Redis, configured by IDEM_SOAK_APP (JSON) and forked with IPC.
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
import { storageKey } from '@idem/core';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';
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

const client = new Redis(config.redisUrl, { retryStrategy: () => 50 });
// Redis going away is part of the soak; the store reports it per request.
client.on('error', () => {});
const store = redisStore({ client, commandTimeout: config.commandTimeout, pollInterval: config.pollInterval });

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
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The handler both frameworks share. Test controls travel in headers, which are not part of the
 * fingerprint: x-work-ms (how long the side effect takes), x-pad (extra body bytes).
 */
async function execute(route, key, body, headers) {
  const exec = `${slot}-${process.pid}-${++runs}`;
  if (key !== undefined) {
    const skey = storageKey(`POST ${route}`, key);
    if (!open.has(skey)) open.set(skey, []);
    open.get(skey).push(exec);
  }
  // The ledger line comes first: whatever happens next, this execution is on record.
  record({ e: 'start', x: exec, k: key ?? null, r: route, v: body?.v ?? null });
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
      const { exec, text } = await execute(
        route,
        keyOf(ctx.get('idempotency-key') || undefined),
        ctx.request.body,
        ctx.headers,
      );
      ctx.res.once('finish', () => record({ e: 'sent', x: exec }));
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
      const { exec, text } = await execute(route, keyOf(req.get('idempotency-key')), req.body, req.headers);
      res.once('finish', () => record({ e: 'sent', x: exec }));
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

// Serve once Redis answers, so that the first requests meet a running store.
await new Promise((resolve) => (client.status === 'ready' ? resolve() : client.once('ready', resolve)));
if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
process.send?.({ type: 'ready', port: server.address().port, pid: process.pid });
