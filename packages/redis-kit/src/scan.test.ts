import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, startCluster, type RedisCluster } from '../../../test/harness/redis.mjs';
import { globEscape, scanKeys, type CallRunner } from './scan.js';

const run: CallRunner = (_operation, call) => call();

/** Every key `scanKeys` finds, and how many batches it took. */
async function found(
  client: Redis | Cluster,
  prefix: string,
  pattern: string,
  count?: number,
): Promise<{ keys: string[]; batches: number }> {
  const keys: string[] = [];
  let batches = 0;
  await scanKeys(
    client,
    prefix,
    pattern,
    (_connection, batch) => {
      batches++;
      keys.push(...batch);
    },
    { run, ...(count === undefined ? {} : { count }) },
  );
  return { keys: keys.sort(), batches };
}

/** Removes what `scanKeys` finds, each batch on the connection it came from. */
async function removeAll(client: Redis | Cluster, prefix: string): Promise<number> {
  let removed = 0;
  await scanKeys(
    client,
    prefix,
    '*',
    async (connection, keys) => {
      for (const key of keys) removed += await connection.unlink(key);
    },
    { run },
  );
  return removed;
}

describe('globEscape', () => {
  it('makes the glob characters literal', () => {
    expect(globEscape('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
    expect(globEscape('idem:')).toBe('idem:');
  });
});

describe('scanKeys on one node', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const connect = (keyPrefix?: string): Redis => {
    const client = new Redis(server.url, keyPrefix === undefined ? {} : { keyPrefix });
    clients.push(client);
    return client;
  };
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await server?.stop();
  });

  it('finds exactly the keys under the prefix and pattern, in batches, with glob characters in the prefix taken literally', async () => {
    const client = connect();
    const names = Array.from({ length: 30 }, (_, i) => `p*[1]:{k${i}}:rec`);
    await client.mset(...names.flatMap((name) => [name, '1']));
    // Neighbours a glob prefix would match, and another suffix.
    await client.mset('pX[1]:{a}:rec', '1', 'p*1:{b}:rec', '1', 'p*[1]:{c}:lock', '1');
    const { keys, batches } = await found(client, 'p*[1]:', '{*}:rec', 5);
    expect(keys).toEqual([...names].sort());
    expect(batches).toBeGreaterThan(1);
  });

  it("honours an ioredis keyPrefix: only that prefix's keys, handed back as the client names them", async () => {
    const app = connect('app:');
    const other = connect('other:');
    await app.set('kp:one', '1');
    await app.set('kp:two', '1');
    await other.set('kp:three', '1');
    expect((await found(app, 'kp:', '*')).keys).toEqual(['kp:one', 'kp:two']);
    expect(await removeAll(app, 'kp:')).toBe(2);
    const raw = connect();
    expect(await raw.exists('app:kp:one', 'app:kp:two')).toBe(0);
    expect(await raw.exists('other:kp:three')).toBe(1);
  });

  it("bounds each SCAN with the caller's runner and stops at its first error", async () => {
    const client = connect();
    await client.mset('run:a', '1', 'run:b', '1');
    const operations: string[] = [];
    await scanKeys(client, 'run:', '*', () => {}, {
      run: (operation, call) => (operations.push(operation), call()),
      operation: 'count',
    });
    expect(operations.length).toBeGreaterThan(0);
    expect(new Set(operations)).toEqual(new Set(['count']));
    const failing: CallRunner = () => Promise.reject(new Error('timed out'));
    await expect(scanKeys(client, 'run:', '*', () => {}, { run: failing })).rejects.toThrow('timed out');
  });
});

describe('scanKeys on a Cluster', () => {
  let cluster: RedisCluster;
  const clients: Cluster[] = [];
  const connect = (options: ConstructorParameters<typeof Cluster>[1] = {}): Cluster => {
    const client = new Cluster(cluster.startupNodes, options);
    clients.push(client);
    return client;
  };
  beforeAll(async () => {
    cluster = await startCluster(3);
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  /** Keys whose hash tags spread them over every master. */
  const spread = (prefix: string): string[] => Array.from({ length: 60 }, (_, i) => `${prefix}{k${i}}:rec`);

  it('walks every master, not just one, and each batch can be removed on the node that holds it', async () => {
    const client = connect();
    const names = spread('cl:');
    for (const name of names) await client.set(name, '1');
    const owners = new Set(
      await Promise.all(names.map(async (name) => (await client.cluster('KEYSLOT', name)) as number)),
    );
    expect(owners.size).toBeGreaterThan(10);
    expect((await found(client, 'cl:', '{*}:rec')).keys).toEqual([...names].sort());
    expect(await removeAll(client, 'cl:')).toBe(names.length);
    expect((await found(client, 'cl:', '*')).keys).toEqual([]);
  });

  it.each([
    ['in the Cluster options', { keyPrefix: 'app:' }],
    ['in redisOptions, so the node connections prefix too', { redisOptions: { keyPrefix: 'app:' } }],
  ])('honours a keyPrefix given %s', async (_where, options) => {
    const client = connect(options);
    const names = spread('kp:');
    for (const name of names) await client.set(name, '1');
    // Ready for the node connection they came from: whether it adds the prefix itself decides
    // whether they carry it.
    const { keys } = await found(client, 'kp:', '{*}:rec');
    expect(keys.map((key) => key.replace(/^app:/, '')).sort()).toEqual([...names].sort());
    expect(await removeAll(client, 'kp:')).toBe(names.length);
    const raw = connect();
    for (const name of names) expect(await raw.exists(`app:${name}`), name).toBe(0);
  });
});
