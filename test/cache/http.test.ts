/**
 * `cached()` for GET routes, one scenario list run on Express 4 and 5, Koa 2 and 3, Fastify 5 and Hono 4, with a
 * memory-only cache and (for instances sharing a Redis) with L2. The middleware files are read
 * from source until the packages export them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Koa2 from 'koa2';
import { Redis } from 'ioredis';
import { createCache, type Cache, type CacheOptions } from '@idem/cache';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cached as expressCached } from '@idem/express';
import { cached as koaCached } from '@idem/koa';
import { RedisServer } from '../harness/redis.mjs';
import { deferred, type Deferred } from '../harness/wait.js';
import { busConnected, fakeClock, nextEvent } from './helpers.js';
import { koaServer } from '../apps/scenario.js';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { cached as honoCached } from '@idem/hono';
import { cached as fastifyCached } from '@idem/fastify';

/** What the test handlers do; shared by every framework's app. */
class Upstream {
  runs = 0;
  mode: 'ok' | 'fail' | 'throw' = 'ok';
  gate: Deferred<void> | undefined;
  started = deferred();
  #runWaiters: { count: number; resolve: () => void }[] = [];

  /** Resolves once the handler has started `count` times. */
  running(count: number): Promise<void> {
    if (this.runs >= count) return Promise.resolve();
    return new Promise((resolve) => this.#runWaiters.push({ count, resolve }));
  }

  async handle(lang: string | undefined): Promise<{ status: number; body: unknown }> {
    this.runs++;
    this.started.resolve();
    this.#runWaiters = this.#runWaiters.filter((w) => (this.runs >= w.count ? (w.resolve(), false) : true));
    if (this.gate) await this.gate.promise;
    if (this.mode === 'throw') throw new Error('upstream exploded');
    if (this.mode === 'fail') return { status: 500, body: { error: 'upstream down' } };
    return { status: 200, body: { run: this.runs, lang: lang ?? null } };
  }
}

interface App {
  url: string;
  upstream: Upstream;
  close(): Promise<void>;
}

/** The options of `cached()` a test may add to the apps' own. */
type ExtraOptions = { hardTimeout?: number };
type Framework = { name: string; start(cache: Cache, extra?: ExtraOptions): Promise<App> };

async function listen(server: Server, upstream: Upstream): Promise<App> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    upstream,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function expressFramework(name: string, express: typeof express5): Framework {
  return {
    name,
    async start(cache, extra = {}) {
      const upstream = new Upstream();
      const app = express();
      const mw = expressCached({ cache, vary: ['Accept-Language'], tags: ['stats'], ...extra });
      app.get('/stats', mw as never, async (req, res, next) => {
        try {
          const { status, body } = await upstream.handle(req.get('accept-language'));
          res.set('X-Trace', 'from-handler').status(status).json(body);
        } catch (error) {
          next(error);
        }
      });
      app.get('/cookie', mw as never, (_req, res) => {
        upstream.runs++;
        res.cookie('session', 'abc').json({ run: upstream.runs });
      });
      app.post('/stats', mw as never, (_req, res) => {
        upstream.runs++;
        res.json({ run: upstream.runs });
      });
      // Quiet error handler: a thrown handler is a 500 like any other.
      app.use(
        (_error: unknown, _req: unknown, res: express5.Response, _next: unknown) =>
          void res.status(500).json({ error: 'internal' }),
      );
      return listen(createServer(app), upstream);
    },
  };
}

function koaFramework(name: string, KoaClass: typeof Koa): Framework {
  return {
    name,
    async start(cache, extra = {}) {
      const upstream = new Upstream();
      const app = new KoaClass();
      app.silent = true;
      const mw = koaCached({ cache, vary: ['Accept-Language'], tags: ['stats'], ...extra });
      const router = new Router();
      router.get('/stats', mw, async (ctx) => {
        const { status, body } = await upstream.handle(ctx.get('accept-language') || undefined);
        ctx.set('X-Trace', 'from-handler');
        ctx.status = status;
        ctx.body = body;
      });
      router.get('/cookie', mw, (ctx) => {
        upstream.runs++;
        ctx.cookies.set('session', 'abc');
        ctx.body = { run: upstream.runs };
      });
      router.post('/stats', mw, (ctx) => {
        upstream.runs++;
        ctx.body = { run: upstream.runs };
      });
      app.use(router.routes());
      return listen(koaServer(app), upstream);
    },
  };
}

function honoFramework(): Framework {
  return {
    name: 'Hono 4',
    async start(cache, extra = {}) {
      const upstream = new Upstream();
      const app = new Hono();
      app.onError((_e, c) => c.json({ error: 'internal' }, 500));
      const mw = honoCached({ cache, vary: ['Accept-Language'], tags: ['stats'], ...extra });
      app.get('/stats', mw, async (c) => {
        const { status, body } = await upstream.handle(c.req.header('accept-language'));
        c.header('X-Trace', 'from-handler');
        return c.json(body, status as 200);
      });
      app.get('/cookie', mw, (c) => {
        upstream.runs++;
        c.header('set-cookie', 'session=abc');
        return c.json({ run: upstream.runs });
      });
      app.post('/stats', mw, (c) => {
        upstream.runs++;
        return c.json({ run: upstream.runs });
      });
      const listener = getRequestListener(app.fetch);
      return listen(
        createServer((req, res) => void listener(req, res)),
        upstream,
      );
    },
  };
}
function fastifyFramework(): Framework {
  return {
    name: 'Fastify 5',
    async start(cache, extra = {}) {
      const upstream = new Upstream();
      const app = Fastify();
      app.setErrorHandler((_e, _r, reply) => reply.code(500).send({ error: 'internal' }));
      await app.register(fastifyCached, { cache, vary: ['Accept-Language'], tags: ['stats'], ...extra });
      app.get('/stats', async (request, reply) => {
        const { status, body } = await upstream.handle(request.headers['accept-language'] as string | undefined);
        return reply.header('X-Trace', 'from-handler').code(status).send(body);
      });
      app.get('/cookie', async (_r, reply) => {
        upstream.runs++;
        return reply.header('set-cookie', 'session=abc').send({ run: upstream.runs });
      });
      app.post('/stats', async () => {
        upstream.runs++;
        return { run: upstream.runs };
      });
      await app.ready();
      return listen(app.server, upstream);
    },
  };
}

const frameworks = [
  expressFramework('Express 5', express5),
  expressFramework('Express 4', express4 as unknown as typeof express5),
  koaFramework('Koa 3', Koa),
  koaFramework('Koa 2', Koa2 as unknown as typeof Koa),
  fastifyFramework(),
  honoFramework(),
];

async function get(
  app: App,
  path = '/stats',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(app.url + path, { headers });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

let redisServer: RedisServer;
const cleanup: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  redisServer = await RedisServer.start();
});
afterAll(() => redisServer.stop());
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function start(framework: Framework, options: CacheOptions = {}): Promise<App> {
  const cache = createCache({ ttl: '1m', ...options });
  const app = await framework.start(cache);
  cleanup.push(
    () => app.close(),
    () => cache.close(),
  );
  return app;
}

