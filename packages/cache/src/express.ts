/**
 * `@idem/cache/express`: `invalidates()` for Express 4 and 5 write routes. No dependency on
 * Express itself: it works on Node's request and response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPLAYED_HEADER } from '@idem/core';
import { invalidation, type InvalidatesOptions } from './invalidates.js';

export type { InvalidatesOptions, Names } from './invalidates.js';

/** What tag and key functions receive by default: the Express request, loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyExpressRequest = Record<string, any> & IncomingMessage;

type End = ServerResponse['end'];

/**
 * Deletes the tags and keys a write route names once it answers 2xx, from both tiers and every
 * instance's memory tier, before the response ends (a read right after the write gets the new
 * value). A replayed answer (`Idempotent-Replayed: true`, from `idempotent()` mounted before or
 * after it) invalidates nothing: its first run did. Options are checked here; a bad one throws.
 *
 * @example
 * app.put('/users/:id', invalidates({ cache, tags: (req) => [`user:${req.params.id}`] }), updateUser);
 */
export function invalidates<Req = AnyExpressRequest>(
  options: InvalidatesOptions<Req>,
): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  const it = invalidation(options);
  return function invalidatesMiddleware(req, res, next) {
    const end = res.end as End;
    // The response's end waits for the deletion; its status and headers are final by then.
    res.end = function endAfterInvalidation(this: ServerResponse, ...args: unknown[]) {
      res.end = end;
      if (!it.applies(res.statusCode, res.getHeader(REPLAYED_HEADER))) return end.apply(this, args as never);
      void it.run(req as unknown as Req).then(() => end.apply(this, args as never));
      return this;
    } as End;
    next();
  };
}
