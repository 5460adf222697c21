/**
 * `@idem/core/conformance`: the store conformance suite. Every `IdempotencyStore` passes the same
 * tests, ours and yours: pass your test runner's `describe`, `it` and `afterEach` (vitest, jest,
 * mocha and node:test all fit) and a factory; each test gets a fresh store and random keys.
 * Assertions use `node:assert`, so the suite needs no particular test framework. A capability a
 * store does not have is declared, and its tests are skipped by name, never passed vacuously.
 *
 * @example
 * import { describe, it, afterEach } from 'vitest';
 * import { storeConformance } from '@idem/core/conformance';
 * storeConformance({ describe, it, afterEach }, 'my store', () => myStore());
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { recordProblem } from './record.js';
import type { ClaimResult, IdempotencyRecord, IdempotencyStore, Lease, StoredResponse } from './types.js';

type TestFn = () => Promise<void>;

/** The parts of a test runner the suite uses. */
export interface TestRunner {
  describe(name: string, body: () => void): void;
  it: { (name: string, test: TestFn): void; skip(name: string, test: TestFn): void };
  afterEach(hook: () => Promise<void>): void;
}

/** Optional store methods; each is tested where the store declares it. */
export interface StoreCapabilities {
  /** `getOrClaim()`: the read and the claim in one round trip. @default true */
  getOrClaim?: boolean;
  /** `inspect()`: the record with the time it has left, for operators. @default true */
  inspect?: boolean;
  /** `ping()`: one cheap round trip, for health checks. @default true */
  ping?: boolean;
}

export interface ConformanceOptions {
  /** What the store offers beyond the required methods. @default every capability */
  capabilities?: StoreCapabilities;
  /** Store-specific tests, registered inside the same `describe` block. */
  extras?: (context: { create: () => Promise<IdempotencyStore> }) => void;
}

const response = (body = 'hello'): StoredResponse => ({
  status: 201,
  headers: { 'content-type': 'text/plain; charset=utf-8', location: '/orders/1', 'x-multi': ['a', 'b'] },
  body: new Uint8Array(Buffer.from(body)),
});

const newKey = (): string => `k-${randomUUID()}`;

/** A record as the engine will judge it: anything the store hands back must be replayable. */
function readable(record: IdempotencyRecord | undefined): IdempotencyRecord | undefined {
  if (record !== undefined) assert.equal(recordProblem(record), undefined, 'the engine would refuse this record');
  return record;
}
const claimOptions = (fingerprint: string | null = null, lockTtl = 10_000) => ({ fingerprint, lockTtl });

function leaseOf(claim: ClaimResult): Lease {
  assert.ok(claim.acquired, 'expected the claim to be acquired');
  return claim.lease;
}

function standing(claim: ClaimResult): IdempotencyRecord | undefined {
  assert.ok(!claim.acquired, 'expected the claim to be refused');
  return readable(claim.record);
}

function bodyText(record: IdempotencyRecord | undefined): string {
  assert.equal(record?.state, 'completed');
  return Buffer.from((record as Extract<IdempotencyRecord, { state: 'completed' }>).response.body).toString();
}

/** Resolves 'timeout' after `ms`, to race a promise that should settle well before. */
function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(resolve, ms, 'timeout'));
}

