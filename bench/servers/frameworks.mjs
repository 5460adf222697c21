/**
 * The bench's Fastify 5 and Hono 4 servers (issue 18): the same POST /orders as the Express and Koa
 * ones (variants.mjs), for the variants that compare idem with the bare framework:
 *
 *   bare         the framework with its JSON body parsing, the handler answering 201 JSON
 *   idem-memory  + idem's adapter with the embedded memory store
 *   idem-redis   + idem's adapter with redisStore on the bench's Redis
 *
 * Each returns { server, close }: an http.Server, not yet listening.
 */
import { createServer } from 'node:http';
import { benchRedisStore, buildExpress, buildKoa, orderBody } from './variants.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The store of the idem variants, with what closes it. */
async function storeFor(cfg, closers) {
  if (cfg.variant === 'idem-memory') return undefined;
  if (cfg.variant !== 'idem-redis') throw new Error(`${cfg.framework}: unknown variant ${cfg.variant}`);
  return benchRedisStore(cfg, closers);
}

const idemOptions = (cfg, store) => ({ concurrent: cfg.concurrent ?? 'reject', ...(store ? { store } : {}) });

export async function buildFastify(cfg) {
  const { default: Fastify } = await import('fastify');
  const closers = [];
  let server;
  const app = Fastify({
    logger: false,
    // A plain Node server like the other frameworks' (the bench listens on it itself).
    serverFactory(handler) {
      server = createServer(handler);
      return server;
    },
  });
  const delay = cfg.delayMs ?? 0;
  if (cfg.variant !== 'bare') {
    const { idempotent } = await import('@idem/fastify');
    await app.register(idempotent, idemOptions(cfg, await storeFor(cfg, closers)));
  }
  app.post('/orders', async (request, reply) => {
    const body = orderBody();
    if (delay > 0) await sleep(delay);
    return reply.code(201).send(body);
  });
  await app.ready();
  return {
    server,
    close: async () => {
      await app.close();
      for (const close of closers) await close();
    },
  };
}

export async function buildHono(cfg) {
  const { Hono } = await import('hono');
  const { getRequestListener } = await import('@hono/node-server');
  const closers = [];
  const app = new Hono();
  const delay = cfg.delayMs ?? 0;
  if (cfg.variant !== 'bare') {
    const { idempotent } = await import('@idem/hono');
    app.use(idempotent(idemOptions(cfg, await storeFor(cfg, closers))));
  }
  app.post('/orders', async (c) => {
    await c.req.json(); // what a handler of a JSON route does; bare parses the body too
    const body = orderBody();
    if (delay > 0) await sleep(delay);
    return c.json(body, 201);
  });
  return {
    server: createServer(getRequestListener(app.fetch)),
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

/** The server of any framework's variant: { server, close }, the server not yet listening. */
export async function buildServer(cfg) {
  if (cfg.framework === 'fastify') return buildFastify(cfg);
  if (cfg.framework === 'hono') return buildHono(cfg);
  const { app, close } = cfg.framework === 'koa' ? await buildKoa(cfg) : await buildExpress(cfg);
  return { server: createServer(cfg.framework === 'koa' ? app.callback() : app), close };
}
