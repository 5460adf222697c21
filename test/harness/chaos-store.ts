/**
 * Wraps a real store and makes chosen operations fail on demand, for the engine's failure paths
 * (503 fail-closed, fail-open). The Redis fault tests break real servers; this covers the
 * adapters' handling of a store error on every store alike.
 */
import type { IdempotencyRecord, IdempotencyStore } from '@idem/core';

type Operation = 'get' | 'claim' | 'extend' | 'complete' | 'release' | 'waitFor' | 'delete';

export interface ChaosStore extends IdempotencyStore {
  /** Makes `operation` throw until `heal()`. */
  break(...operations: Operation[]): void;
  heal(): void;
}

export function chaosStore(inner: IdempotencyStore): ChaosStore {
  const broken = new Set<Operation>();
  const guard =
    <A extends unknown[], R>(operation: Operation, fn: (...args: A) => Promise<R>) =>
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

export interface ForgingStore extends IdempotencyStore {
  /** The next read (`get`, or `getOrClaim` when offered) answers `record` instead of the store's. */
  forge(record: unknown): void;
}

/**
 * Wraps a real store so that the next read returns a record of the test's making: corrupt,
 * tampered with, or of an older format, as a shared Redis may hold. With `getOrClaim: true` the
 * wrapper offers `getOrClaim` (the engine's one-round-trip read), else only `get` and `claim`.
 */
export function forgingStore(inner: IdempotencyStore, options: { getOrClaim: boolean }): ForgingStore {
  let forged: { record: unknown } | undefined;
  const take = (): { record: unknown } | undefined => {
    const once = forged;
    forged = undefined;
    return once;
  };
  const store: ForgingStore = {
    name: `forging(${inner.name})`,
    get: (k) => {
      const once = take();
      return once === undefined ? inner.get(k) : Promise.resolve(once.record as IdempotencyRecord);
    },
    claim: (k, o) => inner.claim(k, o),
    extend: (l, t) => inner.extend(l, t),
    complete: (l, r, o) => inner.complete(l, r, o),
    release: (l) => inner.release(l),
    waitFor: (k, t) => inner.waitFor(k, t),
    delete: (k) => inner.delete(k),
    close: () => inner.close?.() ?? Promise.resolve(),
    forge: (record) => void (forged = { record }),
  };
  if (options.getOrClaim) {
    store.getOrClaim = (k, o) => {
      const once = take();
      if (once !== undefined) return Promise.resolve({ acquired: false, record: once.record as IdempotencyRecord });
      return inner.getOrClaim !== undefined ? inner.getOrClaim(k, o) : inner.claim(k, o);
    };
  }
  return store;
}
