/**
 * @idem/fastify: the shared HTTP scenario suite, then what is Fastify's own: plugin scopes
 * (encapsulation), per-route options through `config`, the payload kinds onSend sees, a hijacked
 * reply, and `cached` on GET routes.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { createCache } from '@idem/cache';
import { IdempotencyConfigError, memoryStore, storageKey } from '@idem/core';
import { cached, idempotent } from '@idem/fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyAdapter } from '../apps/fastify-app.js';
import { httpScenarios } from './scenarios.js';

httpScenarios(fastifyAdapter('Fastify 5'));

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function listen(app: FastifyInstance): Promise<string> {
  apps.push(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function call(
  url: string,
  options: { method?: string; key?: string; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.key !== undefined) headers['idempotency-key'] = options.key;
  const method = options.method ?? 'POST';
  const res = await fetch(url, {
    method,
    headers,
    body: method === 'GET' ? undefined : JSON.stringify(options.body ?? {}),
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** POSTs the same key twice: the second answer, and how often the handler ran. */
async function twice(url: string, runs: () => number): Promise<{ replayed: string | null; runs: number }> {
  const key = randomUUID();
  await call(url, { key });
  const second = await call(url, { key });
  return { replayed: second.headers.get('idempotent-replayed'), runs: runs() };
}

describe('@idem/fastify scopes and routes', () => {
  it('applies to the scope it is registered in and the scopes within, never to a sibling scope', async () => {
    const app = Fastify();
    const runs = { a: 0, inner: 0, b: 0 };
    await app.register(
      async (scope) => {
        await scope.register(idempotent);
        scope.post('/a', async () => ({ n: ++runs.a }));
        await scope.register(async (inner) => void inner.post('/inner/:id', async () => ({ n: ++runs.inner })));
      },
      { prefix: '/one' },
    );
    await app.register(async (scope) => void scope.post('/b', async () => ({ n: ++runs.b })), { prefix: '/two' });
    const url = await listen(app);
    expect(await twice(`${url}/one/a`, () => runs.a)).toEqual({ replayed: 'true', runs: 1 });
    expect(await twice(`${url}/one/inner/7`, () => runs.inner)).toEqual({ replayed: 'true', runs: 1 });
    expect(await twice(`${url}/two/b`, () => runs.b)).toEqual({ replayed: null, runs: 2 });
  });

  it('keys by the route pattern, with the prefix of its scope', async () => {
    const app = Fastify();
    await app.register(idempotent);
    const executed: { route: string | undefined; key: string }[] = [];
    app.idempotency.events.on('execute', ({ route, key }) => executed.push({ route, key }));
    await app.register(async (scope) => void scope.post('/orders/:id', async () => ({ ok: true })), {
      prefix: '/v1',
    });
    const url = await listen(app);
    const key = randomUUID();
    await call(`${url}/v1/orders/1`, { key });
    await call(`${url}/v1/orders/2`, { key });
    // One scope for both paths: the second is the first's key, replayed (the fingerprint has the path: 422).
    expect(executed).toEqual([{ route: '/v1/orders/:id', key: storageKey('POST /v1/orders/:id', key) }]);
  });

  it('a route opts out with config.idempotency: false, or takes options of its own, whose events reach the plugin', async () => {
    const app = Fastify();
    await app.register(idempotent);
    const rejected: string[] = [];
    app.idempotency.events.on('rejected', (e) => rejected.push(`${e.route}:${e.code}`));
    let plain = 0;
    let free = 0;
    app.post('/plain', async () => ({ n: ++plain }));
    app.post('/free', { config: { idempotency: false } }, async () => ({ n: ++free }));
    app.post('/strict', { config: { idempotency: { required: true } } }, async () => ({ ok: true }));
    const url = await listen(app);
    expect(await twice(`${url}/plain`, () => plain)).toEqual({ replayed: 'true', runs: 1 });
    expect(await twice(`${url}/free`, () => free)).toEqual({ replayed: null, runs: 2 });
    expect((await call(`${url}/strict`)).status).toBe(400);
    expect((await call(`${url}/plain`)).status).toBe(200);
    expect(rejected).toEqual(['/strict:key_missing']);
  });

  it('a bad option, in the plugin or on a route, fails startup naming it; a second registration in the chain is refused', async () => {
    const bad = Fastify();
    await expect(bad.register(idempotent, { ttl: 'soon' } as never)).rejects.toBeInstanceOf(IdempotencyConfigError);
    const badRoute = Fastify();
    await badRoute.register(idempotent);
    expect(() => badRoute.post('/x', { config: { idempotency: { lockTtl: -1 } } }, async () => ({}))).toThrow(
      /lockTtl/,
    );
    const twiceRegistered = Fastify();
    await twiceRegistered.register(idempotent);
    await expect(twiceRegistered.register(async (scope) => void (await scope.register(idempotent)))).rejects.toThrow(
      /already registered/,
    );
  });
});

