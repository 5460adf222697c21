import { RedisTimeoutError } from './errors.js';

/**
 * Settles with `promise`, or rejects with {@link RedisTimeoutError} after `ms`. The command itself
 * cannot be taken back from ioredis' queue; when it settles later, its outcome is dropped.
 * `onFailure` runs once before a rejection (a timeout or the command's own error).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, operation: string, onFailure?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let failed = false;
    const fail = (error: unknown): void => {
      // A command that timed out may still reject later (its connection closed): fail once.
      if (failed) return;
      failed = true;
      onFailure?.();
      reject(error);
    };
    const timer = setTimeout(() => fail(new RedisTimeoutError(operation, ms)), ms);
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
