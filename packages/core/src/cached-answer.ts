/**
 * How `cached()` answers a request, decided once for every adapter from what the cache gave it
 * (`getOrSetEntry`) and, when this request's own handler ran as the loader, how that run ended.
 * The adapters only translate the answer into their framework's calls.
 */
import { CacheStatus, type CacheStatusValue } from './cache-status.js';
import type { CapturedResponse } from './types.js';

/** A response as kept in the cache. */
export interface CachedResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** A response that is not kept; `response` lets the requests that waited for it share it. */
export class NotCacheable extends Error {
  constructor(readonly response: CachedResponse | undefined) {
    super('response not cacheable');
  }
}

/** What `getOrSetEntry` settled with for this request. */
export type CacheOutcome =
  { value: CachedResponse; stale: boolean; source: 'l1' | 'l2' | 'durable' | 'loader' } | { error: unknown };

/** How this request's own handler, run as the cache's loader, ended: its response, or its error. */
export type OwnRun<Captured extends CapturedResponse = CapturedResponse> = { response: Captured } | { error: unknown };

/** What the adapter does with a `cached()` request. */
export type CachedAnswer =
  /**
   * Answer with `response` (from the cache, or shared by the run this request joined), in place
   * of anything the handler wrote.
   */
  | { action: 'send'; response: CachedResponse; cacheStatus: CacheStatusValue }
  /** The handler's own response goes out as it wrote it. */
  | { action: 'own'; cacheStatus: CacheStatusValue }
  /** Run the handler for this request alone, outside the cache. */
  | { action: 'run'; cacheStatus: CacheStatusValue }
  /** Hand `error` to the framework's error handling. */
  | { action: 'fail'; error: unknown };

/**
 * Whether `error` is the cache giving up (circuit breaker open, Redis timeout or failure, closed,
 * hard timeout, serialization): its `code` is one of `@idem/cache`'s documented `CacheErrorCode`s,
 * which all start with `cache_`. `cache_config` (a bad option) is a bug to surface, not an outage
 * to route around. Checked by code, not by class: a second installed copy of the cache, or a
 * cache of one's own with the same codes, is recognised too.
 */
export function isCacheFailure(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('cache_') && code !== 'cache_config';
}

// The own run's response goes out, or its error to the framework.
function ownAnswer(own: OwnRun, cacheStatus: CacheStatusValue): CachedAnswer {
  return 'error' in own ? { action: 'fail', error: own.error } : { action: 'own', cacheStatus };
}

/**
 * The answer to a `cached()` request. The rules, in the READMEs' words:
 * - From the cache: `hit`, or `stale` within grace; joined another request's run: `collapsed`.
 * - Own handler ran and its response was kept: it goes out, `stored`.
 * - Own handler failed (or was slower than `timeout`) and a stale response is at hand: the stale
 *   one answers, unless the handler's response was too large to keep: that one may be on the
 *   wire already, so it goes out as written (`miss`).
 * - Own handler ran and nothing was kept: its response (or its error) stands, `miss`.
 * - Joined a run whose response is not kept: shared when there is one (`collapsed`); when there is
 *   none (too large, a 304, personal) this request runs its own handler (`miss`).
 * - Joined a run that failed: the failure is shared, as `getOrSet` shares a failed load with every
 *   caller that joined it: the error goes to the framework's error handling. Only a failure of the
 *   cache itself ({@link isCacheFailure}) makes this request run its own handler (`miss`).
 */
export function cachedAnswer(outcome: CacheOutcome, own: OwnRun | undefined): CachedAnswer {
  if ('error' in outcome) {
    if (own !== undefined) return ownAnswer(own, CacheStatus.miss);
    const { error } = outcome;
    if (error instanceof NotCacheable) {
      return error.response === undefined
        ? { action: 'run', cacheStatus: CacheStatus.miss }
        : { action: 'send', response: error.response, cacheStatus: CacheStatus.collapsed };
    }
    return isCacheFailure(error) ? { action: 'run', cacheStatus: CacheStatus.miss } : { action: 'fail', error };
  }
  const { value, stale, source } = outcome;
  if (own === undefined) {
    const cacheStatus = stale ? CacheStatus.stale : source === 'loader' ? CacheStatus.collapsed : CacheStatus.hit;
    return { action: 'send', response: value, cacheStatus };
  }
  if (!stale) return ownAnswer(own, CacheStatus.stored);
  if ('response' in own && own.response.body === null) return { action: 'own', cacheStatus: CacheStatus.miss };
  return { action: 'send', response: value, cacheStatus: CacheStatus.stale };
}
