/**
 * The loader lock is released from one place, on every way out of a load: the instance waiting on
 * it goes on at once (well before the polling backstop), whatever became of the load.
 */
import { randomUUID } from 'node:crypto';
import { type Cache, type CacheOptions } from '@idem/cache';
import { describe, expect, it } from 'vitest';
import { within, type Deferred } from '../harness/wait.js';
import { heldLoad, nextEvent, useRedisCaches } from './helpers.js';

const redis = useRedisCaches();

/** An instance of a service: its own client and cache, with its bus subscribed. */
async function instance(options: CacheOptions = {}): Promise<Cache> {
  // A waiter can only be woken by the bus: polling and the lock's lease take far longer than `within`.
  const cache = redis.open({ namespace: 'single-flight', pollInterval: '30s', lockTtl: '30s', ...options });
  if (!cache.stats().bus.connected) await nextEvent(cache, 'bus', (e) => e.state === 'connected');
  return cache;
}

interface HeldLock {
  a: Cache;
  b: Cache;
  key: string;
  /** a's call, whose loader holds the lock until `gate` settles. */
  first: Promise<unknown>;
  /** b's call, waiting for a's value. */
  second: Promise<unknown>;
  gate: Deferred<unknown>;
}

/** Instance `a` holds the loader lock of a fresh key and instance `b` waits for it. */
async function lockHeldByA(): Promise<HeldLock> {
  const a = await instance();
  const b = await instance();
  const key = `k-${randomUUID()}`;
  const { call: first, gate } = await heldLoad<unknown>(a, key);
  // b's miss in Redis is told in the same tick as it starts waiting on the bus.
  const waiting = nextEvent(b, 'miss', (e) => e.key === key && e.layer === 'l2');
  const second = b.getOrSet(key, () => 'from b');
  await waiting;
  return { a, b, key, first, second, gate };
}

describe('the loader lock', () => {
  it('is released when the loader fails: the waiting instance loads at once', async () => {
    const { first, second, gate } = await lockHeldByA();
    gate.reject(new Error('upstream down'));
    await expect(first).rejects.toThrow('upstream down');
    expect(await within(second, 2_000, 'the waiting instance')).toBe('from b');
  });

  it('is released when the load was invalidated meanwhile: the waiter loads its own', async () => {
    const { a, key, first, second, gate } = await lockHeldByA();
    await a.delete(key);
    gate.resolve('from a, before the delete');
    expect(await first).toBe('from a, before the delete');
    expect(await within(second, 2_000, 'the waiting instance')).toBe('from b');
  });

  it('is released when the value cannot be written to Redis: the waiter loads its own', async () => {
    const { a, first, second, gate } = await lockHeldByA();
    const reported = nextEvent(a, 'l2Error', (e) => e.error.code === 'cache_serialization');
    gate.resolve(10n); // JSON has no BigInt: kept in a's L1 only.
    expect(await first).toBe(10n);
    await reported;
    expect(await within(second, 2_000, 'the waiting instance')).toBe('from b');
  });

  it('is freed by the write itself when the value is stored: the waiter gets that value', async () => {
    const { first, second, gate } = await lockHeldByA();
    gate.resolve('from a');
    expect(await first).toBe('from a');
    expect(await within(second, 2_000, 'the waiting instance')).toBe('from a');
  });
});