/** The app on a cache of the test's own (a real one to watch or close, or a stand-in). */
async function startOn(framework: Framework, cache: Cache, extra?: ExtraOptions): Promise<App> {
  const app = await framework.start(cache, extra);
  cleanup.push(
    () => app.close(),
    () => cache.close?.(),
  );
  return app;
}

/** A stand-in for the cache whose every lookup settles as `settle` says, without running the loader. */
function standIn(settle: () => Promise<unknown>): Cache {
  return { getOrSetEntry: settle, close: async () => {} } as unknown as Cache;
}

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });

describe.each(frameworks)('cached() on $name', (framework) => {
  it('runs the handler once and replays status, headers and bytes, marked with Cache-Status', async () => {
    const app = await start(framework);
    const first = await get(app);
    const second = await get(app);
    expect(app.upstream.runs).toBe(1);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-status')).toBe('idem; fwd=miss; stored');
    expect(second.headers.get('cache-status')).toBe('idem; hit');
    expect(second.status).toBe(200);
    expect(second.body).toBe(first.body);
    expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(second.headers.get('x-trace')).toBe('from-handler');
  });

  it('many concurrent requests on a cold URL run the handler once and share its response', async () => {
    const app = await start(framework);
    app.upstream.gate = deferred();
    const requests = Array.from({ length: 20 }, () => get(app));
    await app.upstream.started.promise;
    app.upstream.gate.resolve();
    const responses = await Promise.all(requests);
    expect(app.upstream.runs).toBe(1);
    for (const r of responses) {
      expect(r.status).toBe(200);
      expect(r.body).toBe(responses[0]?.body);
    }
  });

  it('keeps one entry per value of the `vary` headers', async () => {
    const app = await start(framework);
    const en = await get(app, '/stats', { 'accept-language': 'en' });
    const fr = await get(app, '/stats', { 'accept-language': 'fr' });
    expect(JSON.parse(en.body)).toMatchObject({ lang: 'en' });
    expect(JSON.parse(fr.body)).toMatchObject({ lang: 'fr' });
    expect((await get(app, '/stats', { 'accept-language': 'en' })).body).toBe(en.body);
    expect(app.upstream.runs).toBe(2);
  });

  it('does not keep an error status or a response that sets a cookie; passes other methods through', async () => {
    const app = await start(framework);
    app.upstream.mode = 'fail';
    expect((await get(app)).status).toBe(500);
    expect((await get(app)).status).toBe(500);
    expect(app.upstream.runs).toBe(2);
    await get(app, '/cookie');
    await get(app, '/cookie');
    expect(app.upstream.runs).toBe(4);
    const post = await fetch(`${app.url}/stats`, { method: 'POST' });
    expect(post.headers.get('cache-status')).toBeNull();
    expect(app.upstream.runs).toBe(5);
  });

  it('within grace, answers a failing or throwing handler with the last good response', async () => {
    const clock = fakeClock();
    const app = await start(framework, { clock, ttl: 1_000, grace: 60_000 });
    const good = await get(app);
    clock.advance(1_000);
    app.upstream.mode = 'fail';
    const stale = await get(app);
    expect(stale.status).toBe(200);
    expect(stale.body).toBe(good.body);
    expect(stale.headers.get('cache-status')).toBe('idem; hit; detail=stale');
    app.upstream.mode = 'throw';
    const again = await get(app);
    expect(again.status).toBe(200);
    expect(again.body).toBe(good.body);
    expect(app.upstream.runs).toBe(3);
  });

  // regression: with eagerRefresh, the cache refreshed a hit in the background by calling the
  // loader, which is the request's own handler: on Express it ran again on an answered response
  // and crashed the process (ERR_HTTP_HEADERS_SENT); on Koa the refresh silently never worked.
  it("ignores the cache's eagerRefresh: a hit past the refresh point runs no handler", async () => {
    const clock = fakeClock();
    const app = await start(framework, { clock, ttl: 1_000, eagerRefresh: 0.5 });
    await get(app);
    clock.advance(600);
    const hit = await get(app);
    expect(hit.headers.get('cache-status')).toBe('idem; hit');
    // A refresh would have started on that hit; the next request is answered after it would have run.
    const again = await get(app);
    expect(again.headers.get('cache-status')).toBe('idem; hit');
    expect(app.upstream.runs).toBe(1);
  });

  // One loader call per key, as getOrSet promises: a failed load is shared by every request that
  // joined it (Express: the error handler's 500 that the run produced; Koa: the error, rethrown).
  it('a handler that fails while others wait fails them all: it runs once, and the next request runs it again', async () => {
    const cache = createCache({ ttl: '1m' });
    const app = await startOn(framework, cache);
    app.upstream.mode = 'throw';
    app.upstream.gate = deferred();
    let misses = 0;
    const joined = nextEvent(cache, 'miss', (e) => e.layer === 'l1' && ++misses === 10);
    const requests = Array.from({ length: 10 }, () => get(app));
    await joined;
    app.upstream.gate.resolve();
    const responses = await Promise.all(requests);
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 500));
    expect(app.upstream.runs).toBe(1);
    app.upstream.mode = 'ok';
    app.upstream.gate = undefined;
    expect((await get(app)).status).toBe(200);
    expect(app.upstream.runs).toBe(2);
  });

  it('a cache that gave up is routed around: a closed cache, and a hard timeout while another runs, let the handler answer', async () => {
    const cache = createCache({ ttl: '1m' });
    const app = await startOn(framework, cache, { hardTimeout: 50 });
    app.upstream.gate = deferred();
    const first = get(app);
    await app.upstream.running(1);
    // The second joins the first's run, which outlasts hardTimeout: the cache gives up on it
    // (cache_hard_timeout) and this request runs the handler itself.
    const second = get(app);
    await app.upstream.running(2);
    app.upstream.gate.resolve();
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers.get('cache-status')).toBe('idem; fwd=miss');
    await cache.close();
    const closed = await get(app);
    expect(closed.status).toBe(200);
    expect(closed.headers.get('cache-status')).toBe('idem; fwd=miss');
    expect(app.upstream.runs).toBe(3);
  });

  // regression: Koa told a cache failure by error.name === 'CacheError', Express not at all
  it("tells the cache's failure from a shared one by its documented code, not by a class name", async () => {
    const cases: [string, Error, number][] = [
      ['a shared failure', new Error('the load this request joined failed'), 500],
      ['a cache_* code on a plain Error', withCode('breaker open', 'cache_breaker_open'), 200],
      ['a CacheError name without a code', Object.assign(new Error('not the cache'), { name: 'CacheError' }), 500],
      ['a bad option is no outage', withCode('bad tags', 'cache_config'), 500],
    ];
    for (const [what, error, status] of cases) {
      const app = await startOn(
        framework,
        standIn(() => Promise.reject(error)),
      );
      const res = await get(app);
      expect(res.status, what).toBe(status);
      expect(app.upstream.runs, what).toBe(status === 200 ? 1 : 0);
    }
  });

  it('a cached response Node refuses (status 1000, a header value with a newline) is a 500 through the error handling; the server keeps serving', async () => {
    let value: unknown;
    const app = await startOn(
      framework,
      standIn(async () => ({ value, stale: false, source: 'l2' })),
    );
    const body = Buffer.from('kept');
    for (const bad of [
      { status: 1000, headers: {}, body },
      { status: 200, headers: { 'x-bad': 'a\nb' }, body },
    ]) {
      value = bad;
      const res = await get(app);
      expect(res.status).toBe(500);
      expect(res.headers.get('x-bad')).toBeNull();
    }
    value = { status: 200, headers: { 'content-type': 'text/plain' }, body };
    const good = await get(app);
    expect(good.status).toBe(200);
    expect(good.body).toBe('kept');
    expect(good.headers.get('cache-status')).toBe('idem; hit');
  });

  it('instances sharing a Redis share the cached response', async () => {
    const clients = [new Redis(redisServer.url), new Redis(redisServer.url)];
    cleanup.push(() => clients.forEach((c) => c.disconnect()));
    const namespace = `http-${framework.name.replace(/\W/g, '')}-${Date.now()}`;
    const caches = clients.map((redis) => createCache({ redis, namespace }));
    await Promise.all(caches.map((c) => busConnected(c)));
    const apps = await Promise.all(caches.map((c) => framework.start(c)));
    cleanup.push(...apps.map((a) => () => a.close()), ...caches.map((c) => () => c.close()));
    const [a, b] = apps as [App, App];
    const first = await get(a);
    const second = await get(b);
    expect(second.body).toBe(first.body);
    expect(second.headers.get('cache-status')).toBe('idem; hit');
    expect(a.upstream.runs + b.upstream.runs).toBe(1);
    const invalidated = nextEvent(caches[1] as Cache, 'invalidate', (e) => e.kind === 'tags' && e.origin === 'remote');
    await caches[0]?.deleteByTag('stats');
    await invalidated;
    await get(b);
    expect(b.upstream.runs).toBe(1);
  });
});
