/**
 * Hostile input: oversized and malformed keys and headers, bodies the parser refuses, header
 * injection attempts, floods of distinct keys, and secrets that must never reach the store.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import express from 'express';
import { Redis } from 'ioredis';
import Koa from 'koa';
import { memoryStore } from '@idem/core';
import { redisStore } from '@idem/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import type { AdapterUnderTest, ScenarioApp } from '../apps/scenario.js';
import { RedisServer } from '../harness/redis.mjs';
import { post, rawPost } from './scenarios.js';

/** Sends bytes on a raw socket and returns the raw response, for what no HTTP client will send. */
function rawRequest(app: ScenarioApp, head: string, body = '{}'): Promise<string> {
  const { port } = new URL(app.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.write(
      `${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      'latin1',
    );
  });
}

const adapters: AdapterUnderTest[] = [expressAdapter('Express 5', express as never), koaAdapter('Koa 3', Koa)];

describe.each(adapters)('hostile input: $name', (adapter) => {
  const apps: ScenarioApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const start = async (idempotency = {}) => {
    const app = await adapter.start({ idempotency });
    apps.push(app);
    return app;
  };

  it('a 10 000-character key is 400 and runs nothing; a header block over the server limit is refused before any handler', async () => {
    const app = await start();
    const long = await rawPost(app, '/echo', [['idempotency-key', 'k'.repeat(10_000)]]);
    expect(long.status).toBe(400);
    expect(JSON.parse(long.body).code).toBe('key_invalid');
    const huge = await rawRequest(
      app,
      `POST /echo HTTP/1.1\r\nHost: x\r\nIdempotency-Key: ${'k'.repeat(20_000)}\r\nX-Pad: ${'p'.repeat(20_000)}\r\n`,
    );
    expect(huge).toMatch(/^HTTP\/1\.1 431/);
    expect(app.probe.count('echo')).toBe(0);
  });

  it('a CR/LF smuggled into a key never becomes a response header', async () => {
    const app = await start();
    // A bare LF inside a header value is refused by Node's parser; an obs-fold continuation is
    // either refused or folded into the value. Either way nothing may be injected or executed.
    const folded = await rawRequest(
      app,
      'POST /echo HTTP/1.1\r\nHost: x\r\nIdempotency-Key: abc\r\n X-Injected: yes\r\n',
    );
    const lf = await rawRequest(app, 'POST /echo HTTP/1.1\r\nHost: x\r\nIdempotency-Key: abc\nX-Injected: yes\r\n');
    for (const response of [folded, lf]) {
      const head = response.split('\r\n\r\n')[0] as string;
      expect(head).not.toMatch(/^x-injected:/im);
      expect(head).toMatch(/^HTTP\/1\.1 400/);
    }
    expect(app.probe.count('echo')).toBe(0);
  });

  it('invalid JSON is refused by the parser, runs nothing, and leaves the key free', async () => {
    const app = await start();
    const k = randomUUID();
    const res = await fetch(`${app.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': k },
      body: '{"a":',
    });
    expect(res.status).toBe(400);
    expect(app.probe.count('echo')).toBe(0);
    const retry = await post(app, '/echo', { key: k, body: { a: 1 } });
    expect(retry.status).toBe(200);
    expect(app.probe.count('echo')).toBe(1);
  });

  it('a body over the parser limit is refused, runs nothing, and leaves the key free', async () => {
    const app = await start();
    const k = randomUUID();
    // express.json() and @koa/bodyparser both refuse JSON over 1 MB by default.
    const big = JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) });
    const res = await fetch(`${app.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': k },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(app.probe.count('echo')).toBe(0);
    expect((await post(app, '/echo', { key: k })).status).toBe(200);
  });

  it('a flood of distinct keys keeps the memory store within maxEntries and the heap flat', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = memoryStore({ maxEntries: 200 });
    const app = await start({ store });
    const payload = { blob: 'x'.repeat(16 * 1024) };
    const flood = async (count: number) => {
      for (let i = 0; i < count; i += 50) {
        await Promise.all(Array.from({ length: 50 }, () => post(app, '/echo', { key: randomUUID(), body: payload })));
      }
    };
    await flood(1_000); // warm up: JIT, sockets, the LRU filled to its bound
    gc();
    const before = process.memoryUsage().heapUsed;
    await flood(4_000); // unbounded, these responses alone would keep ~64 MB
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(store.size).toBe(200);
    expect(grown).toBeLessThan(24 * 1024 * 1024);
  });
});

describe('secrets never reach Redis', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.port, '127.0.0.1');
  });
  afterAll(async () => {
    await client.quit();
    await server.stop();
  });

  it.each(adapters)('$name: neither the Authorization header nor Set-Cookie is stored', async (adapter) => {
    const app = await adapter.start({
      idempotency: { store: redisStore({ client, prefix: `secrets-${randomUUID()}:` }) },
    });
    try {
      const token = `Bearer sk_live_${randomUUID()}`;
      const k = randomUUID();
      const first = await post(app, '/orders', { key: k, headers: { authorization: token }, body: { amount: 1 } });
      expect(first.headers.get('set-cookie')).toMatch(/session=s1/);
      expect(
        (await post(app, '/orders', { key: k, headers: { authorization: token }, body: { amount: 1 } })).headers.get(
          'idempotent-replayed',
        ),
      ).toBe('true');
      // Read every byte the store wrote.
      const keys: string[] = [];
      for await (const batch of client.scanStream({ match: '*', count: 100 })) keys.push(...(batch as string[]));
      expect(keys.length).toBeGreaterThan(0);
      let everything = '';
      for (const key of keys) {
        const type = await client.type(key);
        if (type === 'hash')
          everything += JSON.stringify(
            await client.hgetallBuffer(key).then((h) => Object.entries(h).map(([f, v]) => [f, v.toString('latin1')])),
          );
        else if (type === 'string') everything += (await client.getBuffer(key))?.toString('latin1') ?? '';
        else everything += `${type}:${key}`;
      }
      expect(everything).toContain('ord_1'); // the response is there…
      expect(everything).not.toContain(token.slice('Bearer '.length)); // …the credentials are not
      expect(everything.toLowerCase()).not.toContain('authorization');
      expect(everything).not.toContain('session=s1');
    } finally {
      await app.close();
    }
  });
});
