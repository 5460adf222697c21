import type { Context, MiddlewareHandler, Next } from 'hono';
import { CACHE_STATUS_HEADER, responseCaching } from '@idem/core/adapter';
import type { CachedOptions as CoreCachedOptions } from '@idem/core/adapter';
import { captureResponse, headerBag, replaceResponse } from './response.js';
import { replacement, respond } from './send.js';

export type { ResponseCache } from '@idem/core/adapter';

/** Options of `cached()`; a `tags` function receives the Hono context. */
export type CachedOptions = CoreCachedOptions<Context>;

/** The request target (path and query) of an absolute URL. */
function target(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  return start < 0 ? '/' : url.slice(start);
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
export function cached(options: CachedOptions): MiddlewareHandler {
  const caching = responseCaching(options);
  const { maxBodyBytes } = caching;

  return async function cachedMiddleware(c: Context, next: Next): Promise<Response | void> {
    if (c.req.method !== 'GET') return next();
    let ran = false;
    const key = caching.keyOf(target(c.req.url), headerBag(c.req.raw.headers));
    const decided = await caching.decide(key, c, async function runHandler() {
      ran = true;
      await next();
      return captureResponse(c, maxBodyBytes);
    });
    switch (decided.action) {
      case 'fail':
        throw decided.error;
      case 'run':
        await next();
        c.header(CACHE_STATUS_HEADER, decided.cacheStatus);
        return;
      case 'own':
        c.header(CACHE_STATUS_HEADER, decided.cacheStatus);
        return;
      case 'send': {
        const { response, cacheStatus } = decided;
        if (!ran) return respond(c, response, [[CACHE_STATUS_HEADER, cacheStatus]]);
        // Answer with the cached response instead of what the handler wrote.
        replaceResponse(c, replacement(response, [[CACHE_STATUS_HEADER, cacheStatus]]));
        return;
      }
    }
  };
}
