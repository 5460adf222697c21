import type { IncomingMessage, ServerResponse } from 'node:http';
import { replayableHeaders, sha256, toMs } from '@idem/core';
import { captureResponse, type HeldResponse } from './capture.js';

/** The part of an `@idem/cache` cache that `cached()` uses. Pass the result of `createCache()`. */
export interface ResponseCache {
  getOrSetEntry<T>(
    key: string,
    loader: (context: { key: string; stale: T | undefined }) => T | Promise<T>,
    options?: { ttl?: number; grace?: number; tags?: readonly string[]; timeout?: number; hardTimeout?: number },
  ): Promise<{ value: T; stale: boolean; source: 'l1' | 'l2' | 'loader' }>;
}

/** Options of `cached()`. Durations are milliseconds or strings such as `'5m'`. */
export interface CachedOptions<Req extends IncomingMessage = IncomingMessage> {
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
  tags?: readonly string[] | ((req: Req) => readonly string[]);
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

  const keep = (c: HeldResponse): CachedResponse | undefined => {
    // A 304 answers one client's validators; set-cookie or private content is someone's own.
    const control = String(c.headers['cache-control'] ?? '');
    if (c.body === null || c.status === 304 || c.headers['set-cookie'] !== undefined || /no-store|private/i.test(control)) return undefined;
    return { status: c.status, headers: replayableHeaders(c.headers), body: c.body };
  };

  return function cachedMiddleware(req: Req & { originalUrl?: string }, res: ServerResponse, next: (error?: unknown) => void): void {
    if (req.method !== 'GET') return next();
    const key = `http:${sha256(JSON.stringify([req.originalUrl ?? req.url, ...vary.map((h) => req.headers[h] ?? null)]))}`;
    let own: Promise<HeldResponse> | undefined;
    const outcome = cache.getOrSetEntry<CachedResponse>(
      key,
      async function handlerAsLoader() {
        own = captureResponse(res, maxBodyBytes);
        next();
        const captured = await own;
        const response = keep(captured);
        if (response === undefined || !cacheable(captured.status)) throw new NotCacheable(response);
        return response;
      },
      { ...base, tags: typeof tags === 'function' ? tags(req) : tags },
    );
    outcome.then(
      async ({ value, stale, source }) => {
        if (own === undefined) return send(res, value, stale ? 'idem; hit; detail=stale' : source === 'loader' ? 'idem; fwd=miss; collapsed' : 'idem; hit');
        const captured = await own;
        if (captured.body === null) return; // streamed out live already
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
          if (captured.body === null) return;
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