describe('@idem/fastify payloads', () => {
  async function app(): Promise<{ url: string; runs: Map<string, number>; fastify: FastifyInstance }> {
    const fastify = Fastify();
    await fastify.register(idempotent, { store: memoryStore(), maxBodyBytes: 64 });
    const runs = new Map<string, number>();
    const ran = (name: string): number => {
      const n = (runs.get(name) ?? 0) + 1;
      runs.set(name, n);
      return n;
    };
    fastify.post('/web-stream', async (_request, reply) => {
      const n = ran('web-stream');
      reply.type('text/plain');
      return reply.send(new Blob([`web-`, `stream-${n}`]).stream());
    });
    fastify.post('/response', async (_request, reply) => {
      const n = ran('response');
      return reply.send(
        new Response(`made-${n}`, { status: 202, headers: { 'content-type': 'text/x-made', 'x-made': String(n) } }),
      );
    });
    fastify.post('/typed-array', async (_request, reply) => {
      ran('typed-array');
      return reply.send(new Uint8Array([1, 2, 3, 250]));
    });
    fastify.post('/untyped', async (_request, reply) => {
      const n = ran('untyped');
      // Fastify types strings and Buffers, not streams.
      return reply.send(Readable.from([`untyped-${n}`]));
    });
    fastify.post('/hijacked', async (_request, reply) => {
      ran('hijacked');
      reply.hijack();
      reply.raw.writeHead(200);
      reply.raw.end('written around Fastify');
    });
    fastify.post('/too-big', async (_request, reply) => {
      ran('too-big');
      return reply.type('text/plain').send(new Blob(['x'.repeat(50), 'y'.repeat(50)]).stream());
    });
    return { url: await listen(fastify), runs, fastify };
  }

  it('web streams, Response objects and typed arrays are stored and replayed byte for byte with their headers', async () => {
    const { url, runs } = await app();
    for (const [path, status, type, text] of [
      ['/web-stream', 200, 'text/plain', 'web-stream-1'],
      ['/response', 202, 'text/x-made', 'made-1'],
      ['/typed-array', 200, 'application/octet-stream', Buffer.from([1, 2, 3, 250]).toString()],
    ] as const) {
      const key = randomUUID();
      const first = await call(url + path, { key });
      const second = await call(url + path, { key });
      expect(first.status, path).toBe(status);
      expect(first.body.toString(), path).toBe(text);
      expect(second.status, path).toBe(status);
      expect(second.body.equals(first.body), path).toBe(true);
      expect(second.headers.get('content-type'), path).toBe(type);
      expect(second.headers.get('idempotent-replayed'), path).toBe('true');
      expect(runs.get(path.slice(1)), path).toBe(1);
    }
    const key = randomUUID();
    await call(`${url}/response`, { key });
    expect((await call(`${url}/response`, { key })).headers.get('x-made')).toBe('2');
  });

  it('a stream past maxBodyBytes is sent whole and not stored', async () => {
    const { url, runs } = await app();
    const key = randomUUID();
    for (const attempt of [await call(`${url}/too-big`, { key }), await call(`${url}/too-big`, { key })]) {
      expect(attempt.body.toString()).toBe('x'.repeat(50) + 'y'.repeat(50));
      expect(attempt.headers.get('idempotent-replayed')).toBeNull();
    }
    expect(runs.get('too-big')).toBe(2);
  });

  it('a response kept without a Content-Type is replayed without one', async () => {
    const { url } = await app();
    const key = randomUUID();
    const first = await call(`${url}/untyped`, { key });
    const replay = await call(`${url}/untyped`, { key });
    expect(first.headers.get('content-type')).toBeNull();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('content-type')).toBeNull();
    expect(replay.body.toString()).toBe('untyped-1');
  });

  it('a hijacked reply written around Fastify releases the key: the retry runs again', async () => {
    const { url, runs, fastify } = await app();
    const key = randomUUID();
    const released = new Promise<string>((resolve) =>
      fastify.idempotency.events.once('execute', (e) => resolve(e.outcome)),
    );
    expect((await call(`${url}/hijacked`, { key })).body.toString()).toBe('written around Fastify');
    expect(await released).toBe('failed');
    expect((await call(`${url}/hijacked`, { key })).status).toBe(200);
    expect(runs.get('hijacked')).toBe(2);
  });
});

describe('@idem/fastify cached', () => {
  it('caches the GET routes of its scope, one handler run per URL, marked with Cache-Status; a route opts out', async () => {
    const cache = createCache({ ttl: '1m' });
    const app = Fastify();
    let runs = 0;
    let optedOut = 0;
    let sibling = 0;
    await app.register(async (scope) => {
      await scope.register(cached, { cache });
      scope.get('/stats', async (_request, reply) => reply.header('x-trace', 'handler').send({ run: ++runs }));
      scope.get('/live', { config: { cached: false } }, async () => ({ run: ++optedOut }));
    });
    app.get('/sibling', async () => ({ run: ++sibling }));
    const url = await listen(app);
    const first = await call(`${url}/stats`, { method: 'GET' });
    const second = await call(`${url}/stats`, { method: 'GET' });
    expect(first.headers.get('cache-status')).toBe('idem; fwd=miss; stored');
    expect(second.headers.get('cache-status')).toBe('idem; hit');
    expect(second.body.equals(first.body)).toBe(true);
    expect(second.headers.get('x-trace')).toBe('handler');
    expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(runs).toBe(1);
    await call(`${url}/live`, { method: 'GET' });
    const live = await call(`${url}/live`, { method: 'GET' });
    expect(live.headers.get('cache-status')).toBeNull();
    await call(`${url}/sibling`, { method: 'GET' });
    expect((await call(`${url}/sibling`, { method: 'GET' })).headers.get('cache-status')).toBeNull();
    expect([optedOut, sibling]).toEqual([2, 2]);
    await cache.close();
  });
});
