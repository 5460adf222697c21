/**
 * Errors of the Redis store. Each is a core `StoreError`, so the engine maps it to 503 (or an
 * unprotected run with `onStoreError: 'fail-open'`) and logs which operation failed; `code` is
 * stable for alerting.
 */
import { StoreError } from '@idem/core';
import { brand } from '@idem/core/adapter';

/**
 * A Redis call did not answer within `commandTimeout` (server paused, overloaded or gone).
 *
 * @example
 * mw.events.on('storeError', ({ error }) => {
 *   if (error instanceof RedisTimeoutError) metrics.redisTimeouts.inc();
 * });
 */
export class RedisTimeoutError extends StoreError {
  readonly code = 'redis_timeout';
  readonly timeoutMs: number;

  constructor(operation: string, timeoutMs: number) {
    super(operation, new Error(`no answer from Redis within ${timeoutMs} ms`));
    this.name = 'RedisTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Too few lock masters answered to decide (fewer than a quorum), so the lock can be neither taken
 * nor refused with certainty. Contention is never this error: it is an answer.
 *
 * @example
 * if (error instanceof LockUnavailableError) log.warn(`${error.answered}/${error.quorum} lock masters answered`);
 */
export class LockUnavailableError extends StoreError {
  readonly code = 'lock_unavailable';
  /** Masters that answered in time. */
  readonly answered: number;
  /** Masters that must answer for a quorum. */
  readonly quorum: number;

  constructor(operation: string, answered: number, quorum: number, cause?: Error) {
    const why = cause === undefined ? '' : ` (${cause.message})`;
    super(
      operation,
      new Error(`only ${answered} of the lock masters answered, ${quorum} are needed for a quorum${why}`),
    );
    this.name = 'LockUnavailableError';
    this.answered = answered;
    this.quorum = quorum;
  }
}

brand(RedisTimeoutError, 'RedisTimeoutError');
brand(LockUnavailableError, 'LockUnavailableError');
