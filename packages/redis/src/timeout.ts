import { bounded } from '@idem/redis-kit';
import { RedisTimeoutError } from './errors.js';

/**
 * Settles with `promise`, or rejects with {@link RedisTimeoutError} after `ms` (the kit's bounded
 * call with the store's own error). `onFailure` runs once before a rejection (a timeout or the
 * command's own error).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, operation: string, onFailure?: () => void): Promise<T> {
  return bounded(promise, ms, () => new RedisTimeoutError(operation, ms), onFailure);
}
