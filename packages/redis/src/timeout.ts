import { RedisTimeoutError } from './errors.js';

/**
 * Settles with `promise`, or rejects with {@link RedisTimeoutError} after `ms`. The command itself
 * cannot be taken back from ioredis' queue; when it settles later, its outcome is dropped.
 * `onFailure` runs once before a rejection (a timeout or the command's own error).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, operation: string, onFailure?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onFailure?.();
      reject(new RedisTimeoutError(operation, ms));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        onFailure?.();
        reject(error);
      },
    );
  });
}
