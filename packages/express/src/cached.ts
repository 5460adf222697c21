import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotCacheable, responseCaching, type CachedOptions as CoreCachedOptions, type CachedResponse } from '@idem/core/adapter';
import { captureResponse, type HeldResponse } from './capture.js';

export type { ResponseCache } from '@idem/core/adapter';

/** Options of `cached()`; a `tags` function receives the Express request. */
export type CachedOptions<Req extends IncomingMessage = IncomingMessage> = CoreCachedOptions<Req>;

function send(res: ServerResponse, response: CachedResponse, cacheStatus: string): void {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  res.setHeader('cache-status', cacheStatus);
  res.end(response.body);
}

/**
 * Read-through caching for GET routes on `@idem/cache`: the handler runs once per URL (and
 * `vary` headers) however many requests arrive at once, in however many processes; the others
 * get its status, headers and bytes. Within grace, a failing handler is answered with the last
 * good response. Every answer carries an RFC 9211 `Cache-Status` header.
 *
 * @example
 * const cache = createCache({ redis, ttl: '1m', grace: '1h' });
 * app.get('/stats/:day', cached({ cache, vary: ['accept-language'] }), statsHandler);
 */
export function cached<Req extends IncomingMessage = IncomingMessage>(options: CachedOptions<Req>) {
  const caching = responseCaching(options);
  const { cache, maxBodyBytes } = caching;

  return function cachedMiddleware(req: Req & { originalUrl?: string }, res: ServerResponse, next: (error?: unknown) => void): void {
    if (req.method !== 'GET') return next();
    const key = caching.keyOf(req.originalUrl ?? req.url ?? '/', req.headers);
    let own: Promise<HeldResponse> | undefined;
    const outcome = cache.getOrSetEntry<CachedResponse>(
      key,
      async function handlerAsLoader() {
        own = captureResponse(res, maxBodyBytes);
        next();
        return caching.keep(await own);
      },
      caching.loadOptions(req),
    );
    outcome.then(
      async ({ value, stale, source }) => {
        if (own === undefined) return send(res, value, stale ? 'idem; hit; detail=stale' : source === 'loader' ? 'idem; fwd=miss; collapsed' : 'idem; hit');
        const captured = await own;
        // Too large to keep: it went out live already, or flush() sends it whole.
        if (captured.body === null) return captured.flush();
        if (!stale) {
          res.setHeader('cache-status', 'idem; fwd=miss; stored');
          return captured.flush();
        }
        // The handler failed; answer with the last good response instead of what it wrote.
        captured.restore();
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        send(res, value, 'idem; hit; detail=stale');
      },
      async (error: unknown) => {
        if (own !== undefined) {
          const captured = await own;
          if (captured.body === null) return captured.flush();
          res.setHeader('cache-status', 'idem; fwd=miss');
          return captured.flush();
        }
        if (error instanceof NotCacheable && error.response !== undefined) return send(res, error.response, 'idem; fwd=miss; collapsed');
        // Nothing to share (too big, a 304, or the cache gave up): run the handler for this one.
        next();
      },
    );
  };
}
