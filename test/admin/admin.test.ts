/**
 * The admin API's own rules, on Express and Koa over real HTTP with the memory store: no admin
 * without authorize, what authorize is given and how its answers count, bad input, unknown
 * endpoints, and the cache endpoints (stats, clear, delete by tag, warm).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type Cache } from '@idem/cache';
import { ConfigError, memoryStore, type Logger } from '@idem/core';
import { AdminConfigError, createAdmin, type AdminTarget } from '@idem/admin';
import { adminRouter } from '@idem/admin/express';
import { adminMiddleware } from '@idem/admin/koa';
import { afterEach, describe, expect, it } from 'vitest';
import { address, expressApp, koaApp, post, testAuthorize, type AdminApp, type AdminAppOptions } from './apps.js';

const opened: AdminApp[] = [];
const caches: Cache[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((app) => app.close()));
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

const VARIANTS = [
  { name: 'Express (body read by the admin API)', start: expressApp, parserFirst: false, readsBody: true },
  { name: 'Express (express.json() before it)', start: expressApp, parserFirst: true, readsBody: false },
  { name: 'Koa (@koa/bodyparser before it)', start: koaApp, parserFirst: false, readsBody: false },
] as const;

async function problemOf(response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ type: `urn:idem:admin:problem:${code}`, status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

function recordingLogger(): Logger & { errors: unknown[]; infos: unknown[] } {
  const errors: unknown[] = [];
  const infos: unknown[] = [];
  return {
    errors,
    infos,
    debug() {},
    info: (obj) => void infos.push(obj),
    warn() {},
    error: (obj) => void errors.push(obj),
  };
}

describe('creating the admin API', () => {
  const store = memoryStore();
  it.each([
    ['createAdmin', (o: object) => createAdmin(o as never)],
    ['adminRouter (Express)', (o: object) => adminRouter(o as never)],
    ['adminMiddleware (Koa)', (o: object) => adminMiddleware({ prefix: '/admin', ...o } as never)],
  ])('%s without authorize is a TypeError naming it', (_name, create) => {
    for (const options of [{ store }, { store, authorize: true }, { store, authorize: undefined }]) {
      let thrown: unknown;
      try {
        create(options);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect(thrown).toBeInstanceOf(AdminConfigError);
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as AdminConfigError).option).toBe('authorize');
      expect((thrown as Error).message).toMatch(/authorize.*required/);
    }
  });

  it('refuses a missing store, a bad cache, an unknown option and a Koa admin without prefix', () => {
    const authorize = () => true;
    expect(() => adminRouter({ authorize } as never)).toThrow(/`store`/);
    expect(() => adminRouter({ store, authorize, cache: {} } as never)).toThrow(/`cache`.*stats/);
    expect(() => adminRouter({ store, authorize, authorise: authorize } as never)).toThrow(/`authorise`.*unknown/);
    expect(() => adminRouter({ store, authorize, maxBodyBytes: 0 })).toThrow(/`maxBodyBytes`/);
    expect(() => adminRouter({ store, authorize, healthTimeout: 'soon' })).toThrow(/`healthTimeout`/);
    expect(() => adminRouter({ store, authorize, prefix: '/x' } as never)).toThrow(/`prefix`.*unknown/);
    expect(() => adminMiddleware({ store, authorize } as never)).toThrow(/`prefix`.*required/);
    expect(() => adminMiddleware({ store, authorize, prefix: 'admin' })).toThrow(/`prefix`/);
  });
});

describe.each(VARIANTS)('$name', ({ start: startApp, parserFirst, readsBody }) => {
  async function start(options: Partial<AdminAppOptions> = {}): Promise<AdminApp> {
    const app = await startApp({ store: memoryStore(), parserFirst, ...options });
    opened.push(app);
    return app;
  }

  describe('authorize', () => {
    it('is given the request and the parsed target, and may be async', async () => {
      const seen: { target: AdminTarget; hasHeaders: boolean }[] = [];
      const app = await start({
        authorize: async (native, target, headers) => {
          seen.push({ target, hasHeaders: typeof (native as { headers?: unknown }).headers === 'object' });
          await new Promise((resolve) => setImmediate(resolve));
          return testAuthorize(native, target, headers);
        },
      });
      const key = `k-${randomUUID()}`;
      await post(app, '/orders', key);
      expect((await app.admin(`/records${address(key, 'POST /orders', '&body=1')}`)).status).toBe(200);
      expect((await app.admin(`/records?keyJson=${encodeURIComponent('["a",1]')}&scopeJson=42`)).status).toBe(404);
      expect((await app.admin('/health')).status).toBe(200);
      expect(seen.map((s) => s.hasHeaders)).toEqual([true, true, true]);
      expect(seen[0]?.target).toEqual({
        action: 'record.read',
        scope: 'POST /orders',
        key,
        storageKey: expect.stringMatching(/^[0-9a-f]{64}$/),
        body: true,
      });
      expect(seen[1]?.target).toMatchObject({ action: 'record.read', scope: 42, key: ['a', 1], body: false });
      expect(seen[2]?.target).toEqual({ action: 'health' });
    });

    it('allows only on true: a forgotten return or a truthy value is 403', async () => {
      for (const answer of [undefined, 1, 'yes', {}]) {
        const app = await start({ authorize: () => answer });
        await problemOf(await app.admin('/health'), 403, 'forbidden');
      }
    });

    it('a throw is 500 problem+json without its message, which goes to the logger', async () => {
      const logger = recordingLogger();
      const app = await start({
        logger,
        authorize: () => {
          throw new Error('secret: token table unreachable at 10.0.0.7');
        },
      });
      const response = await app.admin('/health');
      const body = await problemOf(response, 500, 'authorize_failed');
      expect(JSON.stringify(body)).not.toMatch(/secret|10\.0\.0\.7/);
      expect(logger.errors).toHaveLength(1);
      expect(String((logger.errors[0] as { err: Error }).err.message)).toMatch(/secret/);
      const rejecting = await start({ authorize: () => Promise.reject(new Error('secret')) });
      await problemOf(await rejecting.admin('/health'), 500, 'authorize_failed');
    });
  });

  describe('bad input is 400 problem+json with a clear detail', () => {
    it.each([
      ['no key', '/records?scope=POST%20/orders', /key/],
      ['no scope', '/records?key=k', /scope/],
      ['key and keyJson', '/records?key=k&keyJson=%22k%22&scope=s', /either key or keyJson/],
      ['two scope forms', '/records?key=k&scope=s&method=POST&route=/orders', /one way/],
      ['method without route', '/records?key=k&method=POST', /scope/],
      ['a route that is no path', '/records?key=k&method=POST&route=orders', /route/],
      ['a typo', '/records?key=k&scop=s', /Unknown query parameter "scop"/],
      ['a repeated parameter', '/records?key=k&key=j&scope=s', /more than once/],
      ['bad JSON', '/records?keyJson=%7Bx&scope=s', /keyJson is not valid JSON/],
      ['a bad flag', '/records?key=k&scope=s&body=yes', /body must be 1 or 0/],
      ['an empty key', '/records?key=&scope=s', /key is empty/],
      ['a query on health', '/health?verbose=1', /Unknown query parameter/],
    ])('%s', async (_what, path, detail) => {
      const app = await start();
      const body = await problemOf(await app.admin(path), 400, 'input_invalid');
      expect(body.detail).toMatch(detail);
    });

    it('bad input is answered before authorize is asked', async () => {
      let asked = 0;
      const app = await start({
        authorize: () => {
          asked++;
          return true;
        },
      });
      await problemOf(await app.admin('/records?key=k'), 400, 'input_invalid');
      expect(asked).toBe(0);
    });
  });

  it('an unknown endpoint is 404 and a wrong method 405 with Allow, both problem+json', async () => {
    const app = await start();
    await problemOf(await app.admin('/nothing'), 404, 'not_found');
    const wrong = await app.admin('/records?key=k&scope=s', { method: 'PUT' });
    await problemOf(wrong, 405, 'method_not_allowed');
    expect(wrong.headers.get('allow')).toBe('GET, DELETE');
    expect((await app.admin('/health/')).status).toBe(200);
  });

  it('deletes are written to the logger (an audit trail)', async () => {
    const logger = recordingLogger();
    const app = await start({ logger });
    const key = `k-${randomUUID()}`;
    await post(app, '/orders', key);
    expect((await app.admin(`/records${address(key, 'POST /orders')}`, { method: 'DELETE' })).status).toBe(200);
    expect(logger.infos).toEqual([{ action: 'record.delete', storageKey: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
  });

  describe('cache endpoints', () => {
    function newCache(): Cache {
      const cache = createCache({ ttl: '1h' });
      caches.push(cache);
      return cache;
    }
    const json = (body: unknown, method = 'POST'): RequestInit => ({
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

    it('warm stores entries, delete-by-tag drops the tagged ones, clear empties the namespace', async () => {
      const cache = newCache();
      const targets: AdminTarget[] = [];
      const app = await start({
        cache,
        authorize: (native, target, headers) => (targets.push(target), testAuthorize(native, target, headers)),
      });
      const warmed = await app.admin(
        '/cache/warm',
        json({
          entries: [
            { key: 'plan:free', value: { price: 0 }, tags: ['plans'] },
            { key: 'plan:pro', value: { price: 20 }, ttl: '10m', tags: ['plans', 'paid'] },
            { key: 'flag:beta', value: true },
          ],
        }),
      );
      expect(warmed.status).toBe(200);
      expect(await warmed.json()).toEqual({ stored: 3 });
      expect(await cache.get('plan:pro')).toEqual({ price: 20 });
      expect(targets.at(-1)).toEqual({ action: 'cache.warm', keys: ['plan:free', 'plan:pro', 'flag:beta'] });

      const stats = (await (await app.admin('/cache/stats')).json()) as { l1: { size: number } };
      expect(stats.l1.size).toBe(3);

      expect((await app.admin('/cache/delete-by-tag', json({ tags: ['paid'] }))).status).toBe(200);
      expect(await cache.get('plan:pro')).toBeUndefined();
      expect(await cache.get('plan:free')).toEqual({ price: 0 });
      expect((await app.admin('/cache/delete-by-tag', json({ tag: 'plans' }))).status).toBe(200);
      expect(await cache.get('plan:free')).toBeUndefined();
      expect(targets.at(-1)).toEqual({ action: 'cache.deleteByTag', tags: ['plans'] });

      const cleared = await app.admin('/cache/clear', { method: 'POST' });
      expect(cleared.status).toBe(200);
      expect(await cleared.json()).toEqual({ cleared: true, namespace: null });
      expect(await cache.get('flag:beta')).toBeUndefined();
      expect(targets.at(-1)).toEqual({ action: 'cache.clear', namespace: undefined });
      expect((await app.admin('/cache/clear', json({ namespace: 'other' }))).status).toBe(200);
      expect(targets.at(-1)).toEqual({ action: 'cache.clear', namespace: 'other' });
    });

    it('health reports the cache breaker and bus', async () => {
      const app = await start({ cache: newCache() });
      const report = (await (await app.admin('/health')).json()) as { status: string; cache: unknown };
      expect(report.status).toBe('ok');
      expect(report.cache).toEqual({ breaker: 'closed', bus: { connected: false }, l1: { size: 0 } });
    });

    it.each([
      ['no entries', { entries: [] }, /entries must be a non-empty array/],
      ['an entry without value', { entries: [{ key: 'a' }] }, /entries\[0\]\.value is missing/],
      ['an unknown entry field', { entries: [{ key: 'a', value: 1, tll: '1m' }] }, /unknown field "tll"/],
      ['a ttl the cache refuses', { entries: [{ key: 'a', value: 1, ttl: 'soon' }] }, /ttl/],
      ['an unknown body field', { entrys: [] }, /Unknown field "entrys"/],
    ])('warm with %s is 400', async (_what, body, detail) => {
      const app = await start({ cache: newCache() });
      const problem = await problemOf(await app.admin('/cache/warm', json(body)), 400, 'input_invalid');
      expect(problem.detail).toMatch(detail);
    });

    it('delete-by-tag without tags and a bad namespace are 400', async () => {
      const app = await start({ cache: newCache() });
      await problemOf(await app.admin('/cache/delete-by-tag', json({})), 400, 'input_invalid');
      await problemOf(await app.admin('/cache/delete-by-tag', json({ tags: [''] })), 400, 'input_invalid');
      await problemOf(await app.admin('/cache/clear', json({ namespace: 'a{b}' })), 400, 'input_invalid');
      await problemOf(await app.admin('/cache/clear', json([1])), 400, 'input_invalid');
    });

    it('without a cache, the cache endpoints are 404 cache_not_configured', async () => {
      const app = await start();
      await problemOf(await app.admin('/cache/stats'), 404, 'cache_not_configured');
      await problemOf(await app.admin('/cache/warm', json({ entries: [] })), 404, 'cache_not_configured');
    });

    it('a body that is not JSON is refused, and so is one over maxBodyBytes', async () => {
      const app = await start({ cache: newCache() });
      const text = await app.admin('/cache/warm', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'x',
      });
      // A JSON parser before the admin API leaves a text body unread: the admin API reads it and refuses it.
      await problemOf(text, 415, 'media_type_unsupported');
      const broken = await app.admin('/cache/warm', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"entries": [',
      });
      expect(broken.status).toBe(400);
      // A parser mounted before the admin API answers its own syntax errors, in its own format.
      if (readsBody) await problemOf(broken, 400, 'input_invalid');
    });
  });
});

describe('maxBodyBytes', () => {
  it('a body over it is 413 problem+json, and nothing is warmed', async () => {
    const cache = createCache({});
    caches.push(cache);
    // The router alone on a plain Node server: it answers every request that reaches it.
    const router = adminRouter({ store: memoryStore(), cache, maxBodyBytes: 64, authorize: () => true });
    const server = createServer((request, response) => router(request, response, () => response.end()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const response = await fetch(`http://127.0.0.1:${port}/cache/warm`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ entries: [{ key: 'k', value: 'x'.repeat(200) }] }),
      });
      await problemOf(response, 413, 'body_too_large');
      expect(await cache.get('k')).toBeUndefined();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
