/**
 * Per-request identity: an `X-Request-ID` on every response (the client's when it is sane, else a
 * new UUID) and a pino child logger carrying it. The context also lives in AsyncLocalStorage so
 * that code without the request at hand (idempotency events, the engine's own log lines, the LLM
 * provider) logs with the right request ID.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from './logger.js';

/** What is known about the request being served. */
export interface RequestContext {
  requestId: string;
  log: Logger;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** The request's ID, also sent back as `X-Request-ID`. */
    id: string;
    /** A child logger bound to `requestId`. */
    log: Logger;
  }
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Client IDs we echo: short and made of characters that are safe in headers and logs. */
const ACCEPTED_ID = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** The context of the request being served, if any. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/**
 * Assigns the request ID, sets the response header and attaches `req.log`. Mount it first, so
 * that even a request the body parser rejects carries an ID.
 */
export function requestId(logger: Logger): RequestHandler {
  return function assignRequestId(req: Request, res: Response, next: NextFunction): void {
    const offered = req.get('x-request-id')?.trim();
    req.id = offered !== undefined && ACCEPTED_ID.test(offered) ? offered : randomUUID();
    req.log = logger.child({ requestId: req.id });
    res.setHeader('X-Request-ID', req.id);
    next();
  };
}

/**
 * Enters the request's AsyncLocalStorage context. Mounted after the body parser because stream
 * callbacks (where the parser calls `next`) do not carry the context of the middleware before it.
 */
export function bindContext(): RequestHandler {
  return function bindRequestContext(req: Request, _res: Response, next: NextFunction): void {
    storage.run({ requestId: req.id, log: req.log }, next);
  };
}

/**
 * A logger that writes through the current request's child logger, or `fallback` outside a
 * request. Given to the idempotency engine, whose log lines then carry the request ID too.
 */
export function contextualLogger(fallback: Logger): Pick<Logger, 'debug' | 'info' | 'warn' | 'error'> {
  const pick = (): Logger => storage.getStore()?.log ?? fallback;
  return {
    debug: (obj: object, msg?: string) => pick().debug(obj, msg),
    info: (obj: object, msg?: string) => pick().info(obj, msg),
    warn: (obj: object, msg?: string) => pick().warn(obj, msg),
    error: (obj: object, msg?: string) => pick().error(obj, msg),
  } as Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
}
