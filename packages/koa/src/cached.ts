import { replayableHeaders, sha256, toMs, type CapturedResponse } from '@idem/core';
import { captureBody } from './capture.js';
import type { KoaContext } from './types.js';

/** The part of an `@idem/cache` cache that `cached()` uses. Pass the result of `createCache()`. */
export interface ResponseCache {
  getOrSetEntry<T>(
    key: string,
    loader: (context: { key: string; stale: T | undefined }) => T | Promise<T>,
    options?: { ttl?: number; grace?: number; tags?: readonly string[]; timeout?: number; hardTimeout?: number },
  ): Promise<{ value: T; stale: boolean; source: 'l1' | 'l2' | 'loader' }>;
}

/** Options of `cached()`. Durations are milliseconds or strings such as `'5m'`. */
export interface CachedOptions<Ctx extends KoaContext = KoaContext> {
  /** The cache (from `createCache()` of `@idem/cache`). */
  cache: ResponseCache;
  /** Request headers that select a different response (`accept-language`…): part of the key. @default [] */
  vary?: readonly string[];
  /** @default the cache's */
  ttl?: number | string;
  /** @default the cache's */
  grace?: number | string;
  /** @default the cache's */
  timeout?: number | string;
  /** @default the cache's */
  hardTimeout?: number | string;
  /** Tags for `cache.deleteByTag`, fixed or per request. @default [] */
  tags?: readonly string[] | ((ctx: Ctx) => readonly string[]);
  /** Which statuses are kept. @default 200, 203, 204, 300, 301, 404, 410 */
  cacheable?: (status: number) => boolean;
  /** Larger bodies are sent but not kept. @default 1 MiB */
  maxBodyBytes?: number;
}

/** A response as kept in the cache. */
interface CachedResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** A response that is not kept; `response` lets the requests that waited for it share it. */
class NotCacheable extends Error {
  constructor(readonly response: CachedResponse | undefined) {
    super('response not cacheable');
  }
}

const CACHEABLE = new Set([200, 203, 204, 300, 301, 404, 410]);

function duration(option: string, value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return value === 0 && option === 'grace' ? 0 : toMs(option, value);
}

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
  if (options === null || typeof options !== 'object' || typeof options.cache?.getOrSetEntry !== 'function') {
    throw new TypeError('idem: invalid option `cache`: expected a cache from createCache() of @idem/cache');
  }
  const vary = (options.vary ?? []).map((h) => h.toLowerCase());
  const cacheable = options.cacheable ?? ((status: number) => CACHEABLE.has(status));
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const tags = options.tags;
  const base = {
    ttl: duration('ttl', options.ttl),
    grace: duration('grace', options.grace),
    timeout: duration('timeout', options.timeout),
    hardTimeout: duration('hardTimeout', options.hardTimeout),
  };
  const { cache } = options;

  const keep = (c: CapturedResponse): CachedResponse | undefined => {
    // A 304 answers one client's validators; set-cookie or private content is someone's own.
    const control = String(c.headers['cache-control'] ?? '');
    if (c.body === null || c.status === 304 || c.headers['set-cookie'] !== undefined || /no-store|private/i.test(control)) return undefined;
    return { status: c.status, headers: replayableHeaders(c.headers), body: Buffer.from(c.body.buffer, c.body.byteOffset, c.body.byteLength) };
  };

  return async function cachedMiddleware(ctx: KoaContext & { originalUrl?: string; url?: string }, next: () => Promise<unknown>): Promise<void> {
    if (ctx.method !== 'GET') {
      await next();
      return;
    }
    const key = `http:${sha256(JSON.stringify([ctx.originalUrl ?? ctx.url ?? ctx.path, ...vary.map((h) => ctx.headers[h] ?? null)]))}`;
    let own: Promise<CapturedResponse> | undefined;
    let result;
    try {
      result = await cache.getOrSetEntry<CachedResponse>(
        key,
        async function handlerAsLoader() {
          own = next().then(() => captureBody(ctx, maxBodyBytes));
          const captured = await own;
          const response = keep(captured);
          if (response === undefined || !cacheable(captured.status)) throw new NotCacheable(response);
          return response;
        },
        { ...base, tags: typeof tags === 'function' ? tags(ctx as Ctx) : tags },
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
