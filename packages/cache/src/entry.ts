import type { Entry } from './memory-tier.js';
import type { ResolvedCallOptions } from './options.js';
import type { CacheResult, Source } from './types.js';

/**
 * A new entry for `value`, fresh for the call's ttl shortened by up to `jitter` (so keys written
 * together do not expire together), then stale for its grace.
 * @internal
 */
export function createEntry(value: unknown, call: ResolvedCallOptions, now: number, jitter: number): Entry {
  const ttl = jitter === 0 ? call.ttl : Math.max(1, Math.round(call.ttl * (1 - Math.random() * jitter)));
  return {
    value,
    createdAt: now,
    expiresAt: now + ttl,
    staleUntil: now + ttl + call.grace,
    tags: call.tags,
    storedAt: 0,
    retryAt: 0,
  };
}

/** What a caller is answered for `entry`. @internal */
export function toResult<T>(entry: Entry, stale: boolean, source: Source): CacheResult<T> {
  return {
    value: entry.value as T,
    stale,
    source,
    createdAt: entry.createdAt,
    expiresAt: entry.expiresAt,
    staleUntil: entry.staleUntil,
    tags: entry.tags,
  };
}
