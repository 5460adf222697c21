/**
 * Every Redis call is bounded (docs/design.md, "Lock and fencing": "Every Redis call has a
 * timeout"). The error a timeout raises belongs to the package that asked: the Redis store throws
 * its `RedisTimeoutError`, the cache its `CacheError('cache_l2_timeout')`, so the kit takes a
 * factory instead of defining an error class of its own.
 */

/**
 * Settles with `promise`, or rejects with `timeoutError()` after `ms`. The command itself cannot be
 * taken back from ioredis' queue; when it settles later, its outcome is dropped (and a late
 * rejection is never unhandled). `onFailure` runs once before a rejection (a timeout or the
 * command's own error).
 *
 * @example
 * await bounded(client.get(key), 1_000, () => new RedisTimeoutError('get', 1_000));
 */
export function bounded<T>(
  promise: Promise<T>,
  ms: number,
  timeoutError: () => Error,
  onFailure?: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let failed = false;
    const fail = (error: unknown): void => {
      // A command that timed out may still reject later (its connection closed): fail once.
      if (failed) return;
      failed = true;
      onFailure?.();
      reject(error);
    };
    const timer = setTimeout(() => fail(timeoutError()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        fail(error);
      },
    );
  });
}
