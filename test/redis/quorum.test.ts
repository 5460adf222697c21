/**
 * Records on one node, the in-flight lock on a Redlock quorum of three independent masters
 * (the first of which also holds the records): conformance, extras, and what masters that pause,
 * die or come back empty do to claims.
 */
import { randomUUID } from 'node:crypto';
import { StoreError, type StoredResponse } from '@idem/core';
import { LockUnavailableError, redisStore, type RedisStore, type RedisStoreOptions } from '@idem/redis';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../harness/wait.js';
import { redisStoreExtras } from './store-extras.js';
import { startMasters, type RedisServer } from '../harness/redis.mjs';
import { storeConformance } from '@idem/core/conformance';

let masters: RedisServer[];
let client: Redis;
let lockClients: Redis[];
const connections: Redis[] = [];

function connect(server: RedisServer): Redis {
  const c = new Redis(server.url, { retryStrategy: () => 50 });
  // Masters die in these tests; reconnect errors are expected.
  c.on('error', () => {});
  connections.push(c);
  return c;
}

beforeAll(async () => {
  masters = await startMasters(3);
  client = connect(masters[0] as RedisServer);
  lockClients = [client, connect(masters[1] as RedisServer), connect(masters[2] as RedisServer)];
});

afterAll(async () => {
  for (const c of connections) c.disconnect();
  await Promise.all((masters ?? []).map((m) => m.stop()));
});

const base: Partial<RedisStoreOptions> = { commandTimeout: 300, pollInterval: 100 };
const body = (text: string): StoredResponse => ({ status: 201, headers: {}, body: new Uint8Array(Buffer.from(text)) });

// A claim on several masters is a Redlock round first: this store has no getOrClaim.
storeConformance(
  { describe, it, afterEach },
  'redis, three lock masters',
  () => redisStore({ client, lockClients, ...base }),
  { capabilities: { getOrClaim: false } },
);

redisStoreExtras('three lock masters', {
  client: () => client,
  make: (overrides) => redisStore({ client, lockClients, ...base, ...overrides }),
  makeElsewhere: (overrides) => {
    const own = masters.map(connect);
    return redisStore({ client: own[0] as Redis, lockClients: own, ...base, ...overrides });
  },
  subscribers: async (channel) => Number(((await client.pubsub('NUMSUB', channel)) as [string, number])[1]),
});

describe('three lock masters under failure', () => {
  const opened: RedisStore[] = [];
  const make = (overrides: Partial<RedisStoreOptions> = {}): RedisStore => {
    const store = redisStore({ client, lockClients, ...base, ...overrides });
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const m of masters) m.resume();
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('claims, refuses and completes with one lock master paused', async () => {
    const store = make();
    (masters[1] as RedisServer).pause();
    const key = randomUUID();
    const claim = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
    expect(claim.acquired).toBe(true);
    // Contention is still an answer, not a failure, though one master says nothing.
    const second = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
    expect(second).toMatchObject({ acquired: false, record: { state: 'in_flight', fingerprint: 'fp' } });
    if (!claim.acquired) return;
    expect(await store.extend(claim.lease, 10_000)).toBe(true);
    expect(await store.complete(claim.lease, body('one down'), { fingerprint: 'fp', ttl: 60_000 })).toBe(true);
    expect((await store.get(key))?.state).toBe('completed');
  });

  it('throws LockUnavailableError (503), not contention, with two lock masters paused', async () => {
    const store = make();
    (masters[1] as RedisServer).pause();
    (masters[2] as RedisServer).pause();
    const started = Date.now();
    const error = await store.claim(randomUUID(), { fingerprint: null, lockTtl: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('keeps a stored response when the lock release after it fails', async () => {
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_: object, msg?: string) => void warnings.push(msg ?? ''),
    };
    const store = make({ logger });
    const key = randomUUID();
    const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
    if (!claim.acquired) throw new Error('claim failed');
    (masters[1] as RedisServer).pause();
    (masters[2] as RedisServer).pause();
    expect(await store.complete(claim.lease, body('kept'), { fingerprint: null, ttl: 60_000 })).toBe(true);
    expect(warnings.some((w) => w.includes('releasing the lock after storing the response failed'))).toBe(true);
    const record = await store.get(key);
    expect(record?.state === 'completed' && Buffer.from(record.response.body).toString()).toBe('kept');
  });

  it('works with one lock master killed and recovers when it returns', async () => {
    const store = make();
    const master = masters[2] as RedisServer;
    await master.kill();
    const key = randomUUID();
    const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
    if (!claim.acquired) throw new Error('claim failed with one master down');
    expect(await store.complete(claim.lease, body('ok'), { fingerprint: null, ttl: 60_000 })).toBe(true);
    await (masters[1] as RedisServer).kill();
    await expect(store.claim(randomUUID(), { fingerprint: null, lockTtl: 10_000 })).rejects.toBeInstanceOf(StoreError);
    await master.restart();
    await (masters[1] as RedisServer).restart();
    const next = await until(
      () => store.claim(randomUUID(), { fingerprint: null, lockTtl: 10_000 }).catch(() => undefined),
      'a claim after the masters returned',
    );
    expect(next.acquired).toBe(true);
  });

  it('never runs twice when lock masters restart empty under a running holder: the record fences', async () => {
    const store = make();
    const key = randomUUID();
    const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
    if (!claim.acquired) throw new Error('claim failed');
    // Redlock's known weak spot: a majority of masters forget the lock.
    await Promise.all([(masters[1] as RedisServer).restart(), (masters[2] as RedisServer).restart()]);
    const intruder = await until(
      () => store.claim(key, { fingerprint: null, lockTtl: 10_000 }).catch(() => undefined),
      'an answer from the restarted masters',
    );
    expect(intruder).toMatchObject({ acquired: false, record: { state: 'in_flight' } });
    expect(await store.complete(claim.lease, body('holder'), { fingerprint: null, ttl: 60_000 })).toBe(true);
  });
});
