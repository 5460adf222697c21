/**
 * The apps of the admin tests: one small API (orders under the default scope, orders scoped by
 * tenant, a binary answer, a handler held by a gate) protected by idempotent(), and the admin API
 * mounted beside it at /admin/idem, on Express and on Koa. Handlers count their executions.
 */
import { createServer } from 'node:http';
import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import type { IdempotencyStore } from '@idem/core';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';
import { adminRouter } from '@idem/admin/express';
import { adminMiddleware } from '@idem/admin/koa';
import type { AdminCache, AdminTarget } from '@idem/admin';
import type { Logger } from '@idem/core';
import { Probe, koaServer, serve, type ScenarioApp } from '../apps/scenario.js';

export const ADMIN = '/admin/idem';
export const TOKEN = 'admin-secret-token';
export const TTL_MS = 3_600_000;
export const BINARY = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);

/** What every admin test app is built from. */
export interface AdminAppOptions {
  store: IdempotencyStore;
  cache?: AdminCache;
  /** Default: `testAuthorize`. */
  authorize?: (native: unknown, target: AdminTarget, headers: Record<string, unknown>) => unknown;
  logger?: Logger;
  /** Express: mount express.json() before the admin API (the body arrives parsed). */
  parserFirst?: boolean;
}

export interface AdminApp extends ScenarioApp {
  /** A fetch of `path` on the app. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** A fetch of the admin API at `path` (below /admin/idem) with the admin token, unless `token` says otherwise. */
  admin(path: string, init?: RequestInit & { token?: string | null; tenant?: string }): Promise<Response>;
}

/**
 * The test's authorize: a bearer token, and an `x-admin-tenant` header that limits a caller to
 * record actions on its own scope, as a tenant-limited check would.
 */
export function testAuthorize(_native: unknown, target: AdminTarget, headers: Record<string, unknown>): boolean {
  if (headers.authorization !== `Bearer ${TOKEN}`) return false;
  const tenant = headers['x-admin-tenant'];
  if (tenant === undefined) return true;
  return (target.action === 'record.read' || target.action === 'record.delete') && target.scope === tenant;
}

function client(app: ScenarioApp): AdminApp {
  return {
    ...app,
    fetch: (path, init) => fetch(`${app.url}${path}`, init),
    admin: (path, init = {}) => {
      const { token = TOKEN, tenant, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set('authorization', `Bearer ${token}`);
      if (tenant !== undefined) headers.set('x-admin-tenant', tenant);
      return fetch(`${app.url}${ADMIN}${path}`, { ...rest, headers });
    },
  };
}

const idemOptions = (store: IdempotencyStore) => ({ store, ttl: TTL_MS, lockTtl: '30s' });
const tenantOf = (headers: Record<string, unknown>): unknown => headers['x-tenant'];

/** The app on Express 5. */
export async function expressApp(options: AdminAppOptions): Promise<AdminApp> {
  const probe = new Probe();
  const app = express();
  const authorize = options.authorize ?? testAuthorize;
  if (options.parserFirst) app.use(express.json());
  app.use(
    ADMIN,
    adminRouter({
      store: options.store,
      ...(options.cache ? { cache: options.cache } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      authorize: (req, target) => authorize(req, target, req.headers) as boolean,
    }),
  );
  if (!options.parserFirst) app.use(express.json());
  const plain = expressIdempotent(idemOptions(options.store));
  const tenant = expressIdempotent({ ...idemOptions(options.store), scope: (req) => tenantOf(req.headers) });
  app.post('/orders', plain as never, (req, res) => {
    const n = probe.ran('orders');
    res.status(201).json({ id: `ord_${n}`, n, body: req.body as unknown });
  });
  app.post('/tenant/orders', tenant as never, (_req, res) => {
    const n = probe.ran('tenant');
    res.status(201).json({ n });
  });
  app.post('/binary', plain as never, (_req, res) => {
    probe.ran('binary');
    res.type('application/octet-stream').end(BINARY);
  });
  app.post('/slow', plain as never, async (_req, res) => {
    const n = probe.ran('slow');
    if (n === 1) await probe.gate.wait();
    res.status(201).json({ n });
  });
  const { events } = plain;
  return client(await serve(createServer(app), probe, events));
}

/** The app on Koa 3 with @koa/router and @koa/bodyparser (the body arrives parsed). */
export async function koaApp(options: AdminAppOptions): Promise<AdminApp> {
  const probe = new Probe();
  const app = new Koa();
  app.silent = true;
  const authorize = options.authorize ?? testAuthorize;
  app.use(bodyParser());
  app.use(
    adminMiddleware({
      prefix: ADMIN,
      store: options.store,
      ...(options.cache ? { cache: options.cache } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      authorize: (ctx, target) => authorize(ctx, target, ctx.headers) as boolean,
    }),
  );
  const plain = koaIdempotent(idemOptions(options.store));
  const tenant = koaIdempotent({ ...idemOptions(options.store), scope: (ctx) => tenantOf(ctx.headers) });
  const router = new Router();
  router.post('/orders', plain, (ctx) => {
    const n = probe.ran('orders');
    ctx.status = 201;
    ctx.body = { id: `ord_${n}`, n, body: ctx.request.body };
  });
  router.post('/tenant/orders', tenant, (ctx) => {
    const n = probe.ran('tenant');
    ctx.status = 201;
    ctx.body = { n };
  });
  router.post('/binary', plain, (ctx) => {
    probe.ran('binary');
    ctx.type = 'application/octet-stream';
    ctx.body = BINARY;
  });
  router.post('/slow', plain, async (ctx) => {
    const n = probe.ran('slow');
    if (n === 1) await probe.gate.wait();
    ctx.status = 201;
    ctx.body = { n };
  });
  app.use(router.routes());
  return client(await serve(koaServer(app), probe, plain.events));
}

export const FRAMEWORKS = [
  { name: 'Express', start: expressApp },
  { name: 'Koa', start: koaApp },
] as const;

/** A POST of JSON with an Idempotency-Key. */
export function post(
  app: AdminApp,
  path: string,
  key: string,
  body: unknown = {},
  headers: Record<string, string> = {},
) {
  return app.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, ...headers },
    body: JSON.stringify(body),
  });
}

/** The query string of a record address. */
export function address(key: string, scope: string, extra = ''): string {
  return `?key=${encodeURIComponent(key)}&scope=${encodeURIComponent(scope)}${extra}`;
}
