/**
 * A rolling deploy from the version whose records were hashes (fields s, t, at, fp, meta, body, w)
 * to the one whose records are one string (packages/redis/src/record.ts), under the same key.
 * Both versions serve traffic at once, so neither may run a handler twice: the new store replays
 * an old completed record and treats an old in-flight lease as contention (its fallback on
 * WRONGTYPE); an old instance meeting a new record gets an error from its scripts (a 503), never
 * a claim. The old version is played here by its own script text, run with EVAL, and by plain
 * HSETs laid out as it laid them out.
 */
import { randomUUID } from 'node:crypto';
import { storageKey, type StoredResponse } from '@idem/core';
import { idempotent } from '@idem/express';
import { redisStore, type RedisStore, type RedisStoreOptions } from '@idem/redis';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until, within } from '../harness/wait.js';
import { RedisServer, startMasters } from '../harness/redis.mjs';

/** The previous version's claim script, as it was (HMGET, TIME, HSET, PEXPIRE). */
const OLD_CLAIM = `
local record = KEYS[1]
local token, ttl, fingerprint = ARGV[1], ARGV[2], ARGV[3]
local standing = redis.call('HMGET', KEYS[1], 's', 'fp', 'at', 'meta', 'body')
if standing[1] then return standing end
redis.replicate_commands()
local time = redis.call('TIME')
local now = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
if fingerprint ~= '' then
  redis.call('HSET', record, 's', 'f', 't', token, 'at', now, 'fp', fingerprint)
else
  redis.call('HSET', record, 's', 'f', 't', token, 'at', now)
end
redis.call('PEXPIRE', record, ttl)
return 1
`;

/** The previous version's complete script, as it was (fenced by the hash's token, publishes when `w` is set). */
const OLD_COMPLETE = `
local record = KEYS[1]
local token, ttl, meta, body, fingerprint, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local lease = redis.call('HMGET', record, 't', 'w')
if lease[1] ~= token then return 0 end
redis.replicate_commands()
local time = redis.call('TIME')
local now = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
redis.call('DEL', record)
if fingerprint ~= '' then
  redis.call('HSET', record, 's', 'c', 'at', now, 'meta', meta, 'body', body, 'fp', fingerprint)
else
  redis.call('HSET', record, 's', 'c', 'at', now, 'meta', meta, 'body', body)
end
redis.call('PEXPIRE', record, ttl)
if lease[2] then redis.call('PUBLISH', channel, 'completed') end
return 1
`;

/** The previous version's waiter check (PEEK): HGET s, marks `w`. */
const OLD_PEEK = `
local record = KEYS[1]
local state = redis.call('HGET', record, 's')
if not state then return false end
if state == 'f' and redis.call('HEXISTS', record, 'w') == 0 then redis.call('HSET', record, 'w', '1') end
return { state, redis.call('PTTL', record) }
`;

const recordOf = (key: string, prefix = 'idem:'): string => `${prefix}{${key}}:rec`;
const channelOf = (key: string, prefix = 'idem:'): string => `${prefix}{${key}}:done`;
const binary = Buffer.from([0, 255, 0x3a, 0x2d, 10, 13, 0x63, 0x66]);
const meta = JSON.stringify({ status: 201, headers: { 'content-type': 'application/octet-stream' } });

/** An old instance, played by its scripts on `client`. */
function oldInstance(client: Redis, prefix = 'idem:') {
  return {
    claim: (key: string, token: string, fingerprint: string | null, ttl = 30_000) =>
      client.eval(OLD_CLAIM, 1, recordOf(key, prefix), token, ttl, fingerprint ?? ''),
    complete: (key: string, token: string, fingerprint: string | null, body: Buffer = binary, ttl = 60_000) =>
      client.eval(
        OLD_COMPLETE,
        1,
        recordOf(key, prefix),
        token,
        ttl,
        meta,
        body,
        fingerprint ?? '',
        channelOf(key, prefix),
      ),
    peek: (key: string) => client.eval(OLD_PEEK, 1, recordOf(key, prefix)),
  };
}

