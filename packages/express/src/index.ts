import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPLAYED_HEADER, createIdempotency, exposeReplayedHeader, hasRequestBody, headerValues, splitUrl, type Decision, type Execution, type IdempotencyEvents, type IdempotencyOptions, type NeutralRequest, type OutgoingResponse } from '@idem/core/adapter';
import { holdResponse, type HeldResponse } from './capture.js';

/**
 * An Express request as idem sees it (Express 4 and 5 both fit). The middleware itself is typed
 * with the bare `IncomingMessage` so that it never narrows Express's inference of route params,
 * query or body for the handlers mounted after it.
 */
export interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  baseUrl?: string;
  body?: unknown;
  query?: unknown;
  params?: unknown;
  route?: { path?: unknown };
}

/** What `key`, `scope` and `fingerprint` functions receive by default: the Express request, loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyExpressRequest = Record<string, any> & { headers: IncomingMessage['headers']; method?: string; url?: string };

/** Express middleware with the engine's typed events attached. */
export interface IdempotentMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
  /** Typed events: `replay`, `execute`, `conflict`, `mismatch`, `storeError`, `leaseLost`. */
  readonly events: IdempotencyEvents;
}

/** Options of the Express `idempotent()`; functions receive the Express request. */
export type ExpressIdempotencyOptions<Req = AnyExpressRequest> = IdempotencyOptions<Req>;

function isParsed(req: ExpressRequest): boolean {
  // A parser that read the body consumed the stream (body-parser 2 checks exactly this) or left
  // `req.body` behind; neither is true when no parser ran.
  return !hasRequestBody(req.headers) || req.readableEnded || req.body !== undefined;
}

/**
 * The Express request as the engine sees it. A class, not an object literal with getters: V8 builds
 * the latter on a slow path, and this runs for every request (bench/FINDINGS.md, A). Body, query,
 * params and the route are read only when the engine needs them (Express 5 parses req.query on read).
 */
class ExpressRequestView implements NeutralRequest<ExpressRequest> {
  readonly method: string;
  readonly headers: ExpressRequest['headers'];
  // Split on first use: a request without a key never needs its path.
  private url: { path: string; search: string } | undefined = undefined;

  constructor(readonly native: ExpressRequest) {
    this.method = (native.method ?? 'GET').toUpperCase();
    this.headers = native.headers;
  }

  get path(): string {
    return this.splitUrl().path;
  }

  get search(): string {
    return this.splitUrl().search;
  }

  private splitUrl(): { path: string; search: string } {
    return (this.url ??= splitUrl(this.native.originalUrl ?? this.native.url ?? '/'));
  }

  get route(): string | undefined {
    const routePath = this.native.route?.path;
    return typeof routePath === 'string' ? `${this.native.baseUrl ?? ''}${routePath}` : undefined;
  }

  headerValues(name: string): string[] {
    return headerValues(this.headers, name, this.native);
  }

  get body(): unknown {
    return this.native.body;
  }

  get bodyParsed(): boolean {
    return isParsed(this.native);
  }

  get query(): unknown {
    return this.native.query;
  }

  get params(): unknown {
    return this.native.params;
  }
}

function send(res: ServerResponse, response: OutgoingResponse): void {
  res.statusCode = response.status;
  const { headers } = response;
  for (const name in headers) res.setHeader(name, headers[name] as string | string[]);
  if (response.replayed) {
    res.setHeader(REPLAYED_HEADER, 'true');
    const expose = exposeReplayedHeader(res.getHeader('access-control-allow-origin'), res.getHeader('access-control-expose-headers'));
    if (expose !== undefined) res.setHeader('access-control-expose-headers', expose);
  }
  res.end(response.body);
}

/**
 * Makes Express routes safe to retry: the handler runs once per idempotency key and every
 * duplicate gets the same response, replayed byte for byte with `Idempotent-Replayed: true`.
 * Mount it after the body parser. Options are validated here; a bad one throws.
 *
 * @example
 * app.use(express.json());
 * app.use(idempotent({ required: true }));
 * app.post('/orders', (req, res) => res.status(201).json(createOrder(req.body)));
 */
export function idempotent<Req = AnyExpressRequest>(options: ExpressIdempotencyOptions<Req> = {}): IdempotentMiddleware {
  const engine = createIdempotency<Req>(options);
  const { maxBodyBytes } = engine.options;

  function act(res: ServerResponse, next: (error?: unknown) => void, decision: Decision): void {
    if (decision.action === 'pass') return next();
    if (decision.action === 'respond') return send(res, decision.response);
    holdResponse(res, maxBodyBytes, storeThenFlush, decision.execution);
    next();
  }

  // One function for every held response; the execution rides along, no closure per request.
  function storeThenFlush(held: HeldResponse, execution: Execution): void {
    // finish() never rejects: it stores the response or releases the key, then the client gets it.
    void execution.finish(held).then(() => held.flush());
  }

  function idempotentMiddleware(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void {
    let decision: Decision | Promise<Decision>;
    try {
      decision = engine.handle(new ExpressRequestView(req as ExpressRequest) as unknown as NeutralRequest<Req>);
    } catch (error) {
      return next(error);
    }
    // Requests that need no store call (no key, a bad key) go on without a detour through a promise.
    if (decision instanceof Promise) decision.then((d) => act(res, next, d), next);
    else act(res, next, decision);
  }

  return Object.assign(idempotentMiddleware, { events: engine.events });
}

export { cached } from './cached.js';
export type { CachedOptions, ResponseCache } from './cached.js';
export type { IdempotencyOptions, IdempotencyStore } from '@idem/core/adapter';
export { memoryStore } from '@idem/core/adapter';