/** Registers the suite for one store. */
export function storeConformance(
  runner: TestRunner,
  name: string,
  createStore: () => IdempotencyStore | Promise<IdempotencyStore>,
  options: ConformanceOptions = {},
): void {
  const { describe, it, afterEach } = runner;
  const capabilities = { getOrClaim: true, inspect: true, ping: true, ...options.capabilities };

  describe(`store conformance: ${name}`, () => {
    const opened: IdempotencyStore[] = [];
    const create = async (): Promise<IdempotencyStore> => {
      const store = await createStore();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map(async (s) => s.close?.()));
    });

    it('knows nothing of a key it never saw', async () => {
      const store = await create();
      assert.equal(await store.get(newKey()), undefined);
    });

    it('claims a fresh key once; the second claim sees the in-flight record with its fingerprint', async () => {
      const store = await create();
      const key = newKey();
      leaseOf(await store.claim(key, claimOptions('fp1')));
      const second = standing(await store.claim(key, claimOptions('fp2')));
      assert.equal(second?.state, 'in_flight');
      assert.equal(second?.fingerprint, 'fp1');
      const read = readable(await store.get(key));
      assert.equal(read?.state, 'in_flight');
      assert.equal(read?.fingerprint, 'fp1');
    });

    it('exactly one of many concurrent claims wins', async () => {
      const store = await create();
      const key = newKey();
      const results = await Promise.all(Array.from({ length: 25 }, () => store.claim(key, claimOptions())));
      assert.equal(results.filter((r) => r.acquired).length, 1);
    });

    it('stores a completed response byte for byte, with its headers and fingerprint', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions('fp')));
      const bytes = new Uint8Array([0, 1, 2, 255, 254, 10, 13]);
      assert.equal(
        await store.complete(lease, { ...response(), body: bytes }, { fingerprint: 'fp', ttl: 60_000 }),
        true,
      );
      const record = readable(await store.get(key));
      assert.equal(record?.state, 'completed');
      if (record?.state !== 'completed') return;
      assert.equal(record.fingerprint, 'fp');
      assert.equal(record.response.status, 201);
      assert.deepEqual({ ...record.response.headers }, response().headers);
      assert.ok(Buffer.from(record.response.body).equals(Buffer.from(bytes)), 'body bytes differ');
      assert.equal(typeof record.completedAt, 'number');
    });

    it('refuses a claim on a completed key and hands back the record', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions('fp')));
      await store.complete(lease, response(), { fingerprint: 'fp', ttl: 60_000 });
      assert.equal(standing(await store.claim(key, claimOptions('fp')))?.state, 'completed');
    });

    it('release frees the key so a retry can claim it', async () => {
      const store = await create();
      const key = newKey();
      await store.release(leaseOf(await store.claim(key, claimOptions())));
      assert.equal(await store.get(key), undefined);
      leaseOf(await store.claim(key, claimOptions()));
    });

    it('fences: a lease that lost the key can neither complete, extend nor release it', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions()));
      const stranger = { key, token: randomUUID() };
      assert.equal(await store.complete(stranger, response('late'), { fingerprint: null, ttl: 60_000 }), false);
      assert.equal(await store.extend(stranger, 10_000), false);
      await store.release(stranger);
      assert.equal((await store.get(key))?.state, 'in_flight');
      assert.equal(await store.complete(lease, response('owner'), { fingerprint: null, ttl: 60_000 }), true);
    });

    it('a lease that expired is fenced out and the key can be claimed anew', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions(null, 30)));
      // waitFor resolves when the lease lapses: no sleeping on a guess.
      await store.waitFor(key, 5_000);
      assert.equal(await store.get(key), undefined);
      const next = leaseOf(await store.claim(key, claimOptions()));
      assert.equal(await store.complete(lease, response('late'), { fingerprint: null, ttl: 60_000 }), false);
      assert.equal(await store.complete(next, response('new owner'), { fingerprint: null, ttl: 60_000 }), true);
      assert.equal(bodyText(await store.get(key)), 'new owner');
    });

    it('extend keeps a lease alive past its first lockTtl', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions(null, 200)));
      assert.equal(await store.extend(lease, 60_000), true);
      // Wait until past the original 200 ms lease: waitFor must not report a change.
      const started = Date.now();
      await store.waitFor(key, 400);
      assert.ok(Date.now() - started >= 350, 'waitFor returned before its timeout although the lease was extended');
      assert.equal((await store.get(key))?.state, 'in_flight');
      assert.equal(await store.complete(lease, response(), { fingerprint: null, ttl: 60_000 }), true);
    });

    it('waitFor wakes when the key completes, well before its timeout', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions(null, 30_000)));
      const waiting = store.waitFor(key, 20_000).then(() => 'woken' as const);
      await store.complete(lease, response(), { fingerprint: null, ttl: 60_000 });
      assert.equal(await Promise.race([waiting, timeout(10_000)]), 'woken');
      assert.equal((await store.get(key))?.state, 'completed');
    });

    it('waitFor wakes when the key is released', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions(null, 30_000)));
      const waiting = store.waitFor(key, 20_000).then(() => 'woken' as const);
      await store.release(lease);
      assert.equal(await Promise.race([waiting, timeout(10_000)]), 'woken');
    });

    it('waitFor on a key that is not in flight returns at once', async () => {
      const store = await create();
      assert.equal(
        await Promise.race([store.waitFor(newKey(), 20_000).then(() => 'returned' as const), timeout(10_000)]),
        'returned',
      );
    });

    it('waitFor gives up after its timeout while the key stays in flight', async () => {
      const store = await create();
      const key = newKey();
      await store.claim(key, claimOptions(null, 30_000));
      await store.waitFor(key, 50);
      assert.equal((await store.get(key))?.state, 'in_flight');
    });

    it('completed records expire after their ttl', async () => {
      const store = await create();
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions()));
      await store.complete(lease, response(), { fingerprint: null, ttl: 40 });
      // A fresh in-flight claim on another key with a short lease is our clock: when it lapses
      // (waitFor resolves) more than 40 ms have passed.
      const clockKey = newKey();
      await store.claim(clockKey, claimOptions(null, 60));
      await store.waitFor(clockKey, 5_000);
      assert.equal(await store.get(key), undefined);
    });

    it('keeps keys apart', async () => {
      const store = await create();
      const [a, b] = [newKey(), newKey()];
      const leaseA = leaseOf(await store.claim(a, claimOptions('a')));
      leaseOf(await store.claim(b, claimOptions('b')));
      await store.complete(leaseA, response('A'), { fingerprint: 'a', ttl: 60_000 });
      assert.equal((await store.get(b))?.state, 'in_flight');
    });

    it('delete removes a record', async () => {
      const store = await create();
      const key = newKey();
      await store.complete(leaseOf(await store.claim(key, claimOptions())), response(), {
        fingerprint: null,
        ttl: 60_000,
      });
      assert.equal(await store.delete(key), true);
      assert.equal(await store.get(key), undefined);
      assert.equal(await store.delete(key), false);
    });

    it('delete frees an in-flight key: a new claim wins and the old lease is fenced out', async () => {
      const store = await create();
      const key = newKey();
      const stuck = leaseOf(await store.claim(key, claimOptions('fp', 30_000)));
      assert.equal(await store.delete(key), true);
      assert.equal(await store.get(key), undefined);
      const next = leaseOf(await store.claim(key, claimOptions('fp')));
      assert.equal(await store.complete(stuck, response('stuck'), { fingerprint: 'fp', ttl: 60_000 }), false);
      assert.equal(await store.complete(next, response('re-run'), { fingerprint: 'fp', ttl: 60_000 }), true);
      assert.equal(bodyText(await store.get(key)), 're-run');
    });

    const getOrClaim = capabilities.getOrClaim ? it : it.skip;
    getOrClaim('getOrClaim claims a fresh key and answers a standing record like claim', async () => {
      const store = await create();
      assert.equal(typeof store.getOrClaim, 'function', 'the store was declared to have getOrClaim()');
      const getOrClaimOf = (key: string, fingerprint: string | null = null) =>
        (store.getOrClaim as NonNullable<IdempotencyStore['getOrClaim']>)(key, claimOptions(fingerprint));
      const key = newKey();
      const first = leaseOf(await getOrClaimOf(key, 'fp'));
      const busy = standing(await getOrClaimOf(key, 'other'));
      assert.equal(busy?.state, 'in_flight');
      assert.equal(busy?.fingerprint, 'fp');
      await store.complete(first, response('once'), { fingerprint: 'fp', ttl: 60_000 });
      assert.equal(bodyText(standing(await getOrClaimOf(key, 'fp'))), 'once');
      const racing = await Promise.all(Array.from({ length: 20 }, () => getOrClaimOf(newKey())));
      assert.ok(
        racing.every((r) => r.acquired),
        'claims of distinct keys must all win',
      );
      const same = newKey();
      const contested = await Promise.all(Array.from({ length: 20 }, () => getOrClaimOf(same)));
      assert.equal(contested.filter((r) => r.acquired).length, 1);
    });

    const inspect = capabilities.inspect ? it : it.skip;
    const inspectOf = (store: IdempotencyStore) => {
      assert.equal(typeof store.inspect, 'function', 'the store was declared to have inspect()');
      return (key: string) => (store.inspect as NonNullable<IdempotencyStore['inspect']>)(key);
    };

    inspect('inspect reports a completed record like get, with the time its ttl leaves it', async () => {
      const store = await create();
      const look = inspectOf(store);
      const key = newKey();
      assert.equal(await look(key), undefined);
      const lease = leaseOf(await store.claim(key, claimOptions('fp')));
      await store.complete(lease, response('kept'), { fingerprint: 'fp', ttl: 60_000 });
      const seen = await look(key);
      assert.ok(seen !== undefined, 'inspect found nothing where get finds a record');
      assert.equal(readable(seen.record)?.state, 'completed');
      assert.equal(seen.record.fingerprint, 'fp');
      assert.equal(bodyText(seen.record), 'kept');
      assert.ok(
        seen.expiresInMs !== null && seen.expiresInMs > 0 && seen.expiresInMs <= 60_000,
        `expiresInMs ${String(seen.expiresInMs)} is not within the 60 s ttl`,
      );
      assert.equal(await store.delete(key), true);
      assert.equal(await look(key), undefined);
    });

    inspect('inspect reports an in-flight record and changes nothing about it', async () => {
      const store = await create();
      const look = inspectOf(store);
      const key = newKey();
      const lease = leaseOf(await store.claim(key, claimOptions('fp', 10_000)));
      const seen = await look(key);
      assert.equal(readable(seen?.record)?.state, 'in_flight');
      assert.equal(seen?.record.fingerprint, 'fp');
      // A lease's end, or none for a lease that lasts as long as its holder.
      assert.ok(
        seen?.expiresInMs === null || (seen !== undefined && seen.expiresInMs > 0 && seen.expiresInMs <= 10_000),
        `expiresInMs ${String(seen?.expiresInMs)} is neither null nor within the 10 s lease`,
      );
      // Still held by its owner: a duplicate is refused, and the owner completes.
      assert.equal(standing(await store.claim(key, claimOptions('fp')))?.state, 'in_flight');
      assert.equal(await store.complete(lease, response('owner'), { fingerprint: 'fp', ttl: 60_000 }), true);
      assert.equal(bodyText((await look(key))?.record), 'owner');
    });

    const ping = capabilities.ping ? it : it.skip;
    ping('ping resolves while the store is reachable', async () => {
      const store = await create();
      assert.equal(typeof store.ping, 'function', 'the store was declared to have ping()');
      await (store.ping as NonNullable<IdempotencyStore['ping']>)();
    });

    options.extras?.({ create });
  });
}
