/**
 * The Redis store on a 3-master Cluster: conformance, extras, one slot per request key, and
 * admin helpers that scan every master.
 */
import { randomUUID } from 'node:crypto';
import { redisStore, type RedisStore, type RedisStoreOptions } from '@idem/redis';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisStoreExtras } from './store-extras.js';
import { startCluster, type RedisCluster } from '../harness/redis.mjs';
import { storeConformance } from '@idem/core/conformance';

let cluster: RedisCluster;
let client: Cluster;
const connections: Cluster[] = [];

function connect(): Cluster {
  const c = new Cluster(cluster.startupNodes);
  connections.push(c);
  return c;
}

beforeAll(async () => {
  cluster = await startCluster(3);
  client = connect();
});

afterAll(async () => {
  for (const c of connections) c.disconnect();
  await cluster?.stop();
});

const base: Partial<RedisStoreOptions> = { commandTimeout: 1_000, pollInterval: 100 };

storeConformance({ describe, it, afterEach }, 'redis, 3-master Cluster', () => redisStore({ client, ...base }));

/** Subscribers of a channel over every node (a regular SUBSCRIBE sits on one node of the Cluster). */
async function subscribers(channel: string): Promise<number> {
  const counts = await Promise.all(
    cluster.nodes.map(async (node) => Number((await node.cli('pubsub', 'numsub', channel)).split('\n')[1])),
  );
  return counts.reduce((a, b) => a + b, 0);
}

redisStoreExtras('3-master Cluster', {
  client: () => client,
  make: (overrides) => redisStore({ client, ...base, ...overrides }),
  makeElsewhere: (overrides) => redisStore({ client: connect(), ...base, ...overrides }),
  subscribers,
});

describe('redis store on a Cluster: slots and admin', () => {
  const opened: RedisStore[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('names the record, the lock and the channel of a request for one slot, and writes only the record', async () => {
    const store = redisStore({ client, ...base });
    opened.push(store);
    const key = randomUUID();
    const claim = await store.claim(key, { fingerprint: null, lockTtl: 10_000 });
    expect(claim.acquired).toBe(true);
    const node = cluster.nodes[0] as (typeof cluster.nodes)[number];
    const slots = await Promise.all(
      [`idem:{${key}}:rec`, `idem:{${key}}:lock`, `idem:{${key}}:done`].map(async (k) =>
        (await node.cli('cluster', 'keyslot', k)).trim(),
      ),
    );
    expect(new Set(slots).size).toBe(1);
    // The in-flight record is the lease there: no separate lock key on the records' nodes.
    expect(await client.getrange(`idem:{${key}}:rec`, 0, 0)).toBe('f');
    expect(await client.exists(`idem:{${key}}:lock`)).toBe(0);
  });

  it('counts and clears across every master', async () => {
    const prefix = `c${randomUUID().slice(0, 8)}:`;
    const store = redisStore({ client, ...base, prefix });
    opened.push(store);
    for (let i = 0; i < 90; i++) {
      const claim = await store.claim(`key-${i}`, { fingerprint: null, lockTtl: 10_000 });
      if (claim.acquired)
        await store.complete(
          claim.lease,
          { status: 200, headers: {}, body: new Uint8Array([i]) },
          { fingerprint: null, ttl: 60_000 },
        );
    }
    // The records are spread: every master holds some.
    for (const node of cluster.nodes)
      expect((await node.cli('--scan', '--pattern', `${prefix}*`)).trim().split('\n').length).toBeGreaterThan(5);
    expect(await store.count()).toBe(90);
    expect(await store.clear()).toBe(90);
    expect(await store.count()).toBe(0);
  });
});
