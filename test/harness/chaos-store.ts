/**
 * Wraps a real store and makes chosen operations fail on demand, for the engine's failure paths
 * (503 fail-closed, fail-open). The Redis fault tests break real servers; this covers the
 * adapters' handling of a store error on every store alike.
 */
import type { IdempotencyStore } from '@idem/core';

type Operation = 'get' | 'claim' | 'extend' | 'complete' | 'release' | 'waitFor' | 'delete';

export interface ChaosStore extends IdempotencyStore {
  /** Makes `operation` throw until `heal()`. */
  break(...operations: Operation[]): void;
  heal(): void;
}

export function chaosStore(inner: IdempotencyStore): ChaosStore {
  const broken = new Set<Operation>();
  const guard = <A extends unknown[], R>(operation: Operation, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (broken.has(operation)) throw new Error(`chaos: ${operation} is down`);
      return fn(...args);
    };
  return {
    name: `chaos(${inner.name})`,
    get: guard('get', (k) => inner.get(k)),
    claim: guard('claim', (k, o) => inner.claim(k, o)),
    extend: guard('extend', (l, t) => inner.extend(l, t)),
    complete: guard('complete', (l, r, o) => inner.complete(l, r, o)),
    release: guard('release', (l) => inner.release(l)),
    waitFor: guard('waitFor', (k, t) => inner.waitFor(k, t)),
    delete: guard('delete', (k) => inner.delete(k)),
    close: () => inner.close?.() ?? Promise.resolve(),
    break: (...operations) => operations.forEach((o) => broken.add(o)),
    heal: () => broken.clear(),
  };
}
