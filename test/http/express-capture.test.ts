/**
 * Express response capture edge cases: heads written with writeHead in each of Node's forms,
 * writes after end while the response waits to be stored, and cached() with a body too large to
 * keep. What is checked is what the client receives, first and on replay.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import express from 'express';
import express4 from 'express4';
import { createCache } from '@idem/cache';
import { cached, idempotent } from '@idem/express';
import { afterEach, describe, expect, it } from 'vitest';

const servers: Server[] = [];
afterEach(async () => {
  // closeAllConnections: a response left hanging fails its test, not the whole file.
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise((resolve) => {
          s.close(resolve);
          s.closeAllConnections();
        }),
    ),
  );
});

async function listen(app: express.Express): Promise<string> {
  const server = createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const post = (url: string, key: string) =>
  fetch(url, { method: 'POST', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, body: '{}' });

describe.each([
  ['Express 5', express],
  ['Express 4', express4 as unknown as typeof express],
])('%s response capture', (_name, framework) => {
  it.each([
    ['an object', { 'content-type': 'text/plain', 'x-multi': ['1', '2'] }],
    ['a flat array with a repeated name', ['content-type', 'text/plain', 'x-multi', '1', 'x-multi', '2']],
    [
      'an array of pairs',
      [
        ['content-type', 'text/plain'],
        ['x-multi', '1'],
        ['x-multi', '2'],
      ],
    ],
  ])('keeps every header given to writeHead as %s, first time and on replay', async (_form, headers) => {
    const app = framework();
    app.use(framework.json());
    app.use(idempotent());
    let runs = 0;
    app.post('/head', (_req, res) => {
      runs++;
      res.setHeader('x-earlier', 'kept');
      res.writeHead(201, headers as never).end('made');
    });
    const url = `${await listen(app)}/head`;
    const first = await post(url, 'h');
    const replay = await post(url, 'h');
    expect(runs).toBe(1);
    for (const response of [first, replay]) {
      expect(response.status).toBe(201);
      expect(await response.text()).toBe('made');
      expect(response.headers.get('content-type')).toBe('text/plain');
      expect(response.headers.get('x-multi')).toBe('1, 2');
      expect(response.headers.get('x-earlier')).toBe('kept');
    }
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('refuses a write after end while the response waits to be stored, and still answers', async () => {
    const app = framework();
    app.use(framework.json());
    app.use(idempotent({ maxBodyBytes: 8 }));
    const refused = new Promise<unknown>((resolve) => {
      app.post('/late', (_req, res) => {
        res.status(201).end('done');
        // Past maxBodyBytes if it were kept: it must neither stream out nor hold the answer back.
        res.write('0123456789', (error) => resolve(error));
      });
    });
    const url = `${await listen(app)}/late`;
    const first = await post(url, 'late');
    expect(first.status).toBe(201);
    expect(await first.text()).toBe('done');
    expect(await refused).toMatchObject({ code: 'ERR_STREAM_WRITE_AFTER_END' });
    const replay = await post(url, 'late');
    expect(await replay.text()).toBe('done');
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('cached() answers a body too large to keep, sent in one piece, and runs the handler again next time', async () => {
    const cache = createCache({ ttl: '1m' });
    const app = framework();
    let runs = 0;
    app.get('/big', cached({ cache, maxBodyBytes: 16 }), (_req, res) => {
      runs++;
      res.type('text/plain').send('x'.repeat(64));
    });
    const url = `${await listen(app)}/big`;
    try {
      for (let i = 1; i <= 2; i++) {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(await response.text()).toBe('x'.repeat(64));
        expect(runs).toBe(i);
      }
    } finally {
      await cache.close();
    }
  });
});
