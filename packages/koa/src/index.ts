import { attachExecution, createIdempotency, hasRequestBody, headerValues } from '@idem/core/adapter';
import type { Decision, IdempotencyEvents, IdempotencyOptions, NeutralRequest } from '@idem/core/adapter';
import { captureBody } from './capture.js';
import { answered, clearHeaders, sendOutgoing } from './send.js';
import type { KoaContext } from './types.js';

export type { KoaContext } from './types.js';

/** Koa middleware with the engine's typed events attached. */
export interface IdempotentMiddleware {
  (ctx: KoaContext, next: () => Promise<unknown>): Promise<void>;
  /** Typed events: `replay`, `execute`, `conflict`, `mismatch`, `storeError`, `leaseLost`. */
  readonly events: IdempotencyEvents;
}

/** What `key`, `scope` and `fingerprint` functions receive by default: the Koa context, loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKoaContext = Record<string, any> & Pick<KoaContext, 'method' | 'path' | 'headers' | 'querystring'>;

/** Options of the Koa `idempotent()`; functions receive the Koa context. */
export type KoaIdempotencyOptions<Ctx = AnyKoaContext> = IdempotencyOptions<Ctx>;

/**
 * The Koa request as the engine sees it. A class, not an object literal with getters: V8 builds
 * the latter on a slow path, and this runs for every request (bench/FINDINGS.md, A). Body, query
 * and params are read only when the engine needs them (Koa parses ctx.query on read).
 */
class KoaRequestView implements NeutralRequest<KoaContext> {
  readonly method: string;
  readonly headers: KoaContext['headers'];

  constructor(readonly native: KoaContext) {
    this.method = native.method.toUpperCase();
    this.headers = native.headers;
  }

  // Read on first use, through Koa's getters: a request without a key never needs them.
  get path(): string {
    return this.native.path;
  }

  get search(): string {
    return this.native.querystring;
  }

  /** @koa/router records the matched pattern when idempotent() is route middleware. */
  get route(): string | undefined {
    const matched = this.native._matchedRoute;
    return typeof matched === 'string' ? matched : undefined;
  }

  headerValues(name: string): string[] {
    return headerValues(this.headers, name, this.native.req);
  }

  get body(): unknown {
    return this.native.request.body;
  }

  /** A parser that read the body consumed the request stream or left ctx.request.body. */
  get bodyParsed(): boolean {
    return !hasRequestBody(this.headers) || this.native.req.readableEnded || this.native.request.body !== undefined;
  }

  get query(): unknown {
    return this.native.query;
  }

  get params(): unknown {
    return this.native.params;
  }
}

/**
 * Makes Koa routes safe to retry: the handler runs once per idempotency key and every duplicate
 * gets the same response, replayed byte for byte with `Idempotent-Replayed: true`. Mount it
 * after the body parser. Options are validated here; a bad one throws.
 *
 * @example
 * app.use(bodyParser());
 * app.use(idempotent({ required: true }));
 * router.post('/payments', async (ctx) => { ctx.status = 201; ctx.body = await charge(ctx.request.body); });
 */
export function idempotent<Ctx = AnyKoaContext>(options: KoaIdempotencyOptions<Ctx> = {}): IdempotentMiddleware {
  const engine = createIdempotency<Ctx>(options);
  const { maxBodyBytes } = engine.options;

  // Not an async function: a request that needs no store call (no key, a bad key) costs no promise
  // of its own; passing it on returns the next middleware's promise as it is.
  function idempotentMiddleware(ctx: KoaContext, next: () => Promise<unknown>): Promise<void> {
    let handled: Decision | Promise<Decision>;
    try {
      handled = engine.handle(new KoaRequestView(ctx) as NeutralRequest<Ctx>);
    } catch (error) {
      return Promise.reject(error); // a throwing key, scope or fingerprint function
    }
    if (handled instanceof Promise) return handled.then((decision) => act(ctx, next, decision));
    if (handled.action === 'pass') return next() as Promise<void>;
    return act(ctx, next, handled);
  }

  async function act(ctx: KoaContext, next: () => Promise<unknown>, decision: Decision): Promise<void> {
    if (decision.action === 'pass') {
      await next();
      return;
    }
    if (decision.action === 'respond') return sendOutgoing(ctx, decision.response);
    const { execution } = decision;
    // Answered while it waited (a request timeout before idem) or its client left: nobody would
    // get the result, so release the key for the retry instead of running the handler.
    if (answered(ctx)) return execution.abort('response already sent');
    attachExecution(ctx, execution);
    try {
      await next();
      // Koa sends the response only after every middleware returned: storing here is storing
      // before the flush.
      const captured = captureBody(ctx, maxBodyBytes);
      const instead = await execution.finish(captured instanceof Promise ? await captured : captured);
      if (instead !== undefined) {
        // A transactional store could not keep the response: the engine's answer replaces it. One
        // the handler wrote itself (ctx.respond = false) must not end as the success it claims.
        if (answered(ctx)) {
          if (!ctx.res.writableEnded) ctx.res.destroy(new Error(`idem: response not kept (${instead.status})`));
        } else {
          clearHeaders(ctx);
          sendOutgoing(ctx, instead);
        }
      }
    } catch (error) {
      // Release the key, then let Koa's error handling (or the app's) answer as it would.
      await execution.abort(error);
      throw error;
    }
  }

  return Object.assign(idempotentMiddleware, { events: engine.events });
}

export { cached } from './cached.js';
export type { CachedOptions, ResponseCache } from './cached.js';
export type { IdempotencyOptions, IdempotencyStore } from '@idem/core/adapter';
export { memoryStore } from '@idem/core/adapter';
