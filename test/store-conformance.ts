/**
 * The store conformance suite: every IdempotencyStore passes the same tests. Call it from a
 * `*.test.ts` file with a factory; each test gets a fresh store and random keys.
 *
 * @example
 * storeConformance('memory', () => memoryStore());
 */
import { randomUUID } from 'node:crypto';
import type { IdempotencyStore, StoredResponse } from '@idem/core';
import { afterEach, describe, expect, it } from 'vitest';

export interface ConformanceOptions {
  /** Extra store-specific tests, run inside the same describe block. */
  extras?: (ctx: { create: () => Promise<IdempotencyStore> }) => void;
}

const response = (body = 'hello'): StoredResponse => ({
  status: 201,
  headers: { 'content-type': 'text/plain; charset=utf-8', location: '/orders/1', 'x-multi': ['a', 'b'] },
  body: new Uint8Array(Buffer.from(body)),
});

const newKey = (): string => `k-${randomUUID()}`;

export function storeConformance(name: string, createStore: () => IdempotencyStore | Promise<IdempotencyStore>, options: ConformanceOptions = {}): void {
  describe(`store conformance: ${name}`, () => {
    const opened: IdempotencyStore[] = [];
    const create = async (): Promise<IdempotencyStore> => {
      const store = await createStore();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close?.()));
    });

    it('knows nothing of a key it never saw', async () => {
      const store = await create();
      expect(await store.get(newKey())).toBeUndefined();
    });

    it('claims a fresh key once; the second claim sees the in-flight record with its fingerprint', async () => {
      const store = await create();
      const key = newKey();
      const first = await store.claim(key, { fingerprint: 'fp1', lockTtl: 10_000 });
      expect(first.acquired).toBe(true);
      const second = await store.claim(key, { fingerprint: 'fp2', lockTtl: 10_000 });
      expect(second.acquired).toBe(false);
      if (!second.acquired) expect(second.record).toMatchObject({ state: 'in_flight', fingerprint: 'fp1' });
      expect(await store.get(key)).toMatchObject({ state: 'in_flight', fingerprint: 'fp1' });
    });

    it('exactly one of many concurrent claims wins', async () => {
      const store = await create();
      const key = newKey();
      const results = await Promise.all(Array.from({ length: 25 }, () => store.claim(key, { fingerprint: null, lockTtl: 10_000 })));
      expect(results.filter((r) => r.acquired)).toHaveLength(1);
    });

    it('stores a completed response byte for byte, with its headers and fingerprint', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      const bytes = new Uint8Array([0, 1, 2, 255, 254, 10, 13]);
      expect(await store.complete(claim.lease, { ...response(), body: bytes }, { fingerprint: 'fp', ttl: 60_000 })).toBe(true);
      const record = await store.get(key);
      expect(record?.state).toBe('completed');
      if (record?.state !== 'completed') return;
      expect(record.fingerprint).toBe('fp');
      expect(record.response.status).toBe(201);
      expect(record.response.headers).toEqual(response().headers);
      expect(Buffer.from(record.response.body).equals(Buffer.from(bytes))).toBe(true);
      expect(typeof record.completedAt).toBe('number');
    });

    it('refuses a claim on a completed key and hands back the record', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      await store.complete(claim.lease, response(), { fingerprint: 'fp', ttl: 60_000 });
      const again = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(again.acquired).toBe(false);
      if (!again.acquired) expect(again.record?.state).toBe('completed');
    });

    it('release frees the key so a retry can claim it', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      await store.release(claim.lease);
      expect(await store.get(key)).toBeUndefined();
      expect((await store.claim(key, { fingerprint: null, lockTtl: 10_000 })).acquired).toBe(true);
    });

    it('fences: a lease that lost the key can neither complete, extend nor release it', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      const stranger = { key, token: randomUUID() };
      expect(await store.complete(stranger, response('late'), { fingerprint: null, ttl: 60_000 })).toBe(false);
      expect(await store.extend(stranger, 10_000)).toBe(false);
      await store.release(stranger);
      expect(await store.get(key)).toMatchObject({ state: 'in_flight' });
      expect(await store.complete(claim.lease, response('owner'), { fingerprint: null, ttl: 60_000 })).toBe(true);
    });

    it('a lease that expired is fenced out and the key can be claimed anew', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 30 });
      if (!claim.acquired) throw new Error('claim failed');
      // waitFor resolves when the lease lapses: no sleeping on a guess.
      await store.waitFor(key, 5_000);
      expect(await store.get(key)).toBeUndefined();
      const next = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
      expect(next.acquired).toBe(true);
      expect(await store.complete(claim.lease, response('late'), { fingerprint: null, ttl: 60_000 })).toBe(false);
      if (!next.acquired) return;
      expect(await store.complete(next.lease, response('new owner'), { fingerprint: null, ttl: 60_000 })).toBe(true);
      const record = await store.get(key);
      expect(record?.state === 'completed' && Buffer.from(record.response.body).toString()).toBe('new owner');
    });

    it('extend keeps a lease alive past its first lockTtl', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 200 });
      if (!claim.acquired) throw new Error('claim failed');
      expect(await store.extend(claim.lease, 60_000)).toBe(true);
      // Wait until past the original 200 ms lease: waitFor must not report a change.
      const started = Date.now();
      await store.waitFor(key, 400);
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      expect(await store.get(key)).toMatchObject({ state: 'in_flight' });
      expect(await store.complete(claim.lease, response(), { fingerprint: null, ttl: 60_000 })).toBe(true);
    });

    it('waitFor wakes when the key completes, well before its timeout', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 30_000 });
      if (!claim.acquired) throw new Error('claim failed');
      const waiting = store.waitFor(key, 20_000).then(() => 'woken');
      await store.complete(claim.lease, response(), { fingerprint: null, ttl: 60_000 });
      const winner = await Promise.race([waiting, new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000))]);
      expect(winner).toBe('woken');
      expect((await store.get(key))?.state).toBe('completed');
    });

    it('waitFor wakes when the key is released', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 30_000 });
      if (!claim.acquired) throw new Error('claim failed');
      const waiting = store.waitFor(key, 20_000).then(() => 'woken');
      await store.release(claim.lease);
      const winner = await Promise.race([waiting, new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000))]);
      expect(winner).toBe('woken');
    });

    it('waitFor on a key that is not in flight returns at once', async () => {
      const store = await create();
      const winner = await Promise.race([store.waitFor(newKey(), 20_000).then(() => 'returned'), new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
      expect(winner).toBe('returned');
    });

    it('waitFor gives up after its timeout while the key stays in flight', async () => {
      const store = await create();
      const key = newKey();
      await store.claim(key, { fingerprint: null, lockTtl: 30_000 });
      await store.waitFor(key, 50);
      expect(await store.get(key)).toMatchObject({ state: 'in_flight' });
    });

    it('completed records expire after their ttl', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      await store.complete(claim.lease, response(), { fingerprint: null, ttl: 40 });
      // A fresh in-flight claim on another key with the same short lease is our clock: when it
      // lapses (waitFor resolves) more than 40 ms have passed.
      const clockKey = newKey();
      await store.claim(clockKey, { fingerprint: null, lockTtl: 60 });
      await store.waitFor(clockKey, 5_000);
      expect(await store.get(key)).toBeUndefined();
    });

    it('keeps keys apart', async () => {
      const store = await create();
      const [a, b] = [newKey(), newKey()];
      const claimA = await store.claim(a, { fingerprint: 'a', lockTtl: 10_000 });
      expect((await store.claim(b, { fingerprint: 'b', lockTtl: 10_000 })).acquired).toBe(true);
      if (!claimA.acquired) throw new Error('claim failed');
      await store.complete(claimA.lease, response('A'), { fingerprint: 'a', ttl: 60_000 });
      expect((await store.get(b))?.state).toBe('in_flight');
    });

    it('delete removes a record', async () => {
      const store = await create();
      const key = newKey();
      const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      await store.complete(claim.lease, response(), { fingerprint: null, ttl: 60_000 });
      expect(await store.delete(key)).toBe(true);
      expect(await store.get(key)).toBeUndefined();
      expect(await store.delete(key)).toBe(false);
    });

    it('getOrClaim, where a store offers it, claims a fresh key and answers a standing record like claim', async () => {
      const store = await create();
      if (store.getOrClaim === undefined) return;
      const key = newKey();
      const first = await store.getOrClaim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(first.acquired).toBe(true);
      const busy = await store.getOrClaim(key, { fingerprint: 'other', lockTtl: 10_000 });
      expect(busy).toMatchObject({ acquired: false, record: { state: 'in_flight', fingerprint: 'fp' } });
      if (!first.acquired) return;
      await store.complete(first.lease, response('once'), { fingerprint: 'fp', ttl: 60_000 });
      const done = await store.getOrClaim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(done.acquired).toBe(false);
      if (!done.acquired && done.record?.state === 'completed') expect(Buffer.from(done.record.response.body).toString()).toBe('once');
      else throw new Error('expected the completed record');
      const racing = await Promise.all(Array.from({ length: 20 }, () => store.getOrClaim!(newKey(), { fingerprint: null, lockTtl: 10_000 })));
      expect(racing.every((r) => r.acquired)).toBe(true);
      const same = newKey();
      const contested = await Promise.all(Array.from({ length: 20 }, () => store.getOrClaim!(same, { fingerprint: null, lockTtl: 10_000 })));
      expect(contested.filter((r) => r.acquired)).toHaveLength(1);
    });

    options.extras?.({ create });
  });
}
