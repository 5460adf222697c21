import { ConfigError } from '@idem/core';
import { brand } from '@idem/core/adapter';

/**
 * Every error @idem/cache raises itself, each with a stable `code`. Loader errors are never
 * wrapped: a caller gets back exactly what its loader threw.
 */

/**
 * Stable codes of the errors the cache raises; recognise a cache failure by its `code`, not by
 * its class. Only `cache_hard_timeout`, `cache_missing_value` and `cache_closed` ever reach a caller: a Redis failure
 * (`cache_l2_*`, `cache_breaker_open`, `cache_serialization`) is reported through the `l2Error`
 * event and logged, and the call goes on from L1 and the loader. A bad option or argument is a
 * {@link CacheConfigError} (`code: 'cache_config'`) instead.
 */
export type CacheErrorCode =
  /** `hardTimeout` passed with no stale value to serve; thrown to the caller that set it. */
  | 'cache_hard_timeout'
  /** A Redis call did not answer within `redisTimeout`. */
  | 'cache_l2_timeout'
  /** A Redis call failed, or the connection is not ready (then it is not sent at all). */
  | 'cache_l2_unavailable'
  /** The circuit breaker is open: Redis is not called until the cooldown passes. */
  | 'cache_breaker_open'
  /**
   * A value could not be serialized for Redis: it is kept in this instance's L1 only. (A stored
   * value that cannot be deserialized is read as a miss and logged, not raised.)
   */
  | 'cache_serialization'
  /** `getOrSetMany`'s loader returned no value for a key it was asked for; thrown to that call. */
  | 'cache_missing_value'
  /** The cache was used after `close()`: every method but `stats()` and `close()` rejects with it. */
  | 'cache_closed';

/**
 * An error raised by the cache. `operation` names the Redis operation for L2 errors and `key`
 * the cache key where one applies.
 *
 * @example
 * try { await cache.getOrSet('k', load, { hardTimeout: '2s' }) }
 * catch (error) { if (error instanceof CacheError && error.code === 'cache_hard_timeout') … }
 */
export class CacheError extends Error {
  /** Stable, documented code. */
  readonly code: CacheErrorCode;
  /** The cache key concerned, if any. */
  readonly key: string | undefined;
  /** The Redis operation concerned, for L2 errors. */
  readonly operation: string | undefined;

  constructor(
    code: CacheErrorCode,
    message: string,
    context: { key?: string; operation?: string; cause?: unknown } = {},
  ) {
    super(`idem cache: ${message}`, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'CacheError';
    this.code = code;
    this.key = context.key;
    this.operation = context.operation;
  }
}

/**
 * Thrown by `createCache()` (and by a call given bad per-call options) for an invalid option.
 * It is a `TypeError` and its message names the option.
 */
export class CacheConfigError extends ConfigError {
  /** Always `'cache_config'`. */
  declare readonly code: 'cache_config';

  constructor(option: string, message: string) {
    super(option, message, { code: 'cache_config', scope: 'idem cache' });
    this.name = 'CacheConfigError';
  }
}
brand(CacheConfigError, 'CacheConfigError');
brand(CacheError, 'CacheError');
