import { cachedAnswer, NotCacheable } from './cached-answer.js';
import type { CachedAnswer, CachedResponse, CacheOutcome, OwnRun } from './cached-answer.js';
import { ConfigError, checkOptions, parseDuration } from './config.js';
import { HEADER_NAME, replayableHeaders } from './headers.js';
import { sha256 } from './key.js';
import type { CapturedResponse, Duration, HeaderBag } from './types.js';

export { NotCacheable, type CachedResponse } from './cached-answer.js';

/** The part of an `@idem/cache` cache that `cached()` uses. Pass the result of `createCache()`. */
export interface ResponseCache {
  getOrSetEntry<T>(
    key: string,
    loader: (context: { key: string; stale: T | undefined }) => T | Promise<T>,
    options?: {
      ttl?: number;
      grace?: number;
      tags?: readonly string[];
      timeout?: number;
      hardTimeout?: number;
      eagerRefresh?: false;
    },
  ): Promise<{ value: T; stale: boolean; source: 'l1' | 'l2' | 'durable' | 'loader' }>;
}

/** Options of `cached()` in every adapter. Durations are milliseconds or strings such as `'5m'`. */
export interface CachedOptions<Native = unknown> {
  /** The cache (from `createCache()` of `@idem/cache`). */
  cache: ResponseCache;
  /** Request headers that select a different response (`accept-language`…): part of the key. @default [] */
  vary?: readonly string[];
  /** @default the cache's */
  ttl?: Duration;
  /** @default the cache's */
  grace?: Duration;
  /** @default the cache's */
  timeout?: Duration;
  /** @default the cache's */
  hardTimeout?: Duration;
  /** Tags for `cache.deleteByTag`, fixed or per request. @default [] */
  tags?: readonly string[] | ((req: Native) => readonly string[]);
  /** Which statuses are kept. @default 200, 203, 204, 300, 301, 404, 410 */
  cacheable?: (status: number) => boolean;
  /** Larger bodies are sent but not kept. @default 1 MiB */
  maxBodyBytes?: number;
}

const CACHEABLE = new Set([200, 203, 204, 300, 301, 404, 410]);

function duration(option: string, value: Duration | undefined): number | undefined {
  if (value === undefined) return undefined;
  return parseDuration(option, value, { allowZero: option === 'grace' });
}

/** What both adapters' `cached()` share, resolved once at creation. */
export interface ResponseCaching<Native> {
  cache: ResponseCache;
  maxBodyBytes: number;
  /** The cache key of a GET: its URL and the `vary` headers. */
  keyOf(url: string, headers: HeaderBag): string;
  /** The per-request options for `getOrSetEntry`. */
  loadOptions(req: Native): {
    ttl?: number;
    grace?: number;
    timeout?: number;
    hardTimeout?: number;
    tags?: readonly string[];
    eagerRefresh: false;
  };
  /** The response to keep, or throws {@link NotCacheable}. */
  keep(captured: CapturedResponse): CachedResponse;
  /**
   * Looks `key` up, running the handler through `runOwn` when this request is the one to load it,
   * and says how to answer (see `cachedAnswer`). Never rejects: every failure is in the answer.
   * `runOwn` resolves with the handler's captured response, or rejects with its error.
   */
  decide(key: string, req: Native, runOwn: () => Promise<CapturedResponse>): Promise<CachedAnswer>;
}

const KNOWN = ['cache', 'vary', 'ttl', 'grace', 'timeout', 'hardTimeout', 'tags', 'cacheable', 'maxBodyBytes'];

/** Validates `cached()` options (a clear TypeError naming the option) and computes what is fixed. */
export function responseCaching<Native>(options: CachedOptions<Native>): ResponseCaching<Native> {
  checkOptions(options, KNOWN);
  if (typeof options.cache?.getOrSetEntry !== 'function') {
    throw new ConfigError('cache', 'expected a cache from createCache() of @idem/cache');
  }
  const { vary: varyOption = [], cacheable: cacheableOption, tags, maxBodyBytes = 1 << 20 } = options;
  if (!Array.isArray(varyOption) || !varyOption.every((h) => typeof h === 'string' && HEADER_NAME.test(h))) {
    throw new ConfigError('vary', 'expected an array of request header names');
  }
  if (cacheableOption !== undefined && typeof cacheableOption !== 'function') {
    throw new ConfigError('cacheable', 'expected a function (status) => boolean');
  }
  if (
    tags !== undefined &&
    typeof tags !== 'function' &&
    !(Array.isArray(tags) && tags.every((t) => typeof t === 'string' && t !== ''))
  ) {
    throw new ConfigError('tags', 'expected an array of non-empty strings or a function (req) => string[]');
  }
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0)
    throw new ConfigError('maxBodyBytes', 'expected a non-negative integer');
  const vary = varyOption.map((h) => h.toLowerCase());
  const cacheable = cacheableOption ?? ((status: number) => CACHEABLE.has(status));
  const base = {
    ttl: duration('ttl', options.ttl),
    grace: duration('grace', options.grace),
    timeout: duration('timeout', options.timeout),
    hardTimeout: duration('hardTimeout', options.hardTimeout),
    // The loader is this request's own handler: a background refresh after the answer went out
    // would run it again on a finished response.
    eagerRefresh: false as const,
  };
  const caching: ResponseCaching<Native> = {
    cache: options.cache,
    maxBodyBytes,
    keyOf: (url, headers) => `http:${sha256(JSON.stringify([url, ...vary.map((h) => headers[h] ?? null)]))}`,
    loadOptions: (req) => ({ ...base, tags: typeof tags === 'function' ? tags(req) : tags }),
    async decide(key, req, runOwn) {
      let own: Promise<OwnRun> | undefined;
      let outcome: CacheOutcome;
      let decided = false;
      try {
        outcome = await options.cache.getOrSetEntry<CachedResponse>(
          key,
          async function handlerAsLoader() {
            // Only while this request waits: its handler cannot answer a request that was answered.
            if (decided) throw new NotCacheable(undefined);
            const run = runOwn();
            own = run.then(
              (response) => ({ response }),
              (error: unknown) => ({ error }),
            );
            return caching.keep(await run);
          },
          caching.loadOptions(req),
        );
      } catch (error) {
        outcome = { error };
      }
      decided = true;
      // Even when a stale answer came first, wait for our handler: its response is on this request.
      return cachedAnswer(outcome, own === undefined ? undefined : await own);
    },
    keep(captured) {
      // A 304 answers one client's validators; set-cookie or private content is someone's own.
      const control = String(captured.headers['cache-control'] ?? '');
      const personal =
        captured.status === 304 || captured.headers['set-cookie'] !== undefined || /no-store|private/i.test(control);
      const response =
        captured.body === null || personal
          ? undefined
          : {
              status: captured.status,
              headers: replayableHeaders(captured.headers),
              body: Buffer.from(captured.body.buffer, captured.body.byteOffset, captured.body.byteLength),
            };
      if (response === undefined || !cacheable(captured.status)) throw new NotCacheable(response);
      return response;
    },
  };
  return caching;
}
