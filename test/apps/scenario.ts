/**
 * The adapter-neutral contract of the HTTP scenario suite: every adapter under test builds the same
 * small app (same routes, same behaviour) with its own framework, and the suite drives it over
 * real HTTP. Counting happens in the handlers, so a test sees exactly how often each one ran.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IdempotencyEvents, IdempotencyOptions } from '@idem/core';

/** A handler can be held until the test lets it go, to keep a request in flight on purpose. */
export class Gate {
  #open!: () => void;
  #promise = this.#reset();
  #reset(): Promise<void> {
    return new Promise<void>((resolve) => (this.#open = resolve));
  }
  /** Resolves when the gate opens. */
  wait(): Promise<void> {
    return this.#promise;
  }
  open(): void {
    this.#open();
  }
  close(): void {
    this.#promise = this.#reset();
  }
}

/** Counters shared by the handlers of one app. */
export class Probe {
  readonly calls = new Map<string, number>();
  readonly gate = new Gate();
  #arrivals = 0;
  #arrivalWaiters: { count: number; resolve: () => void }[] = [];
  #runWaiters: { route: string; count: number; resolve: () => void }[] = [];
  /** Handlers call this when they start executing. */
  ran(route: string): number {
    const n = (this.calls.get(route) ?? 0) + 1;
    this.calls.set(route, n);
    this.#runWaiters = this.#runWaiters.filter((w) =>
      w.route === route && n >= w.count ? (w.resolve(), false) : true,
    );
    return n;
  }
  /** Resolves once the handler of `route` has started `count` times. */
  running(route: string, count = 1): Promise<void> {
    if (this.count(route) >= count) return Promise.resolve();
    return new Promise((resolve) => this.#runWaiters.push({ route, count, resolve }));
  }
  count(route: string): number {
    return this.calls.get(route) ?? 0;
  }
  /** A middleware in front of idempotency calls this for every request. */
  arrived(): void {
    this.#arrivals++;
    this.#arrivalWaiters = this.#arrivalWaiters.filter((w) =>
      this.#arrivals >= w.count ? (w.resolve(), false) : true,
    );
  }
  /** Resolves once `count` requests have reached the server. */
  arrivals(count: number): Promise<void> {
    if (this.#arrivals >= count) return Promise.resolve();
    return new Promise((resolve) => this.#arrivalWaiters.push({ count, resolve }));
  }
}

/**
 * The routes every scenario app has (all POST):
 * - /orders        201, JSON `{ id, n, body }`, Location, Set-Cookie, X-Order-Trace, ETag-less
 * - /empty         201 with Location and no body
 * - /buffer        200 application/octet-stream, the 256 byte values 0..255
 * - /chunked       200 text/plain written in three chunks (Koa: a stream)
 * - /fail          500 JSON
 * - /throw         the handler throws; no error middleware of the app's own
 * - /slow          waits on `probe.gate`, then 200 JSON
 * - /flaky         throws on its first run, 200 after
 * - /echo          200 JSON of the parsed body
 * - /status/:code  answers with that status and a small JSON body
 * - /big           200 text/plain of `size` bytes (query `size`)
 * - /respond       answers `{ status, headers, base64 }` from the JSON body: status, headers, body bytes
 * - /execution     200 JSON `{ key }`: the key of `executionOf(req)` (Koa: `ctx`), null outside an execution
 *
 * A request with an Origin header gets Access-Control-Allow-Origin (CORS in play).
 */
export interface ScenarioAppOptions {
  idempotency: IdempotencyOptions<never>;
  /** Mount idempotency before the body parser (the misconfiguration the engine must catch). */
  parserAfter?: boolean;
  /**
   * Mount a request-timeout middleware before idempotency: a request with an `x-timeout-ms` header
   * is answered 503 `{ "error": "request_timeout" }` by it once that many ms pass without an answer.
   */
  requestTimeout?: boolean;
}

/** The body the request-timeout middleware answers with. */
export const TIMEOUT_BODY = { error: 'request_timeout' };

export interface ScenarioApp {
  server: Server;
  url: string;
  probe: Probe;
  /** The events of the idempotency middleware under test. */
  events: IdempotencyEvents;
  close(): Promise<void>;
}

export interface AdapterUnderTest {
  name: string;
  start(options: ScenarioAppOptions): Promise<ScenarioApp>;
}

/**
 * An HTTP server for a Koa app. Koa's callback settles its own promise (errors go to its
 * onerror), so the request listener does not wait on it.
 */
export function koaServer(app: { callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void> }): Server {
  const handle = app.callback();
  return createServer((req, res) => void handle(req, res));
}

/** Listens on a free loopback port and wraps the server as a ScenarioApp. */
export async function serve(server: Server, probe: Probe, events: IdempotencyEvents): Promise<ScenarioApp> {
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    probe,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
