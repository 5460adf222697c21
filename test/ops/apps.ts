/**
 * The small apps the ops suites drive over real HTTP: one Express and one Koa app with the same
 * routes, `idempotent()` mounted on each route so that the route pattern is known when idem
 * decides (the label a dashboard groups by). Counting happens in the handlers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import type { IdempotencyEvents, IdempotencyOptions } from '@idem/core';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';
import { deferred, type Deferred } from '../harness/wait.js';

/** What every app's handlers share: how often each ran, and a gate that holds `/slow`. */
export class Handlers {
  runs = 0;
  gate: Deferred<void> = deferred();
  #started: (() => void)[] = [];
  /** Resolves once a `/slow` handler is running. */
  started(): Promise<void> {
    return new Promise((resolve) => this.#started.push(resolve));
  }
  async slow(): Promise<void> {
    this.runs++;
    for (const resolve of this.#started.splice(0)) resolve();
    await this.gate.promise;
  }
}

/** The middleware's surface the suites attach observers to. */
export interface Observed {
  readonly events: IdempotencyEvents;
}

export interface OpsApp {
  readonly name: string;
  readonly url: string;
  readonly handlers: Handlers;
  /** The `idempotent()` instance on the routes. */
  readonly middleware: Observed;
  /** A request to `path` with an optional key and JSON body; resolves with status, headers and the parsed body. */
  post(
    path: string,
    options?: { key?: string; body?: unknown },
  ): Promise<{ status: number; headers: Headers; body: unknown }>;
  close(): Promise<void>;
}

export interface Framework {
  readonly name: string;
  /**
   * Starts an app whose routes (`POST /orders/:id` answering 201, `POST /slow` held by the gate,
   * `POST /throw` whose handler throws)
   * are protected by one `idempotent(options)`; `before` runs first on every request (tracing).
   */
  start(options?: IdempotencyOptions, before?: Before): Promise<OpsApp>;
}

/** A hook in front of everything, given the raw request and a `next` to call within its context. */
export type Before = (req: IncomingMessage, res: ServerResponse, next: () => Promise<unknown>) => Promise<unknown>;

async function listen(name: string, server: Server, handlers: Handlers, middleware: Observed): Promise<OpsApp> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    name,
    url,
    handlers,
    middleware,
    async post(path, { key, body = { amount: 1 } } = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (key !== undefined) headers['idempotency-key'] = key;
      const response = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      const text = await response.text();
      const json = response.headers.get('content-type')?.includes('json') ?? false;
      return { status: response.status, headers: response.headers, body: json ? (JSON.parse(text) as unknown) : text };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export const expressFramework: Framework = {
  name: 'Express',
  async start(options = {}, before) {
    const handlers = new Handlers();
    const mw = expressIdempotent(options as never);
    const app = express();
    app.use(express.json());
    app.post('/orders/:id', mw, (req, res) => {
      handlers.runs++;
      res.status(201).json({ id: req.params.id, run: handlers.runs });
    });
    app.post('/slow', mw, async (_req, res) => {
      await handlers.slow();
      res.status(200).json({ run: handlers.runs });
    });
    app.post('/throw', mw, () => {
      handlers.runs++;
      throw new Error('handler failed');
    });
    const server = createServer((req, res) => {
      if (before === undefined) return void app(req, res);
      void before(
        req,
        res,
        () =>
          new Promise((resolve) => {
            res.once('close', resolve);
            app(req, res);
          }),
      );
    });
    return listen(this.name, server, handlers, mw);
  },
};

export const koaFramework: Framework = {
  name: 'Koa',
  async start(options = {}, before) {
    const handlers = new Handlers();
    const mw = koaIdempotent(options as never);
    const app = new Koa();
    app.silent = true; // the thrown handler error is the test's, not news
    const router = new Router();
    router.post('/orders/:id', mw, (ctx) => {
      handlers.runs++;
      ctx.status = 201;
      ctx.body = { id: ctx.params.id, run: handlers.runs };
    });
    router.post('/slow', mw, async (ctx) => {
      await handlers.slow();
      ctx.body = { run: handlers.runs };
    });
    router.post('/throw', mw, () => {
      handlers.runs++;
      throw new Error('handler failed');
    });
    app.use(bodyParser());
    app.use(router.routes());
    const callback = app.callback();
    const server = createServer((req, res) => {
      if (before === undefined) return void callback(req, res);
      void before(req, res, () => callback(req, res));
    });
    return listen(this.name, server, handlers, mw);
  },
};

export const frameworks = [expressFramework, koaFramework];
