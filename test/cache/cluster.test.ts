/**
 * The read-through cache on a Redis Cluster: `clear()` must reach the keys of a namespace on
 * whichever master holds its slot. SCAN on a Cluster client goes to one node, so a clear that
 * scanned only the client left the other masters' entries behind for every instance to read.
 */
import { randomUUID } from 'node:crypto';
import { createCache, type Cache } from '@idem/cache';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busConnected } from './helpers.js';
import { startCluster, type RedisCluster } from '../harness/redis.mjs';

let cluster: RedisCluster;
const clients: Cluster[] = [];
const caches: Cache[] = [];

beforeAll(async () => {
  cluster = await startCluster(3);
});
afterAll(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  for (const client of clients) client.disconnect();
  await cluster?.stop();
});

/** A cache of `namespace` on its own Cluster client, as one instance of a service would have. */
async function instance(namespace: string): Promise<Cache> {
  const client = new Cluster(cluster.startupNodes);
  clients.push(client);
  await new Promise((resolve) => client.once('ready', resolve));
  // The cache's options type a single node; a Cluster is what this instance runs on.
  const cache = createCache({ redis: client as unknown as Redis, namespace });
  caches.push(cache);
  await busConnected(cache);
  return cache;
}

describe('cache on a Redis Cluster', () => {
  it('clear() removes the entries of a namespace on every master, so another instance loads afresh', async () => {
    // Namespaces are hash tags: nine of them spread over the three masters.
    const namespaces = Array.from({ length: 9 }, (_, i) => `ns${i}-${randomUUID().slice(0, 8)}`);
    const writers = await Promise.all(namespaces.map((namespace) => instance(namespace)));
    for (const writer of writers) {
      for (let i = 0; i < 5; i++) await writer.set(`k${i}`, 'old', { tags: ['t'] });
    }
    const masters = (clients[0] as Cluster).nodes('master');
    const holding = await Promise.all(masters.map(async (master) => (await master.dbsize()) > 0));
    expect(holding.filter(Boolean).length).toBeGreaterThan(1);

    for (const [i, writer] of writers.entries()) {
      await writer.clear();
      // Another instance never read these keys, so only Redis could answer it the old value.
      const reader = await instance(namespaces[i] as string);
      for (let k = 0; k < 5; k++)
        expect(await reader.getOrSet(`k${k}`, () => 'new'), `${namespaces[i]} k${k}`).toBe('new');
    }
  });
});
