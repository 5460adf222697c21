/**
 * The Redis store on a single node: the shared conformance suite, the Redis extras, and what a
 * paused or killed server does to each operation (a bounded throw, then recovery on the same store).
 */
import { randomUUID } from 'node:crypto';
import { StoreError } from '@idem/core';
import { RedisTimeoutError, redisStore, type RedisStore, type RedisStoreOptions } from '@idem/redis';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../harness/wait.js';
import { redisStoreExtras } from './store-extras.js';
import { RedisServer } from '../harness/redis.mjs';
import { storeConformance } from '@idem/core/conformance';

let server: RedisServer;
let client: Redis;
const extraClients: Redis[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  client = quiet(new Redis(server.url));
});

/** The kill test takes the server away from every connection; their reconnect errors are expected. */
function quiet(c: Redis): Redis {
  c.on('error', () => {});
  return c;
}

afterAll(async () => {
  for (const c of [client, ...extraClients]) c?.disconnect();
  await server?.stop();
});

const base: Partial<RedisStoreOptions> = { commandTimeout: 1_000, pollInterval: 100 };

storeConformance({ describe, it, afterEach }, 'redis, single node', () => redisStore({ client, ...base }));

redisStoreExtras('single node', {
  client: () => client,
  make: (overrides) => redisStore({ client, ...base, ...overrides }),
  makeElsewhere: (overrides) => {
    const own = quiet(new Redis(server.url));
    extraClients.push(own);
    return redisStore({ client: own, ...base, ...overrides });
  },
  subscribers: async (channel) => Number(((await client.pubsub('NUMSUB', channel)) as [string, number])[1]),
});

describe('redis store on a single node: admin and failures', () => {
  const opened: RedisStore[] = [];
  afterEach(async () => {
    server.resume();
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  const make = (c: Redis, overrides: Partial<RedisStoreOptions> = {}): RedisStore => {
    const store = redisStore({ client: c, ...base, ...overrides });
    opened.push(store);
    return store;
  };

  it('counts and clears with SCAN, never KEYS', async () => {
    const store = make(client, { prefix: `scan${randomUUID().slice(0, 8)}:` });
    for (let i = 0; i < 1_200; i++) {
      const claim = await store.claim(`k${i}`, { fingerprint: null, lockTtl: 10_000 });
      if (claim.acquired && i % 2 === 0)
        await store.complete(
          claim.lease,
          { status: 200, headers: {}, body: new Uint8Array() },
          { fingerprint: null, ttl: 60_000 },
        );
    }
    await server.resetStats();
    expect(await store.count()).toBe(1_200);
    // 600 completed records and 600 in-flight ones: on one node the in-flight record is the lock.
    expect(await store.clear()).toBe(1_200);
    expect(await store.count()).toBe(0);
    const stats = await server.commandStats();
    expect(stats.keys).toBeUndefined();
    expect(stats.scan).toBeGreaterThan(2);
  });

  it('works on a client with an ioredis keyPrefix, admin helpers included', async () => {
    const own = quiet(new Redis(server.url, { keyPrefix: 'app:' }));
    extraClients.push(own);
    const store = make(own, { prefix: 'kp:' });
    const key = randomUUID();
    const claim = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
    if (!claim.acquired) throw new Error('claim failed');
    // On one node the in-flight record is the lock: no separate lock key.
    expect(await client.exists(`app:kp:{${key}}:rec`)).toBe(1);
    expect(await client.exists(`app:kp:{${key}}:lock`)).toBe(0);
    expect((await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 })).acquired).toBe(false);
    expect(
      await store.complete(
        claim.lease,
        { status: 200, headers: {}, body: new Uint8Array([7]) },
        { fingerprint: 'fp', ttl: 60_000 },
      ),
    ).toBe(true);
    expect(await client.getrange(`app:kp:{${key}}:rec`, 0, 0)).toBe('c');
    expect(await store.count()).toBe(1);
    expect(await store.clear()).toBe(1);
    expect(await client.exists(`app:kp:{${key}}:rec`)).toBe(0);
  });

  it('answers a paused server with a RedisTimeoutError within commandTimeout, then recovers on the same store', async () => {
    const own = quiet(new Redis(server.url));
    extraClients.push(own);
    const store = make(own, { commandTimeout: 200 });
    const done = randomUUID();
    const claim = await store.claim(done, { fingerprint: null, lockTtl: 10_000 });
    if (!claim.acquired) throw new Error('claim failed');

    server.pause();
    const key = randomUUID();
    for (const [operation, call] of [
      ['get', () => store.get(key)],
      ['claim', () => store.claim(key, { fingerprint: null, lockTtl: 1_000 })],
      [
        'complete',
        () =>
          store.complete(
            claim.lease,
            { status: 200, headers: {}, body: new Uint8Array() },
            { fingerprint: null, ttl: 60_000 },
          ),
      ],
      ['waitFor', () => store.waitFor(done, 5_000)],
      ['extend', () => store.extend(claim.lease, 10_000)],
    ] as const) {
      const started = Date.now();
      const error = await (call as () => Promise<unknown>)().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, operation).toBeInstanceOf(StoreError);
      // A silent node is a timeout. (On one node the claim is a single script, not a Redlock
      // round: LockUnavailableError is for lock masters, see redis-quorum.test.ts.)
      expect(error, operation).toBeInstanceOf(RedisTimeoutError);
      expect(Date.now() - started, operation).toBeLessThan(1_000);
    }

    server.resume();
    // The same store, no restart: the next calls succeed.
    const fresh = randomUUID();
    const next = await until(
      () => store.claim(fresh, { fingerprint: null, lockTtl: 10_000 }).catch(() => undefined),
      'a claim after resume',
    );
    expect(next.acquired).toBe(true);
    // The claim that timed out while paused ran late; it must not block its key for a whole lease.
    await until(
      async () => (await store.claim(key, { fingerprint: null, lockTtl: 10_000 })).acquired,
      'the timed-out claim to be undone',
      3_000,
    );
  });

  it('fails fast while the server is down and recovers when it is back, on the same store', async () => {
    const own = quiet(new Redis(server.url, { retryStrategy: () => 50 }));
    extraClients.push(own);
    const store = make(own, { commandTimeout: 200 });
    expect((await store.claim(randomUUID(), { fingerprint: null, lockTtl: 10_000 })).acquired).toBe(true);
    await server.kill();
    await expect(store.get(randomUUID())).rejects.toBeInstanceOf(StoreError);
    await expect(store.claim(randomUUID(), { fingerprint: null, lockTtl: 10_000 })).rejects.toBeInstanceOf(StoreError);
    await server.restart();
    const key = randomUUID();
    const claim = await until(
      () => store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 }).catch(() => undefined),
      'a claim after restart',
    );
    expect(claim.acquired).toBe(true);
    // Scripts were flushed by the restart; ioredis reloads them.
    if (claim.acquired)
      expect(
        await store.complete(
          claim.lease,
          { status: 201, headers: {}, body: new Uint8Array([1]) },
          { fingerprint: 'fp', ttl: 60_000 },
        ),
      ).toBe(true);
    expect((await store.get(key))?.state).toBe('completed');
  });
});
