/**
 * `cached()` for GET routes, one scenario list run on Express 4 and 5 and Koa 2 and 3, with a
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
import { RedisServer } from './harness/redis.mjs';
import { busConnected, deferred, fakeClock, nextEvent, type Deferred } from './cache-helpers.js';

/** What the test handlers do; shared by every framework's app. */
class Upstream {
  runs = 0;
  mode: 'ok' | 'fail' | 'throw' = 'ok';
  gate: Deferred<void> | undefined;
  started = deferred();

  async handle(lang: string | undefined): Promise<{ status: number; body: unknown }> {
    this.runs++;
    this.started.resolve();
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

type Framework = { name: string; start(cache: Cache): Promise<App> };

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
    async start(cache) {
      const upstream = new Upstream();
      const app = express();
      const mw = expressCached({ cache, vary: ['Accept-Language'], tags: ['stats'] });
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
      app.use((_error: unknown, _req: unknown, res: express5.Response, _next: unknown) => void res.status(500).json({ error: 'internal' }));
      return listen(createServer(app), upstream);
    },
  };
}

function koaFramework(name: string, KoaClass: typeof Koa): Framework {
  return {
    name,
    async start(cache) {
      const upstream = new Upstream();
      const app = new KoaClass();
      app.silent = true;
      const mw = koaCached({ cache, vary: ['Accept-Language'], tags: ['stats'] });
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
      return listen(createServer(app.callback()), upstream);
    },
  };
}

const frameworks = [
  expressFramework('Express 5', express5),
  expressFramework('Express 4', express4 as unknown as typeof express5),
  koaFramework('Koa 3', Koa),
  koaFramework('Koa 2', Koa2 as unknown as typeof Koa),
];

async function get(app: App, path = '/stats', headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
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
  cleanup.push(() => app.close(), () => cache.close());
  return app;
}

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
