/**
 * Every `Cache-Status` value (RFC 9211) that `cached()` answers with, in every adapter: the cache
 * names itself `idem`, `hit` is an answer from the cache, `fwd=miss` one the handler produced.
 * Adapters write these and nothing else; the READMEs list them.
 */

/** The response header that says how the cache answered. */
export const CACHE_STATUS_HEADER = 'Cache-Status';

/** The values of {@link CACHE_STATUS_HEADER}. */
export const CacheStatus = {
  /** Answered from the cache (memory or Redis), fresh. */
  hit: 'idem; hit',
  /** Answered from the cache past its ttl, within grace: the handler failed or was too slow. */
  stale: 'idem; hit; detail=stale',
  /** Not in the cache: this request's handler answered and its response was kept. */
  stored: 'idem; fwd=miss; stored',
  /** Not in the cache: another request's handler run, which this one joined, answered it. */
  collapsed: 'idem; fwd=miss; collapsed',
  /** Not in the cache: this request's handler answered and nothing was kept. */
  miss: 'idem; fwd=miss',
} as const;

/** One of the {@link CacheStatus} values. */
export type CacheStatusValue = (typeof CacheStatus)[keyof typeof CacheStatus];
