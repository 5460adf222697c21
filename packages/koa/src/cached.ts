import { CACHE_STATUS_HEADER, responseCaching } from '@idem/core/adapter';
import type { CachedOptions as CoreCachedOptions, CachedResponse } from '@idem/core/adapter';
import { captureBody } from './capture.js';
import { answered, clearHeaders } from './send.js';
import type { KoaContext } from './types.js';

export type { ResponseCache } from '@idem/core/adapter';

/** Options of `cached()`; a `tags` function receives the Koa context. */
export type CachedOptions<Ctx extends KoaContext = KoaContext> = CoreCachedOptions<Ctx>;

function send(ctx: KoaContext, response: CachedResponse, cacheStatus: string): void {
  if (answered(ctx)) return;
  clearHeaders(ctx);
  for (const [name, value] of Object.entries(response.headers)) ctx.set(name, value);
  ctx.body = response.body;
  ctx.status = response.status;
  // Koa types a Buffer body as application/octet-stream; a response kept without a type has none.
  if (response.headers['content-type'] === undefined) ctx.remove('Content-Type');
  ctx.set(CACHE_STATUS_HEADER, cacheStatus);
}

/**
 * Read-through caching for GET routes on `@idem/cache`: the handler runs once per URL (and
 * `vary` headers) however many requests arrive at once, in however many processes; the others
 * get its status, headers and bytes, or its failure. Within grace, a failing handler is answered
 * with the last good response. Every answer carries an RFC 9211 `Cache-Status` header.
 *
 * @example
 * const cache = createCache({ redis, ttl: '1m', grace: '1h' });
 * router.get('/stats/:day', cached({ cache, vary: ['accept-language'] }), statsHandler);
 */
export function cached<Ctx extends KoaContext = KoaContext>(options: CachedOptions<Ctx>) {
  const caching = responseCaching(options);
  const { maxBodyBytes } = caching;

  return async function cachedMiddleware(
    ctx: KoaContext & { originalUrl?: string; url?: string },
    next: () => Promise<unknown>,
  ): Promise<void> {
    if (ctx.method !== 'GET') {
      await next();
      return;
    }
    const key = caching.keyOf(ctx.originalUrl ?? ctx.url ?? ctx.path, ctx.headers);
    // Koa sends the response after every middleware returned: what this one leaves in ctx goes out.
    const decided = await caching.decide(key, ctx as Ctx, () => next().then(() => captureBody(ctx, maxBodyBytes)));
    switch (decided.action) {
      case 'fail':
        throw decided.error;
      case 'run':
        if (answered(ctx)) return;
        ctx.set(CACHE_STATUS_HEADER, decided.cacheStatus);
        await next();
        return;
      case 'own':
        ctx.set(CACHE_STATUS_HEADER, decided.cacheStatus); // a no-op once the head is out
        return;
      case 'send':
        return send(ctx, decided.response, decided.cacheStatus);
    }
  };
}
