import type { Context, MiddlewareHandler, Next } from 'hono';
import { attachExecution, createIdempotency } from '@idem/core/adapter';
import type { IdempotencyEvents, IdempotencyOptions, NeutralRequest } from '@idem/core/adapter';
import { HonoRequestView } from './request-view.js';
import { captureResponse, replaceResponse } from './response.js';
import { replacement, respondOutgoing } from './send.js';

/** Options of the Hono `idempotent()`; `key`, `scope` and `fingerprint` functions receive the Hono context. */
export type HonoIdempotencyOptions = IdempotencyOptions<Context>;

/** Hono middleware with the engine's typed events attached. */
export type IdempotentMiddleware = MiddlewareHandler & {
  /** Typed events: `replay`, `execute`, `conflict`, `mismatch`, `storeError`, `leaseLost`. */
  readonly events: IdempotencyEvents;
};

/**
 * Makes Hono routes safe to retry: the handler runs once per idempotency key and every duplicate
 * gets the same response, replayed byte for byte with `Idempotent-Replayed: true`. It reads the
 * request body itself (through Hono's body cache: the handler still reads it as usual) and
 * captures the `Response` the handler returns, storing it before it goes out. Options are
 * validated here; a bad one throws.
 *
 * @example
 * app.use('/orders/*', idempotent({ required: true }));
 * app.post('/orders', async (c) => c.json(await createOrder(await c.req.json()), 201));
 */
export function idempotent(options: HonoIdempotencyOptions = {}): IdempotentMiddleware {
  const engine = createIdempotency<Context>(options);
  const { methods, maxBodyBytes } = engine.options;

  async function idempotentMiddleware(c: Context, next: Next): Promise<Response | void> {
    // Other methods pass before their body is touched.
    if (!methods.has(c.req.method.toUpperCase())) return next();
    const decision = await engine.handle((await HonoRequestView.read(c)) as NeutralRequest<Context>);
    if (decision.action === 'pass') return next();
    if (decision.action === 'respond') return respondOutgoing(c, decision.response);
    const { execution } = decision;
    attachExecution(c, execution);
    try {
      // Hono answers a handler's throw with its error handler's response, which is captured as any
      // other (a 500 is not stored); what still rejects here is not an Error.
      await next();
      // The response is still in c.res: storing here is storing before it is sent.
      const instead = await execution.finish(await captureResponse(c, maxBodyBytes));
      if (instead !== undefined) {
        // A transactional store could not keep the response: the engine's answer replaces it.
        await c.res.body?.cancel();
        replaceResponse(c, replacement(instead));
      }
    } catch (error) {
      // Release the key (a no-op once finished), then let Hono answer as it would.
      await execution.abort(error);
      throw error;
    }
  }

  return Object.assign(idempotentMiddleware, { events: engine.events });
}
