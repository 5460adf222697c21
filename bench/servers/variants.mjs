/**
 * The servers under test, one builder per framework. Every variant serves the same route,
 * `POST /orders` with a small JSON body, and answers 201 with a small JSON order; they differ only
 * in what sits in front of the handler:
 *
 *   bare         the framework, its JSON body parser and the handler
 *   idem-memory  + idempotent() on the embedded memory store
 *   idem-redis   + idempotent({ store: redisStore({ client }) })
 *   floor-get    + one raw ioredis GET per request (the floor of a Redis replay)
 *   idem-redis-nofp  (Koa) idem-redis with `fingerprint: false`: what the fingerprint costs
 *                (only decomposes a cost, bench/tools/cpu-per-request.mjs; never in a run)
 *   floor-setnx  + raw SET NX PX, then SET of the body, per request (the floor of a first execution)
 *   floor-pinned     floor-setnx plus the work the design pins (docs/design.md): the SHA-256
 *                    storage key of scope and key, and the SHA-256 of the canonical
 *                    [method, path, query, body] stored with the response (the floor of a first
 *                    execution with Redis, issue 15)
 *   floor-get-pinned one GET of the record under the same hashed key, the fingerprint computed and
 *                    compared, the stored body answered (a miss runs the handler and stores, so a
 *                    replay load finds it): the floor of a Redis replay
 *   bare-pinned      bare plus the same two hashes: the floor of the memory-store rows
 *   store-pinned     floor-pinned with the Redis store's getOrClaim and complete in place of the
 *                    two raw SETs, the body stored as the handler made it, a completed record's
 *                    body answered: no engine, no capture
 *   store-pinned-memory  the same on the embedded memory store (bare-pinned plus the store)
 *                    (these two only decompose a row's cost into the store's and the engine's and
 *                    adapter's, bench/tools/cpu-per-request.mjs, FINDINGS.md R; never in a run)
 *   ei-memory    + express-idempotency, its default in-memory adapter (README configuration)
 *   ei-redis     + express-idempotency with express-idempotency-redis-adapter (README configuration)
 *   ni-memory    + @node-idempotency/core on @node-idempotency/storage-adapter-memory
 *   ni-redis     + @node-idempotency/core on @node-idempotency/storage-adapter-redis
 *   floor-pg-get    + one raw `SELECT` of a stored row by key per request, through a pg.Pool
 *                   (the floor of a PostgreSQL replay)
 *   floor-pg-first  + raw `INSERT … ON CONFLICT DO NOTHING` of an in-flight row before the
 *                   handler, then `UPDATE` of it with the response (the floor of a first execution)
 *   idem-pg      + idempotent({ store: postgresStore({ pool }) }), lease mode
 *   idem-pg-tx   + idempotent({ store: postgresStore({ pool, transactional: true }) }); the handler
 *                writes nothing itself, so its floor is floor-pg-first too
 *
 * Every PostgreSQL variant has its own pg.Pool of the same size (PG_POOL_MAX) and its own table of
 * the store's schema (schemaSql), so a floor reads and writes rows of the same shape and indexes.
 *
 * @node-idempotency's Express adapter (@node-idempotency/express) is not on npm, so `niMiddleware`
 * below drives the core exactly as that adapter does in the mahendraHegde/node-idempotency
 * repository (packages/plugin-express/src/middleware.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import pg from 'pg';

const require = createRequire(import.meta.url);

/** The key the floor-get variant reads; holds a response-sized value. */
export const FLOOR_KEY = 'bench:floor';
const DAY_MS = 86_400_000;

/** The table floor-pg-get reads and floor-pg-first writes; the row floor-pg-get reads. */
export const FLOOR_TABLE = 'bench_floor';
export const FLOOR_PG_KEY = 'bench:floor';
/**
 * Pooled connections per PostgreSQL variant: above the bench's 32 concurrent requests, as the
 * store's README asks for transactional mode (a client per in-flight request); the same for every
 * variant so that none queues where another does not.
 */
export const PG_POOL_MAX = 40;

/**
 * Counts handler executions (the storm reads it over IPC) and the SQL statements the process
 * sent (every pg client query, the store's and the floors'), for statements per request.
 */
export const counters = { executions: 0, statements: 0 };

const clientQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function countedQuery(...args) {
  counters.statements++;
  return clientQuery.apply(this, args);
};

/** The order the handler "creates". The pid and the counter make every execution's body unique. */
export function orderBody() {
  const n = ++counters.executions;
  return {
    id: `ord_${process.pid}_${n}`,
    status: 'created',
    amount: 4200,
    currency: 'eur',
    item: 'book',
    customer: 'cus_123',
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The two hashes every keyed request costs by design, as the engine computes them
 * (packages/core/src/key.ts, fingerprint.ts): the storage key of the default scope
 * (`METHOD path`) and the key, and the canonical fingerprint. Returns { key, fingerprint }.
 */
let stableStringify;
function pinnedHashes(method, path, search, body, clientKey) {
  stableStringify ??= require('fast-json-stable-stringify');
  const scope = `${method} ${path}`;
  const key = createHash('sha256')
    .update(`{"key":${JSON.stringify(clientKey)},"scope":${JSON.stringify(scope)}}`)
    .digest('hex');
  const fingerprint = createHash('sha256')
    .update(stableStringify([method, path, search, body ?? null]))
    .digest('hex');
  return { key, fingerprint };
}

/** A stored floor record: the 64 hex characters of the fingerprint, then the body. */
const pinnedRecord = (fingerprint, body) => fingerprint + body;

/**
 * floor-pinned around the body a handler makes: SET NX PX under the hashed key, the body, SET of
 * the fingerprint and the body. Returns the body, or undefined when the key was taken (409).
 */
async function floorPinnedFirst(client, hashes, makeBody) {
  const key = `bench:pinned:${hashes.key}`;
  if ((await client.set(key, 'in_flight', 'PX', 30_000, 'NX')) === null) return undefined;
  const body = JSON.stringify(await makeBody());
  await client.set(key, pinnedRecord(hashes.fingerprint, body), 'PX', DAY_MS);
  return body;
}

/**
 * floor-get-pinned: one GET under the hashed key. A stored record whose fingerprint matches is
 * answered ({ body }); one that does not is a 422 ({ mismatch }); a miss runs floorPinnedFirst.
 */
async function floorPinnedGet(client, hashes, makeBody) {
  const stored = await client.get(`bench:pinned:${hashes.key}`);
  if (stored === null || stored === 'in_flight') {
    const body = stored === null ? await floorPinnedFirst(client, hashes, makeBody) : undefined;
    return body === undefined ? { conflict: true } : { body };
  }
  if (stored.slice(0, 64) !== hashes.fingerprint) return { mismatch: true };
  return { body: stored.slice(64) };
}

/**
 * store-pinned around the body a handler makes: the store's getOrClaim under the pinned key (the
 * fingerprint stored with the lease), the body, then complete with it. Returns the body made or
 * replayed (a completed record with the same fingerprint), { mismatch } for a completed record of
 * another payload (422), or undefined when the key is in flight (409).
 */
async function storePinnedFirst(store, hashes, makeBody) {
  const { key, fingerprint } = hashes;
  const claim = await store.getOrClaim(key, { fingerprint, lockTtl: 30_000 });
  if (!claim.acquired) {
    const { record } = claim;
    if (record?.state !== 'completed') return undefined;
    if (record.fingerprint !== fingerprint) return { mismatch: true };
    return Buffer.from(record.response.body).toString();
  }
  const body = JSON.stringify(await makeBody());
  const response = { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
  await store.complete(claim.lease, response, { fingerprint, ttl: DAY_MS });
  return body;
}

/**
 * A Redis store on a client of its own for `cfg` (its records under `prefix`, the store's default
 * when none), its closing (store, then client) pushed to `closers`.
 */
export async function benchRedisStore(cfg, closers, prefix = undefined) {
  const { redisStore } = await import('@idem/redis');
  const client = redisClient(cfg);
  const store = redisStore({ client, ...(prefix ? { prefix } : {}) });
  closers.push(
    () => store.close(),
    () => client.quit(),
  );
  return store;
}

/**
 * What floor-pinned, floor-get-pinned, store-pinned and store-pinned-memory do around the handler,
 * as one step `(hashes, makeBody) => made` (answerOf reads `made`), with what it needs opened and
 * its closing pushed to `closers`.
 */
async function pinnedStep(cfg, closers) {
  if (cfg.variant === 'store-pinned' || cfg.variant === 'store-pinned-memory') {
    const store =
      cfg.variant === 'store-pinned-memory'
        ? (await import('@idem/core')).memoryStore()
        : // Records of its own: idem-redis, in the same group, replays the same key.
          await benchRedisStore(cfg, closers, 'bench:store-pinned:');
    return (hashes, makeBody) => storePinnedFirst(store, hashes, makeBody);
  }
  const client = redisClient(cfg);
  closers.push(() => client.quit());
  const floor = cfg.variant === 'floor-pinned' ? floorPinnedFirst : floorPinnedGet;
  return (hashes, makeBody) => floor(client, hashes, makeBody);
}

/** An order after the configured delay: the handler's work in the floors and store-pinned. */
const orderAfter = (delay) => async () => {
  const body = orderBody();
  if (delay > 0) await sleep(delay);
  return body;
};

/**
 * What a floor's or store-pinned's step made of a request: the body (JSON text, or { body }) with
 * 201, else 422 for { mismatch } or 409 for nothing (the key in flight). { status, body }.
 */
function answerOf(made) {
  const body = typeof made === 'string' ? made : made?.body;
  return { status: body !== undefined ? 201 : made?.mismatch ? 422 : 409, body };
}

/** Express: the answer of a step's result (answerOf). */
function answerExpress(res, made) {
  const { status, body } = answerOf(made);
  if (body === undefined) return res.status(status).end();
  res.status(status).type('application/json').send(body);
}

/** Koa: the same as answerExpress. */
function answerKoa(ctx, made) {
  const { status, body } = answerOf(made);
  ctx.status = status;
  if (body === undefined) return;
  ctx.type = 'application/json';
  ctx.body = body;
}

const splitSearch = (url) => {
  const q = url.indexOf('?');
  return q === -1 ? [url, ''] : [url.slice(0, q), url.slice(q)];
};

/** A client of the bench's Redis whose errors the store or the floor reports per request. */
export function redisClient(cfg) {
  const client = new Redis(cfg.redisUrl);
  client.on('error', () => {});
  return client;
}

/** A pool of PG_POOL_MAX connections that are kept open between windows. */
function pgPool(cfg) {
  const pool = new pg.Pool({ connectionString: cfg.pgUrl, max: PG_POOL_MAX, idleTimeoutMillis: 0 });
  pool.on('error', () => {});
  return pool;
}

/** The store of idem-pg / idem-pg-tx on its own table, created before the first request. */
async function pgStore(cfg, closers) {
  const { postgresStore } = await import('@idem/postgres');
  const pool = pgPool(cfg);
  const transactional = cfg.variant === 'idem-pg-tx';
  const store = postgresStore({ pool, table: transactional ? 'bench_idem_tx' : 'bench_idem_lease', transactional });
  await store.migrate();
  closers.push(async () => {
    await store.close();
    await pool.end();
  });
  return store;
}

/**
 * The two statements of floor-pg-first: the in-flight row with a fencing token (409 when the key
 * stands), then the response written into it under that token.
 */
const FLOOR_PG_CLAIM = `INSERT INTO ${FLOOR_TABLE} (key, state, lease_token, started_at, expires_at)
VALUES ($1, 'in_flight', $2, clock_timestamp(), clock_timestamp() + interval '30 seconds')
ON CONFLICT (key) DO NOTHING`;
const FLOOR_PG_COMPLETE = `UPDATE ${FLOOR_TABLE} SET state = 'completed', status = $3, headers = $4::jsonb, body = $5,
  lease_token = NULL, completed_at = clock_timestamp(), expires_at = clock_timestamp() + interval '1 day'
WHERE key = $1 AND lease_token = $2`;
const FLOOR_PG_GET = `SELECT state, status, headers, body FROM ${FLOOR_TABLE} WHERE key = $1`;
const FLOOR_PG_HEADERS = JSON.stringify({ 'content-type': 'application/json; charset=utf-8' });

/**
 * floor-pg-first around the body a handler makes: the claim, the body, the update. Returns the
 * body, or undefined when the key was taken (409).
 */
async function floorPgFirst(pool, key, makeBody) {
  const token = randomUUID();
  const claimed = await pool.query(FLOOR_PG_CLAIM, [`bench:floor:${key}`, token]);
  if (claimed.rowCount !== 1) return undefined;
  const body = JSON.stringify(await makeBody());
  await pool.query(FLOOR_PG_COMPLETE, [`bench:floor:${key}`, token, 201, FLOOR_PG_HEADERS, Buffer.from(body)]);
  return body;
}

/** A faithful port of @node-idempotency's Express adapter (see the file comment). */
async function niMiddleware(storage, options) {
  const { Idempotency, IdempotencyError, IdempotencyErrorCodes } = require('@node-idempotency/core');
  // From @node-idempotency/shared (src/http.ts), which the adapter imports.
  const idempotency2HttpCodeMap = {
    [IdempotencyErrorCodes.IDEMPOTENCY_FINGERPRINT_MISSMATCH]: 422,
    [IdempotencyErrorCodes.IDEMPOTENCY_KEY_LEN_EXEEDED]: 400,
    [IdempotencyErrorCodes.IDEMPOTENCY_KEY_MISSING]: 400,
    [IdempotencyErrorCodes.REQUEST_IN_PROGRESS]: 409,
  };
  const headers2Cache = { contentType: 'Content-Type' };
  const nodeIdempotency = new Idempotency(storage, options);

  const setHeaders = (response, headers) => {
    for (const key of Object.keys(headers)) if (headers[key]) response.header(key, headers[key]);
  };

  const handleResponse = async (idempotencyReq, response, payload) => {
    const { statusCode } = response;
    const headers = response.getHeaders();
    const additional = { statusCode };
    for (const header of Object.values(headers2Cache)) {
      const head = headers[header] ?? headers[header.toLowerCase()];
      if (head) additional[header] = head;
    }
    try {
      const isJson = (headers['content-type'] ?? headers['Content-Type'])
        ?.toString()
        ?.toLowerCase()
        ?.includes('application/json');
      if (isJson && typeof payload === 'string') payload = JSON.parse(payload);
    } catch {
      // as upstream: ignore
    }
    const res = { additional, ...(statusCode < 400 ? { body: payload } : { error: payload }) };
    await nodeIdempotency.onResponse(idempotencyReq, res);
  };

  return async function nodeIdempotencyMiddleware(request, response, next) {
    const idempotencyReq = { headers: request.headers, body: request.body, path: request.url, method: request.method };
    try {
      const idempotencyResponse = await nodeIdempotency.onRequest(idempotencyReq);
      if (!idempotencyResponse) {
        const originalSend = response.send.bind(response);
        response.send = function send(body) {
          void handleResponse(idempotencyReq, response, body);
          return originalSend(body);
        };
        next();
        return;
      }
      if (idempotencyResponse.additional?.statusCode) response.status(idempotencyResponse.additional.statusCode);
      const headers = {};
      for (const cur of Object.values(headers2Cache))
        if (idempotencyResponse?.additional?.[cur]) headers[cur] = idempotencyResponse.additional[cur];
      setHeaders(response, { ...headers, 'Idempotent-Replayed': 'true' });
      if (idempotencyResponse.body) response.send(idempotencyResponse.body);
      else next(idempotencyResponse.error);
    } catch (err) {
      if (err instanceof IdempotencyError) {
        const status = idempotency2HttpCodeMap[err.code] || 500;
        if (err.code === IdempotencyErrorCodes.REQUEST_IN_PROGRESS) setHeaders(response, { 'Retry-After': '1' });
        response.status(status);
        next(err);
      } else {
        // Upstream swallows other errors (the request would hang); the bench passes them on instead.
        next(err);
      }
    }
  };
}

/** Builds the Express app of `cfg.variant`. Returns { app, close }. */
export async function buildExpress(cfg) {
  const express = (await import('express')).default;
  const { idempotent } = await import('@idem/express');
  const app = express();
  app.disable('x-powered-by');
  const closers = [];
  const delay = cfg.delayMs ?? 0;

  async function handler(req, res) {
    const body = orderBody();
    if (delay > 0) await sleep(delay);
    res.status(201).json(body);
  }
  let route = handler;

  app.use(express.json());
  switch (cfg.variant) {
    case 'bare':
      break;
    case 'idem-memory':
      app.use(idempotent({ concurrent: cfg.concurrent ?? 'reject' }));
      break;
    case 'idem-redis':
      app.use(idempotent({ store: await benchRedisStore(cfg, closers), concurrent: cfg.concurrent ?? 'reject' }));
      break;
    case 'floor-get': {
      const client = redisClient(cfg);
      closers.push(() => client.quit());
      app.use(function floorGet(req, res, next) {
        client.get(FLOOR_KEY).then(() => next(), next);
      });
      break;
    }
    case 'floor-setnx': {
      const client = redisClient(cfg);
      closers.push(() => client.quit());
      route = async function floorSetNx(req, res) {
        const key = `bench:floor:${req.get('idempotency-key')}`;
        if ((await client.set(key, 'in_flight', 'PX', 30_000, 'NX')) === null) return res.status(409).end();
        const body = JSON.stringify(orderBody());
        if (delay > 0) await sleep(delay);
        await client.set(key, body, 'PX', DAY_MS);
        res.status(201).type('application/json').send(body);
      };
      break;
    }
    case 'bare-pinned':
      app.use(function barePinned(req, res, next) {
        const [path, search] = splitSearch(req.originalUrl);
        res.locals.hashes = pinnedHashes(req.method, path, search, req.body, req.get('idempotency-key'));
        next();
      });
      break;
    case 'floor-pinned':
    case 'floor-get-pinned':
    case 'store-pinned':
    case 'store-pinned-memory': {
      const step = await pinnedStep(cfg, closers);
      const makeOrder = orderAfter(delay);
      route = async function pinned(req, res) {
        const [path, search] = splitSearch(req.originalUrl);
        const hashes = pinnedHashes(req.method, path, search, req.body, req.get('idempotency-key'));
        answerExpress(res, await step(hashes, makeOrder));
      };
      break;
    }
    case 'floor-pg-get': {
      const pool = pgPool(cfg);
      closers.push(() => pool.end());
      app.use(function floorPgGet(req, res, next) {
        pool.query(FLOOR_PG_GET, [FLOOR_PG_KEY]).then(() => next(), next);
      });
      break;
    }
    case 'floor-pg-first': {
      const pool = pgPool(cfg);
      closers.push(() => pool.end());
      route = async function floorPgFirstRoute(req, res) {
        answerExpress(res, await floorPgFirst(pool, req.get('idempotency-key'), orderAfter(delay)));
      };
      break;
    }
    case 'idem-pg':
    case 'idem-pg-tx':
      app.use(idempotent({ store: await pgStore(cfg, closers), concurrent: cfg.concurrent ?? 'reject' }));
      break;
    case 'ei-memory':
    case 'ei-redis': {
      const { idempotency, getSharedIdempotencyService } = require('express-idempotency');
      const options = {};
      if (cfg.variant === 'ei-redis') {
        const RedisAdapter = require('express-idempotency-redis-adapter').default;
        const adapter = new RedisAdapter({ connectionConfig: { url: cfg.redisUrl } });
        await adapter.connect();
        closers.push(() => adapter.disconnect());
        options.dataAdapter = adapter;
      }
      app.use(idempotency(options));
      // README: the middleware calls next() on a replay too; the handler must check isHit().
      route = async function eiHandler(req, res) {
        if (getSharedIdempotencyService().isHit(req)) return;
        return handler(req, res);
      };
      break;
    }
    case 'ni-memory':
    case 'ni-redis': {
      let storage;
      if (cfg.variant === 'ni-memory') {
        const { MemoryStorageAdapter } = require('@node-idempotency/storage-adapter-memory');
        storage = new MemoryStorageAdapter();
      } else {
        const { RedisStorageAdapter } = require('@node-idempotency/storage-adapter-redis');
        storage = new RedisStorageAdapter({ url: cfg.redisUrl });
        await storage.connect();
        closers.push(() => storage.disconnect());
      }
      const options = cfg.concurrent === 'wait' ? { inProgressStrategy: { wait: true } } : {};
      app.use(await niMiddleware(storage, options));
      break;
    }
    default:
      throw new Error(`unknown express variant ${cfg.variant}`);
  }
  app.post('/orders', route);
  // One error handler for every variant (the peers' READMEs ask for the app's own): the status the
  // middleware chose, a small JSON body, no stack traces on stderr.
  app.use(function errorHandler(err, req, res, next) {
    void next;
    const status = res.statusCode >= 400 ? res.statusCode : (err.status ?? err.statusCode ?? 500);
    res.status(status).json({ error: String(err.message ?? err) });
  });
  return { app, close: () => Promise.allSettled(closers.map((fn) => fn())) };
}

/** Builds the Koa app of `cfg.variant`. Returns { app, close }. */
export async function buildKoa(cfg) {
  const Koa = (await import('koa')).default;
  const { Router } = await import('@koa/router');
  const { bodyParser } = await import('@koa/bodyparser');
  const { idempotent } = await import('@idem/koa');
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  const closers = [];
  const delay = cfg.delayMs ?? 0;

  async function handler(ctx) {
    const body = orderBody();
    if (delay > 0) await sleep(delay);
    ctx.status = 201;
    ctx.body = body;
  }
  let route = handler;

  app.use(bodyParser());
  switch (cfg.variant) {
    case 'bare':
      break;
    case 'idem-memory':
      app.use(idempotent({ concurrent: cfg.concurrent ?? 'reject' }));
      break;
    case 'idem-redis':
      app.use(idempotent({ store: await benchRedisStore(cfg, closers), concurrent: cfg.concurrent ?? 'reject' }));
      break;
    case 'floor-get': {
      const client = redisClient(cfg);
      closers.push(() => client.quit());
      app.use(async function floorGet(ctx, next) {
        await client.get(FLOOR_KEY);
        await next();
      });
      break;
    }
    case 'floor-setnx': {
      const client = redisClient(cfg);
      closers.push(() => client.quit());
      route = async function floorSetNx(ctx) {
        const key = `bench:floor:${ctx.get('idempotency-key')}`;
        if ((await client.set(key, 'in_flight', 'PX', 30_000, 'NX')) === null) {
          ctx.status = 409;
          return;
        }
        const body = JSON.stringify(orderBody());
        if (delay > 0) await sleep(delay);
        await client.set(key, body, 'PX', DAY_MS);
        ctx.status = 201;
        ctx.type = 'application/json';
        ctx.body = body;
      };
      break;
    }
    case 'bare-pinned':
      app.use(async function barePinned(ctx, next) {
        const [path, search] = splitSearch(ctx.originalUrl);
        ctx.state.hashes = pinnedHashes(ctx.method, path, search, ctx.request.body, ctx.get('idempotency-key'));
        await next();
      });
      break;
    case 'floor-pinned':
    case 'floor-get-pinned':
    case 'store-pinned':
    case 'store-pinned-memory': {
      const step = await pinnedStep(cfg, closers);
      const makeOrder = orderAfter(delay);
      route = async function pinned(ctx) {
        const [path, search] = splitSearch(ctx.originalUrl);
        const hashes = pinnedHashes(ctx.method, path, search, ctx.request.body, ctx.get('idempotency-key'));
        answerKoa(ctx, await step(hashes, makeOrder));
      };
      break;
    }
    case 'floor-pg-get': {
      const pool = pgPool(cfg);
      closers.push(() => pool.end());
      app.use(async function floorPgGet(ctx, next) {
        await pool.query(FLOOR_PG_GET, [FLOOR_PG_KEY]);
        await next();
      });
      break;
    }
    case 'floor-pg-first': {
      const pool = pgPool(cfg);
      closers.push(() => pool.end());
      route = async function floorPgFirstRoute(ctx) {
        answerKoa(ctx, await floorPgFirst(pool, ctx.get('idempotency-key'), orderAfter(delay)));
      };
      break;
    }
    case 'idem-pg':
    case 'idem-pg-tx':
      app.use(idempotent({ store: await pgStore(cfg, closers), concurrent: cfg.concurrent ?? 'reject' }));
      break;
    case 'idem-redis-nofp':
      app.use(idempotent({ store: await benchRedisStore(cfg, closers), fingerprint: false }));
      break;
    default:
      throw new Error(`unknown koa variant ${cfg.variant}`);
  }
  router.post('/orders', route);
  app.use(router.routes());
  return { app, close: () => Promise.allSettled(closers.map((fn) => fn())) };
}
