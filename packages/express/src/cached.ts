import type { IncomingMessage, ServerResponse } from 'node:http';
import { CACHE_STATUS_HEADER, responseCaching } from '@idem/core/adapter';
import type { CachedAnswer, CachedOptions as CoreCachedOptions } from '@idem/core/adapter';
import { captureResponse, type HeldResponse } from './capture.js';
import { answered, send } from './send.js';

export type { ResponseCache } from '@idem/core/adapter';

/** Options of `cached()`; a `tags` function receives the Express request. */
export type CachedOptions<Req extends IncomingMessage = IncomingMessage> = CoreCachedOptions<Req>;

type Next = (error?: unknown) => void;

/** Writes core's answer (`cachedAnswer`) with Express's calls; `held` is the own handler's response, when it ran. */
function answer(res: ServerResponse, next: Next, decided: CachedAnswer, held: HeldResponse | undefined): void {
  switch (decided.action) {
    case 'fail':
      return next(decided.error);
    case 'run':
      if (answered(res)) return;
      res.setHeader(CACHE_STATUS_HEADER, decided.cacheStatus);
      return next();
    case 'own':
      // A body that outgrew the cap may be on the wire already: its head cannot change then.
      if (!res.headersSent) res.setHeader(CACHE_STATUS_HEADER, decided.cacheStatus);
      return held?.flush();
    case 'send':
      if (held !== undefined) {
        // Answer with the cached response instead of what the handler wrote.
        held.restore();
        for (const name of res.getHeaderNames()) res.removeHeader(name);
      }
      return send(res, decided.response, [[CACHE_STATUS_HEADER, decided.cacheStatus]]);
  }
}

/**
 * Read-through caching for GET routes on `@idem/cache`: the handler runs once per URL (and
 * `vary` headers) however many requests arrive at once, in however many processes; the others
 * get its status, headers and bytes, or its failure. Within grace, a failing handler is answered
 * with the last good response. Every answer carries an RFC 9211 `Cache-Status` header.
 *
 * @example
 * const cache = createCache({ redis, ttl: '1m', grace: '1h' });
 * app.get('/stats/:day', cached({ cache, vary: ['accept-language'] }), statsHandler);
 */
export function cached<Req extends IncomingMessage = IncomingMessage>(options: CachedOptions<Req>) {
  const caching = responseCaching(options);
  const { maxBodyBytes } = caching;

  return function cachedMiddleware(req: Req & { originalUrl?: string }, res: ServerResponse, next: Next): void {
    if (req.method !== 'GET') return next();
    let held: HeldResponse | undefined;
    const key = caching.keyOf(req.originalUrl ?? req.url ?? '/', req.headers);
    caching
      .decide(key, req, function runHandler() {
        const own = captureResponse(res, maxBodyBytes).then((response) => (held = response));
        next();
        return own;
      })
      .then((decided) => answer(res, next, decided, held))
      // A throw while answering (Node refusing a cached status or header) goes to the error handler.
      .catch(next);
  };
}
