import type { IncomingMessage, ServerResponse } from 'node:http';
import { attachExecution, createIdempotency } from '@idem/core/adapter';
import type {
  Decision,
  Execution,
  IdempotencyEvents,
  IdempotencyOptions,
  NeutralRequest,
  OutgoingResponse,
} from '@idem/core/adapter';
import { holdResponse, type HeldResponse } from './capture.js';
import { watchConnection } from './connection.js';
import { ExpressRequestView, type ExpressRequest } from './request-view.js';
import { answered, sendOutgoing } from './send.js';

export type { ExpressRequest } from './request-view.js';

/** What `key`, `scope` and `fingerprint` functions receive by default: the Express request, loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyExpressRequest = Record<string, any> & {
  headers: IncomingMessage['headers'];
  method?: string;
  url?: string;
};

/** Express middleware with the engine's typed events attached. */
export interface IdempotentMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
  /** Typed events: `replay`, `execute`, `conflict`, `mismatch`, `storeError`, `leaseLost`. */
  readonly events: IdempotencyEvents;
}

/** Options of the Express `idempotent()`; functions receive the Express request. */
export type ExpressIdempotencyOptions<Req = AnyExpressRequest> = IdempotencyOptions<Req>;

/** One execution on one response: what the held response's end needs, carried as its context. */
interface Run {
  execution: Execution;
  next: (error?: unknown) => void;
}

/** Answers with the engine's `instead` (a transactional store could not keep the response) in place of the handler's. */
function replace(held: HeldResponse, instead: OutgoingResponse): void {
  // Already on the wire: it must not end as the success it claims to be.
  if (held.streamed) return held.cutOff(new Error(`idem: response not kept (${instead.status})`));
  held.restore();
  const { res } = held;
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusMessage = ''; // not the handler's reason phrase ("Created") on idem's answer
  sendOutgoing(res, instead);
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
export function idempotent<Req = AnyExpressRequest>(
  options: ExpressIdempotencyOptions<Req> = {},
): IdempotentMiddleware {
  const engine = createIdempotency<Req>(options);
  const { maxBodyBytes } = engine.options;

  function act(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void, decision: Decision): void {
    if (decision.action === 'pass') return next();
    if (decision.action === 'respond') return sendOutgoing(res, decision.response);
    const { execution } = decision;
    // Answered while it waited (a request timeout before idem) or its client left: nobody would
    // get the result, so release the key for the retry instead of running the handler.
    if (answered(res)) return void execution.abort('response already sent');
    const held = holdResponse<Run>(res, maxBodyBytes, storeThenFlush, { execution, next });
    // On res, which holdResponse moved to dictionary mode: a property added to Express's req is a
    // new hidden class (capture.ts); executionOf(req) looks there through req.res.
    attachExecution(res, execution);
    watchConnection(res, held, () => void execution.abort('connection closed before the response ended'));
    next();
  }

  /** {@link act} for a decision that came through a promise: a throw goes to the error handler. */
  function actOrFail(
    req: IncomingMessage,
    res: ServerResponse,
    next: (error?: unknown) => void,
    decision: Decision,
  ): void {
    try {
      act(req, res, next, decision);
    } catch (error) {
      next(error);
    }
  }

  // One function for every held response; the execution rides along as its context.
  function storeThenFlush(held: HeldResponse, { execution, next }: Run): void {
    // finish() never rejects: it stores the response or releases the key, then the client gets it.
    // A throw while sending (Node refusing the handler's status, say) goes to the error handler.
    void execution.finish(held).then((instead) => {
      try {
        if (instead === undefined) held.flush();
        else replace(held, instead);
      } catch (error) {
        next(error);
      }
    });
  }

  function idempotentMiddleware(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void {
    let decision: Decision | Promise<Decision>;
    try {
      decision = engine.handle(new ExpressRequestView(req as ExpressRequest) as unknown as NeutralRequest<Req>);
      // Requests that need no store call (no key, a bad key) go on without a detour through a promise.
      if (!(decision instanceof Promise)) return act(req, res, next, decision);
    } catch (error) {
      return next(error); // a throwing key, scope or fingerprint function, or a throw while answering
    }
    decision.then((d) => actOrFail(req, res, next, d), next);
  }

  return Object.assign(idempotentMiddleware, { events: engine.events });
}

export { cached } from './cached.js';
export type { CachedOptions, ResponseCache } from './cached.js';
export type { IdempotencyOptions, IdempotencyStore } from '@idem/core/adapter';
export { memoryStore } from '@idem/core/adapter';
