import { NotCacheable, responseCaching, type CachedOptions as CoreCachedOptions, type CachedResponse, type CapturedResponse } from '@idem/core/adapter';
import { captureBody } from './capture.js';
import type { KoaContext } from './types.js';

export type { ResponseCache } from '@idem/core/adapter';

/** Options of `cached()`; a `tags` function receives the Koa context. */
export type CachedOptions<Ctx extends KoaContext = KoaContext> = CoreCachedOptions<Ctx>;

function send(ctx: KoaContext, response: CachedResponse, cacheStatus: string): void {
  for (const name of Object.keys(ctx.response.headers)) ctx.remove(name);
  for (const [name, value] of Object.entries(response.headers)) ctx.set(name, value);
  ctx.body = response.body;
  ctx.status = response.status;
  // Koa types a Buffer body as application/octet-stream; a response kept without a type has none.
  if (response.headers['content-type'] === undefined) ctx.remove('Content-Type');
  ctx.set('Cache-Status', cacheStatus);
}

/**
 * Read-through caching for GET routes on `@idem/cache`: the handler runs once per URL (and
 * `vary` headers) however many requests arrive at once, in however many processes; the others
 * get its status, headers and bytes. Within grace, a failing handler is answered with the last
 * good response. Every answer carries an RFC 9211 `Cache-Status` header.
 *
 * @example
 * const cache = createCache({ redis, ttl: '1m', grace: '1h' });
 * router.get('/stats/:day', cached({ cache, vary: ['accept-language'] }), statsHandler);
 */
export function cached<Ctx extends KoaContext = KoaContext>(options: CachedOptions<Ctx>) {
  const caching = responseCaching(options);
  const { cache, maxBodyBytes } = caching;

  return async function cachedMiddleware(ctx: KoaContext & { originalUrl?: string; url?: string }, next: () => Promise<unknown>): Promise<void> {
    if (ctx.method !== 'GET') {
      await next();
      return;
    }
    const key = caching.keyOf(ctx.originalUrl ?? ctx.url ?? ctx.path, ctx.headers);
    let own: Promise<CapturedResponse> | undefined;
    let result;
    try {
      result = await cache.getOrSetEntry<CachedResponse>(
        key,
        async function handlerAsLoader() {
          own = next().then(() => captureBody(ctx, maxBodyBytes));
          return caching.keep(await own);
        },
        caching.loadOptions(ctx as Ctx),
      );
    } catch (error) {
      if (own !== undefined) {
        // Our own handler ran: its response (or its error) stands.
        await own;
        ctx.set('Cache-Status', 'idem; fwd=miss');
        return;
      }
      if (error instanceof NotCacheable) {
        if (error.response !== undefined) return send(ctx, error.response, 'idem; fwd=miss; collapsed');
      } else if (!(error instanceof Error && error.name === 'CacheError')) {
        throw error; // the handler we waited for threw: share its error
      }
      // Nothing to share (too big, a 304, or the cache gave up): run the handler for this one.
      await next();
      return;
    }
    const { value, stale, source } = result;
    if (own === undefined) return send(ctx, value, stale ? 'idem; hit; detail=stale' : source === 'loader' ? 'idem; fwd=miss; collapsed' : 'idem; hit');
    // Wait for our handler even when a stale answer came first: Koa responds after we return.
    const captured = await own.catch(() => undefined);
    if (!stale) {
      ctx.set('Cache-Status', 'idem; fwd=miss; stored');
      return;
    }
    if (captured?.body === null && ctx.respond === false) return;
    send(ctx, value, 'idem; hit; detail=stale');
  };
}
