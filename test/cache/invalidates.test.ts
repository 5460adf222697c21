/**
 * `invalidates()` of `@idem/cache/express` and `@idem/cache/koa`: a write route's 2xx deletes the
 * tags and keys it names before its response ends, so a read right after the write gets the new
 * value — on the instance that wrote and, through the bus, on another one sharing the Redis; a
 * failed write and a replayed one (`idempotent()` before or after it) invalidate nothing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import express from 'express';
import { Redis } from 'ioredis';
import Koa from 'koa';
import { CacheConfigError, createCache, type Cache } from '@idem/cache';
import { invalidates as expressInvalidates } from '@idem/cache/express';
import { invalidates as koaInvalidates } from '@idem/cache/koa';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { busConnected, nextEvent } from './helpers.js';

let redisServer: RedisServer;
const closers: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  redisServer = await RedisServer.start();
});
afterAll(async () => {
  await redisServer?.stop();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The "database" both apps of a test read and write, and how often the cache loaded from it. */
class Users {
  readonly names = new Map<string, string>();
  loads = 0;
  load(id: string): string {
    this.loads++;
    return this.names.get(id) ?? 'nobody';
  }
}

type Placement = 'alone' | 'before idempotent' | 'after idempotent';

interface Framework {
  name: string;
  /** GET /users/:id reads through the cache; POST /users/:id writes the name and invalidates `user:<id>`. */
  start(cache: Cache, users: Users, placement: Placement): Promise<string>;
}

async function listen(server: Server): Promise<string> {
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const expressFramework: Framework = {
  name: 'Express',
  async start(cache, users, placement) {
    const app = express();
    app.use(express.json());
    const invalidate = expressInvalidates({ cache, tags: (req) => [`user:${String(req.params.id)}`] });
    const chain =
      placement === 'alone'
        ? [invalidate]
        : placement === 'before idempotent'
          ? [invalidate, expressIdempotent()]
          : [expressIdempotent(), invalidate];
    app.get('/users/:id', async (req, res) => {
      const id = req.params.id;
      res.json({ name: await cache.getOrSet(`user:${id}`, () => users.load(id), { tags: [`user:${id}`] }) });
    });
    app.post('/users/:id', ...chain, (req, res) => {
      const name = (req.body as { name?: string }).name;
      if (name === undefined) return void res.status(400).json({ error: 'name missing' });
      users.names.set(req.params.id as string, name);
      res.json({ ok: true });
    });
    return listen(createServer(app));
  },
};

const koaFramework: Framework = {
  name: 'Koa',
  async start(cache, users, placement) {
    const app = new Koa();
    const router = new Router();
    app.use(bodyParser());
    const invalidate = koaInvalidates({
      cache,
      tags: (ctx) => [`user:${String((ctx as unknown as { params: { id: string } }).params.id)}`],
    });
    const idem = koaIdempotent();
    const chain =
      placement === 'alone'
        ? [invalidate]
        : placement === 'before idempotent'
          ? [invalidate, idem]
          : [idem, invalidate];
    router.get('/users/:id', async (ctx) => {
      const id = ctx.params.id as string;
      ctx.body = { name: await cache.getOrSet(`user:${id}`, () => users.load(id), { tags: [`user:${id}`] }) };
    });
    router.post('/users/:id', ...(chain as never[]), (ctx: Koa.Context) => {
      const name = (ctx.request.body as { name?: string } | undefined)?.name;
      if (name === undefined) {
        ctx.status = 400;
        ctx.body = { error: 'name missing' };
        return;
      }
      users.names.set(ctx.params.id as string, name);
      ctx.body = { ok: true };
    });
    app.use(router.routes());
    const handle = app.callback();
    return listen(createServer((req, res) => void handle(req, res)));
  },
};

function open(withRedis = false): Cache {
  const redis = withRedis ? new Redis(redisServer.url) : undefined;
  const cache = createCache({ ...(redis ? { redis } : {}), ttl: '1h' });
  closers.push(async () => {
    await cache.close();
    redis?.disconnect();
  });
  return cache;
}

async function read(url: string, id: string): Promise<string> {
  const res = await fetch(`${url}/users/${id}`);
  return ((await res.json()) as { name: string }).name;
}

async function write(url: string, id: string, body: unknown, key?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== undefined) headers['idempotency-key'] = key;
  const res = await fetch(`${url}/users/${id}`, { method: 'POST', headers, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res;
}

describe.each([expressFramework, koaFramework])('invalidates() on $name', (framework) => {
  it('deletes the named tag before a 2xx ends: a read right after the write gets the new value', async () => {
    const users = new Users();
    const url = await framework.start(open(), users, 'alone');
    users.names.set('1', 'Ada');
    expect(await read(url, '1')).toBe('Ada');
    expect(await read(url, '1')).toBe('Ada');
    expect(users.loads).toBe(1);

    expect((await write(url, '1', { name: 'Grace' })).status).toBe(200);
    expect(await read(url, '1')).toBe('Grace');
    expect(users.loads).toBe(2);
  });

  it('invalidates nothing when the write fails', async () => {
    const users = new Users();
    const url = await framework.start(open(), users, 'alone');
    users.names.set('2', 'Ada');
    await read(url, '2');
    // The database changes behind the cache's back; a failed write must not drop the cached value.
    users.names.set('2', 'changed elsewhere');
    expect((await write(url, '2', {})).status).toBe(400);
    expect(await read(url, '2')).toBe('Ada');
    expect(users.loads).toBe(1);
  });

  for (const placement of ['before idempotent', 'after idempotent'] as const) {
    it(`mounted ${placement}: the first run invalidates, its replay does not`, async () => {
      const users = new Users();
      const url = await framework.start(open(), users, placement);
      const key = randomUUID();
      users.names.set('3', 'Ada');
      await read(url, '3');

      expect((await write(url, '3', { name: 'Grace' }, key)).status).toBe(200);
      expect(await read(url, '3')).toBe('Grace');
      expect(users.loads).toBe(2);

      const replay = await write(url, '3', { name: 'Grace' }, key);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(await read(url, '3')).toBe('Grace');
      expect(users.loads).toBe(2);
    });
  }

  it('reaches another instance sharing the Redis: its next read loads the new value', async () => {
    const users = new Users();
    const [a, b] = [open(true), open(true)];
    await Promise.all([busConnected(a), busConnected(b)]);
    const [urlA, urlB] = [await framework.start(a, users, 'alone'), await framework.start(b, users, 'alone')];
    // Its own id: the Redis (and its keys) is shared by every test of the file.
    const id = randomUUID();
    users.names.set(id, 'Ada');
    expect(await read(urlB, id)).toBe('Ada');

    const dropped = nextEvent(b, 'invalidate', (e) => e.origin === 'remote' && e.kind === 'tags');
    expect((await write(urlA, id, { name: 'Grace' })).status).toBe(200);
    await dropped;
    expect(await read(urlB, id)).toBe('Grace');
  });
});

describe('invalidates() options', () => {
  it('refuses an invalidation that names nothing, bad names, and unknown options', () => {
    const cache = open();
    expect(() => expressInvalidates({ cache })).toThrow(CacheConfigError);
    expect(() => expressInvalidates({ cache, tags: 'user' as never })).toThrow(/tags/);
    expect(() => koaInvalidates({ cache, keys: [''] })).toThrow(/keys/);
    expect(() => expressInvalidates({ cache, tags: ['t'], tag: 'x' } as never)).toThrow(/tag/);
    expect(() => expressInvalidates({ cache: {} as never, tags: ['t'] })).toThrow(/cache/);
  });
});
