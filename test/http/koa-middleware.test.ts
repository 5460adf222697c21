/**
 * The Koa middleware's own edges: how it fails when a user function throws, and what it captures
 * for bodies Koa serializes itself (a null-prototype object, a body JSON cannot encode).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { idempotent, type KoaContext } from '@idem/koa';
import { afterEach, describe, expect, it } from 'vitest';

const servers: Server[] = [];
afterEach(async () => {
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

async function listen(app: Koa): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const post = (url: string, key: string) =>
  fetch(url, { method: 'POST', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, body: '{}' });

describe('Koa idempotent()', () => {
  it('returns a rejected promise, not a synchronous throw, when a user function throws', async () => {
    const middleware = idempotent({
      scope: () => {
        throw new Error('scope failed');
      },
    });
    const ctx = {
      method: 'POST',
      headers: { 'idempotency-key': 'k1' },
      path: '/orders',
      querystring: '',
      request: { body: {} },
      req: { readableEnded: true, headers: {} },
    } as unknown as KoaContext;
    let result: Promise<void> | undefined;
    expect(() => {
      result = middleware(ctx, async () => {});
    }).not.toThrow();
    await expect(result).rejects.toThrow('scope failed');
  });

  it('stores and replays a null-prototype object body as JSON', async () => {
    let runs = 0;
    const app = new Koa();
    app.use(bodyParser());
    app.use(idempotent());
    app.use((ctx) => {
      runs++;
      const body = Object.create(null) as Record<string, unknown>;
      body.id = `ord_${runs}`;
      ctx.status = 201;
      ctx.body = body;
    });
    const url = await listen(app);
    const first = await post(url, 'null-proto');
    const again = await post(url, 'null-proto');
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ id: 'ord_1' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual({ id: 'ord_1' });
    expect(runs).toBe(1);
  });

  it('a body JSON cannot encode is a 500, and the key is released so a retry runs again', async () => {
    let runs = 0;
    const app = new Koa();
    app.silent = true;
    app.use(bodyParser());
    app.use(idempotent());
    app.use((ctx) => {
      runs++;
      ctx.body = { amount: BigInt(runs) };
    });
    const url = await listen(app);
    expect((await post(url, 'bigint')).status).toBe(500);
    expect((await post(url, 'bigint')).status).toBe(500);
    expect(runs).toBe(2);
  });
});
