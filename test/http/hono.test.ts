/**
 * @idem/hono: the shared HTTP scenario suite on @hono/node-server, then what is Hono's own: the
 * body idem reads is still the handler's in every form, route patterns and params are the
 * handler's (also in a sub-app), raw `Response`s, and `cached()`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createCache } from '@idem/cache';
import { IdempotencyConfigError, storageKey } from '@idem/core';
import { cached, idempotent } from '@idem/hono';
import { afterEach, describe, expect, it } from 'vitest';
import { honoAdapter } from '../apps/hono-app.js';
import { httpScenarios } from './scenarios.js';

httpScenarios(honoAdapter('Hono 4'));

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

async function listen(app: Hono): Promise<string> {
  const listener = getRequestListener(app.fetch);
  const server = createServer((req, res) => void listener(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function call(
  url: string,
  options: { method?: string; key?: string; type?: string; body?: string | Uint8Array } = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const headers: Record<string, string> = {};
  if (options.type !== undefined) headers['content-type'] = options.type;
  if (options.key !== undefined) headers['idempotency-key'] = options.key;
  const res = await fetch(url, { method: options.method ?? 'POST', headers, body: options.body as never });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('@idem/hono request bodies', () => {
  async function app(): Promise<{ url: string; runs: () => number }> {
    const hono = new Hono();
    hono.use(idempotent());
    let runs = 0;
    hono.post('/text', async (c) => c.json({ run: ++runs, got: await c.req.text() }));
    hono.post('/form', async (c) => c.json({ run: ++runs, got: await c.req.parseBody({ all: true }) }));
    hono.post('/bytes', async (c) => c.json({ run: ++runs, got: [...new Uint8Array(await c.req.arrayBuffer())] }));
    return { url: await listen(hono), runs: () => runs };
  }

  it('the handler still reads the body idem read, as text, a form or bytes; the same body replays, another is 422', async () => {
    const { url, runs } = await app();
    const cases: [string, string, string | Uint8Array, string | Uint8Array, unknown][] = [
      ['/text', 'text/plain', 'hello', 'hello!', 'hello'],
      ['/form', 'application/x-www-form-urlencoded', 'a=1&b=2&b=3', 'a=1&b=2', { a: '1', b: ['2', '3'] }],
      ['/bytes', 'application/octet-stream', new Uint8Array([0, 1, 255]), new Uint8Array([0, 1, 254]), [0, 1, 255]],
    ];
    for (const [path, type, body, other, got] of cases) {
      const key = randomUUID();
      const first = await call(url + path, { key, type, body });
      expect(first.status, path).toBe(200);
      expect(JSON.parse(first.body.toString()).got, path).toEqual(got);
      const replay = await call(url + path, { key, type, body });
      expect(replay.headers.get('idempotent-replayed'), path).toBe('true');
      expect(replay.body.equals(first.body), path).toBe(true);
      expect((await call(url + path, { key, type, body: other })).status, path).toBe(422);
    }
    expect(runs()).toBe(3);
  });
});

describe('@idem/hono routes', () => {
  it("keys by the handler's route pattern, in a sub-app too, and derives keys from the handler's params", async () => {
    const hono = new Hono();
    const mw = idempotent({ methods: ['POST', 'PUT'] });
    const executed: (string | undefined)[] = [];
    mw.events.on('execute', (e) => executed.push(e.route));
    hono.use(mw);
    const v1 = new Hono();
    v1.post('/orders/:id', (c) => c.json({ id: c.req.param('id') }));
    hono.route('/v1', v1);
    const byParam = idempotent({ header: false, key: ['params.id'], methods: ['PUT'] });
    let puts = 0;
    hono.put('/things/:id', byParam, (c) => c.json({ run: ++puts, id: c.req.param('id') }));
    const url = await listen(hono);
    const key = randomUUID();
    const keys: string[] = [];
    mw.events.on('execute', (e) => keys.push(e.key));
    await call(`${url}/v1/orders/7`, { key });
    expect(executed).toEqual(['/v1/orders/:id']);
    expect(keys).toEqual([storageKey('POST /v1/orders/:id', key)]);
    const a = await call(`${url}/things/a`, { method: 'PUT' });
    const again = await call(`${url}/things/a`, { method: 'PUT' });
    const b = await call(`${url}/things/b`, { method: 'PUT' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.equals(a.body)).toBe(true);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(puts).toBe(2);
  });

  it('a raw Response from the handler is stored and replayed with its status, headers and bytes', async () => {
    const hono = new Hono();
    hono.use(idempotent());
    let runs = 0;
    hono.post('/raw', () => {
      runs++;
      return new Response(new Uint8Array([7, 8, 9]), { status: 202, headers: { 'x-raw': String(runs) } });
    });
    const url = await listen(hono);
    const key = randomUUID();
    const first = await call(`${url}/raw`, { key });
    const replay = await call(`${url}/raw`, { key });
    expect(first.status).toBe(202);
    expect(replay.status).toBe(202);
    expect([...replay.body]).toEqual([7, 8, 9]);
    expect(replay.headers.get('x-raw')).toBe('1');
    expect(replay.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toBe(1);
  });

  // The scenario suite's tenant scopes read `req.headers`, which a Hono context does not have:
  // user functions get the context, and read headers as Hono does.
  it('user functions receive the context: a scope from c.req.header() keeps tenants apart', async () => {
    const hono = new Hono();
    hono.use(idempotent({ scope: (c) => c.req.header('x-tenant') }));
    let runs = 0;
    hono.post('/orders', (c) => c.json({ run: ++runs }));
    const url = await listen(hono);
    const key = randomUUID();
    const post = (tenant: string) =>
      fetch(`${url}/orders`, { method: 'POST', headers: { 'idempotency-key': key, 'x-tenant': tenant } });
    const acme = await (await post('acme')).text();
    const globex = await post('globex');
    expect(globex.headers.get('idempotent-replayed')).toBeNull();
    const again = await post('acme');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(acme);
    expect(runs).toBe(2);
  });

  it('a bad option throws at creation, naming it', () => {
    expect(() => idempotent({ lockTtl: 'soon' } as never)).toThrow(IdempotencyConfigError);
    expect(() => idempotent({ lockTtl: 'soon' } as never)).toThrow(/lockTtl/);
  });
});

describe('@idem/hono cached', () => {
  it('runs a GET handler once per URL and answers from the cache, marked with Cache-Status; other methods pass', async () => {
    const cache = createCache({ ttl: '1m' });
    const hono = new Hono();
    let runs = 0;
    hono.use('/stats', cached({ cache }));
    hono.get('/stats', (c) => {
      c.header('x-trace', 'handler');
      return c.json({ run: ++runs });
    });
    hono.post('/stats', (c) => c.json({ run: ++runs }));
    const url = await listen(hono);
    const first = await call(`${url}/stats`, { method: 'GET' });
    const second = await call(`${url}/stats`, { method: 'GET' });
    expect(first.headers.get('cache-status')).toBe('idem; fwd=miss; stored');
    expect(second.headers.get('cache-status')).toBe('idem; hit');
    expect(second.body.equals(first.body)).toBe(true);
    expect(second.headers.get('x-trace')).toBe('handler');
    expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
    const posted = await call(`${url}/stats`);
    expect(posted.headers.get('cache-status')).toBeNull();
    expect(runs).toBe(2);
    await cache.close();
  });
});