const response = (text: string): StoredResponse => ({
  status: 200,
  headers: {},
  body: new Uint8Array(Buffer.from(text)),
});

/** The cases every topology runs: `make` builds a store of the new version on the records' client. */
function rollingDeploy(name: string, setup: () => { client: Redis; make(o?: Partial<RedisStoreOptions>): RedisStore }) {
  describe(`rolling deploy from hash records: ${name}`, () => {
    const opened: RedisStore[] = [];
    const make = (o?: Partial<RedisStoreOptions>): RedisStore => {
      const store = setup().make({ commandTimeout: 1_000, pollInterval: 100, ...o });
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it('replays an old completed record byte for byte, with its fingerprint, and claims nothing', async () => {
      const { client } = setup();
      const old = oldInstance(client);
      const store = make();
      const key = randomUUID();
      expect(await old.claim(key, 'old-token', 'fp-old')).toBe(1);
      expect(await old.complete(key, 'old-token', 'fp-old')).toBe(1);
      expect(await client.type(recordOf(key))).toBe('hash');

      const expected = {
        state: 'completed',
        fingerprint: 'fp-old',
        response: { status: 201, headers: { 'content-type': 'application/octet-stream' } },
      };
      const read = await store.get(key);
      expect(read).toMatchObject(expected);
      expect(read?.state === 'completed' && Buffer.from(read.response.body).equals(binary)).toBe(true);

      const claim = await store.claim(key, { fingerprint: 'fp-old', lockTtl: 10_000 });
      expect(claim.acquired).toBe(false);
      if (!claim.acquired) {
        expect(claim.record).toMatchObject(expected);
        expect(claim.record?.state === 'completed' && Buffer.from(claim.record.response.body).equals(binary)).toBe(
          true,
        );
      }
      if (store.getOrClaim !== undefined)
        expect(await store.getOrClaim(key, { fingerprint: 'fp-old', lockTtl: 10_000 })).toMatchObject({
          acquired: false,
          record: expected,
        });
      const inspected = await store.inspect(key);
      expect(inspected?.record).toMatchObject(expected);
      expect(inspected?.expiresInMs).toBeGreaterThan(50_000);
      // The old record is left as it was: the old instances still replay it.
      expect(await client.type(recordOf(key))).toBe('hash');
      expect(await client.hget(recordOf(key), 's')).toBe('c');
    });

    it("treats an old in-flight lease as contention: no claim, and its token's writes are not this store's to make", async () => {
      const { client } = setup();
      const old = oldInstance(client);
      const store = make();
      const key = randomUUID();
      expect(await old.claim(key, 'old-token', 'fp')).toBe(1);

      const claim = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(claim.acquired).toBe(false);
      if (!claim.acquired) expect(claim.record).toMatchObject({ state: 'in_flight', fingerprint: 'fp' });
      expect(await store.get(key)).toMatchObject({ state: 'in_flight', fingerprint: 'fp' });

      // A lease of this store never matches an old hash: complete, extend and release are fenced out.
      const stranger = { key, token: 'old-token' };
      expect(await store.complete(stranger, response('new'), { fingerprint: 'fp', ttl: 60_000 })).toBe(false);
      expect(await store.extend(stranger, 60_000)).toBe(false);
      await store.release(stranger);
      expect(await client.hget(recordOf(key), 't')).toBe('old-token');
      expect(await client.pttl(recordOf(key))).toBeLessThanOrEqual(30_000);

      // The old instance finishes: its completion is the one result, replayed by the new store.
      expect(await old.complete(key, 'old-token', 'fp')).toBe(1);
      const after = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(after.acquired).toBe(false);
      if (!after.acquired) expect(after.record?.state).toBe('completed');
    });

    it("marks an old in-flight record as waited for, so the old instance's completion wakes the new waiter by pub/sub", async () => {
      const { client } = setup();
      const old = oldInstance(client);
      const waiter = make({ pollInterval: 60_000 });
      const key = randomUUID();
      expect(await old.claim(key, 'old-token', null)).toBe(1);
      const started = Date.now();
      const waiting = waiter.waitFor(key, 20_000).then(() => Date.now() - started);
      await until(async () => (await client.hget(recordOf(key), 'w')) === '1', 'the new waiter to mark the old record');
      expect(await old.complete(key, 'old-token', null)).toBe(1);
      expect(await within(waiting, 5_000)).toBeLessThan(2_000);
      expect((await waiter.get(key))?.state).toBe('completed');
    });

    it('claims a key whose old lease lapsed, in the new format', async () => {
      const { client } = setup();
      const old = oldInstance(client);
      const store = make();
      const key = randomUUID();
      expect(await old.claim(key, 'old-token', 'fp', 150)).toBe(1);
      await until(async () => (await client.exists(recordOf(key))) === 0, 'the old lease to lapse');
      const claim = await store.claim(key, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(claim.acquired).toBe(true);
      expect(await client.type(recordOf(key))).toBe('string');
      if (claim.acquired)
        expect(await store.complete(claim.lease, response('ok'), { fingerprint: 'fp', ttl: 60_000 })).toBe(true);
      expect(await store.get(key)).toMatchObject({ state: 'completed', fingerprint: 'fp' });
    });

    it('an old instance meeting a new record fails (WRONGTYPE: a 503 there), and changes nothing', async () => {
      const { client } = setup();
      const old = oldInstance(client);
      const store = make();
      const [done, running] = [randomUUID(), randomUUID()];
      const claim = await store.claim(done, { fingerprint: 'fp', lockTtl: 10_000 });
      if (!claim.acquired) throw new Error('claim failed');
      expect(await store.complete(claim.lease, response('once'), { fingerprint: 'fp', ttl: 60_000 })).toBe(true);
      const held = await store.claim(running, { fingerprint: 'fp', lockTtl: 10_000 });
      expect(held.acquired).toBe(true);
      const before = await Promise.all([client.getBuffer(recordOf(done)), client.getBuffer(recordOf(running))]);

      for (const key of [done, running]) {
        await expect(old.claim(key, 'old-token', 'fp')).rejects.toThrow(/WRONGTYPE/);
        await expect(old.complete(key, 'old-token', 'fp')).rejects.toThrow(/WRONGTYPE/);
        await expect(old.peek(key)).rejects.toThrow(/WRONGTYPE/);
      }
      const after = await Promise.all([client.getBuffer(recordOf(done)), client.getBuffer(recordOf(running))]);
      expect(after).toEqual(before);
    });

    it('deletes and counts old records like new ones', async () => {
      const { client } = setup();
      const prefix = `up${randomUUID().slice(0, 8)}:`;
      const old = oldInstance(client, prefix);
      const store = make({ prefix });
      const [a, b] = [randomUUID(), randomUUID()];
      await old.claim(a, 'old-token', null);
      await old.complete(a, 'old-token', null);
      expect((await store.claim(b, { fingerprint: null, lockTtl: 10_000 })).acquired).toBe(true);
      expect(await store.count()).toBe(2);
      expect(await store.delete(a)).toBe(true);
      expect(await store.get(a)).toBeUndefined();
      expect(await store.count()).toBe(1);
    });
  });
}

let server: RedisServer;
let masters: RedisServer[];
const connections: Redis[] = [];
const connect = (url: string): Redis => {
  const c = new Redis(url);
  connections.push(c);
  return c;
};

beforeAll(async () => {
  [server, masters] = await Promise.all([RedisServer.start(), startMasters(3)]);
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  await Promise.all([server, ...(masters ?? [])].map((s) => s?.stop()));
});

let single: Redis | undefined;
rollingDeploy('single node', () => {
  single ??= connect(server.url);
  const client = single;
  return { client, make: (o) => redisStore({ client, ...o }) };
});

let quorum: Redis[] | undefined;
rollingDeploy('three lock masters', () => {
  quorum ??= masters.map((m) => connect(m.url));
  const [client] = quorum as [Redis, ...Redis[]];
  const lockClients = quorum;
  return { client, make: (o) => redisStore({ client, lockClients, ...o }) };
});

describe('rolling deploy from hash records: over HTTP', () => {
  let client: Redis;
  let store: RedisStore;
  let runs = 0;
  const app = express();
  beforeAll(() => {
    client = connect(server.url);
    store = redisStore({ client, prefix: 'http:' });
    app.use(express.json());
    app.use(idempotent({ store, lockTtl: '30s' }));
    app.post('/orders', (req, res) => {
      runs++;
      res
        .status(201)
        .type('text/plain')
        .send(`order ${String(req.body.item)} ${randomUUID()}`);
    });
  });
  afterAll(() => store.close());

  /** The record of `key` rewritten as the previous version laid it out: a hash, same key, same TTL. */
  async function asOldHash(key: string): Promise<void> {
    const record = (await store.get(key)) as Extract<Awaited<ReturnType<RedisStore['get']>>, { state: 'completed' }>;
    const name = `http:{${key}}:rec`;
    const ttl = await client.pttl(name);
    await client.del(name);
    await client.hset(name, {
      s: 'c',
      at: String(record.completedAt),
      fp: record.fingerprint ?? '',
      meta: JSON.stringify({ status: record.response.status, headers: record.response.headers }),
      body: Buffer.from(record.response.body),
    });
    await client.pexpire(name, ttl);
  }

  it('answers a string record tampered with in Redis (status out of range, same length) 500 record_invalid, not replayed', async () => {
    const key = randomUUID();
    await request(app).post('/orders').set('Idempotency-Key', key).send({ item: 'pen' }).expect(201);
    const name = `http:{${storageKey('POST /orders', key)}}:rec`;
    const value = (await client.getBuffer(name)) as Buffer;
    const tampered = Buffer.from(value.toString('latin1').replace('"status":201', '"status":999'), 'latin1');
    expect(tampered.length).toBe(value.length);
    await client.set(name, tampered, 'KEEPTTL');
    const before = runs;
    const replay = await request(app).post('/orders').set('Idempotency-Key', key).send({ item: 'pen' }).expect(500);
    expect((replay.body as { code: string }).code).toBe('record_invalid');
    expect(runs).toBe(before);
  });

  it('replays a completed record of the previous version and answers 409 to its in-flight lease: the handler never runs twice', async () => {
    const base = runs;
    const first = randomUUID();
    const sent = await request(app).post('/orders').set('Idempotency-Key', first).send({ item: 'book' }).expect(201);
    expect(runs).toBe(base + 1);
    const storage = storageKey('POST /orders', first);
    await asOldHash(storage);
    expect(await client.type(`http:{${storage}}:rec`)).toBe('hash');
    const replay = await request(app)
      .post('/orders')
      .set('Idempotency-Key', first)
      .send({ item: 'book' })
      .expect(201)
      .expect('Idempotent-Replayed', 'true');
    expect(replay.text).toBe(sent.text);
    expect(runs).toBe(base + 1);

    // An old instance's lease on another key, with the same request's fingerprint: contention.
    const fingerprint = (await store.get(storage))?.fingerprint ?? null;
    const second = randomUUID();
    const old = oldInstance(client, 'http:');
    expect(await old.claim(storageKey('POST /orders', second), 'old-token', fingerprint)).toBe(1);
    await request(app).post('/orders').set('Idempotency-Key', second).send({ item: 'book' }).expect(409);
    expect(runs).toBe(base + 1);
  });
});
