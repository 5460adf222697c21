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
 *   store-only   (Koa) the Redis store's getOrClaim and complete around the handler, the key
 *                hashed and the body captured as bytes, no engine: what the engine and adapter add
 *                (these two only decompose a cost, bench/tools/cpu-per-request.mjs; never in a run)
 *   floor-setnx  + raw SET NX PX, then SET of the body, per request (the floor of a first execution)
 *   ei-memory    + express-idempotency, its default in-memory adapter (README configuration)
 *   ei-redis     + express-idempotency with express-idempotency-redis-adapter (README configuration)
 *   ni-memory    + @node-idempotency/core on @node-idempotency/storage-adapter-memory
 *   ni-redis     + @node-idempotency/core on @node-idempotency/storage-adapter-redis
 *
 * @node-idempotency's Express adapter (@node-idempotency/express) is not on npm, so `niMiddleware`
 * below drives the core exactly as that adapter does in the mahendraHegde/node-idempotency
 * repository (packages/plugin-express/src/middleware.ts).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);

/** The key the floor-get variant reads; holds a response-sized value. */
export const FLOOR_KEY = 'bench:floor';
const DAY_MS = 86_400_000;

/** Counts handler executions; the storm reads it over IPC. */
export const counters = { executions: 0 };

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

function redisClient(cfg) {
  const client = new Redis(cfg.redisUrl);
  client.on('error', () => {});
  return client;
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
  const { redisStore } = await import('@idem/redis');
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
    case 'idem-redis': {
      const client = redisClient(cfg);
      const store = redisStore({ client });
      closers.push(
        () => store.close(),
        () => client.quit(),
      );
      app.use(idempotent({ store, concurrent: cfg.concurrent ?? 'reject' }));
      break;
    }
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
  const { redisStore } = await import('@idem/redis');
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
    case 'idem-redis': {
      const client = redisClient(cfg);
      const store = redisStore({ client });
      closers.push(
        () => store.close(),
        () => client.quit(),
      );
      app.use(idempotent({ store, concurrent: cfg.concurrent ?? 'reject' }));
      break;
    }
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
    case 'idem-redis-nofp': {
      const client = redisClient(cfg);
      const store = redisStore({ client });
      closers.push(
        () => store.close(),
        () => client.quit(),
      );
      app.use(idempotent({ store, fingerprint: false }));
      break;
    }
    case 'store-only': {
      const client = redisClient(cfg);
      const store = redisStore({ client });
      closers.push(
        () => store.close(),
        () => client.quit(),
      );
      app.use(async function storeOnly(ctx, next) {
        const key = createHash('sha256').update(ctx.get('idempotency-key')).digest('hex');
        const claim = await store.getOrClaim(key, { fingerprint: null, lockTtl: 30_000 });
        if (!claim.acquired) {
          const { record } = claim;
          if (record?.state !== 'completed') {
            ctx.status = 409;
            return;
          }
          ctx.status = record.response.status;
          ctx.type = 'application/json';
          ctx.body = Buffer.from(record.response.body);
          return;
        }
        await next();
        const bytes = Buffer.from(JSON.stringify(ctx.body));
        ctx.body = bytes;
        await store.complete(
          claim.lease,
          { status: ctx.status, headers: { 'content-type': ctx.response.get('content-type') }, body: bytes },
          { fingerprint: null, ttl: DAY_MS },
        );
      });
      break;
    }
    default:
      throw new Error(`unknown koa variant ${cfg.variant}`);
  }
  router.post('/orders', route);
  app.use(router.routes());
  return { app, close: () => Promise.allSettled(closers.map((fn) => fn())) };
}
