import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { isRedisClient, keyPrefixOf, mastersOf } from './client.js';

// Never connected (lazyConnect): these look at the clients, not at a server.
const opened: (Redis | Cluster)[] = [];
function lazy<T extends Redis | Cluster>(client: T): T {
  opened.push(client);
  return client;
}
afterAll(() => {
  for (const client of opened) client.disconnect();
});

describe('isRedisClient', () => {
  it('accepts an ioredis Redis and Cluster', () => {
    expect(isRedisClient(lazy(new Redis({ lazyConnect: true })))).toBe(true);
    expect(isRedisClient(lazy(new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })))).toBe(true);
  });

  it('refuses what only looks like one', () => {
    for (const value of [undefined, null, 'redis://localhost', {}, { defineCommand() {}, duplicate() {} }, () => {}]) {
      expect(isRedisClient(value), JSON.stringify(value)).toBe(false);
    }
  });
});

describe('keyPrefixOf', () => {
  it("reads a connection's keyPrefix, and none as ''", () => {
    expect(keyPrefixOf(lazy(new Redis({ lazyConnect: true })))).toBe('');
    expect(keyPrefixOf(lazy(new Redis({ lazyConnect: true, keyPrefix: 'app:' })))).toBe('app:');
  });

  it("reads a Cluster's keyPrefix from its options or from redisOptions, as ioredis applies it", () => {
    const nodes = [{ host: '127.0.0.1', port: 1 }];
    expect(keyPrefixOf(lazy(new Cluster(nodes, { lazyConnect: true, keyPrefix: 'a:' })))).toBe('a:');
    expect(keyPrefixOf(lazy(new Cluster(nodes, { lazyConnect: true, redisOptions: { keyPrefix: 'b:' } })))).toBe('b:');
  });
});

describe('mastersOf', () => {
  it('is the client itself on one node', () => {
    const client = lazy(new Redis({ lazyConnect: true }));
    expect(mastersOf(client)).toEqual([client]);
  });
});
