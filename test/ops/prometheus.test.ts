/**
 * @idem/prometheus seen as a user sees it: real Express and Koa apps over HTTP, on the memory store
 * and on a real redis-server, and a real @idem/cache; every assertion reads a scrape of the
 * registry (the text Prometheus would ingest), never prom-client's objects.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createCache, type Cache } from '@idem/cache';
import { ConfigError, memoryStore } from '@idem/core';
import {
  BREAKER_STATES,
  EXECUTE_OUTCOMES,
  REQUEST_OUTCOMES,
  STALE_REASONS,
  STORE_OPERATIONS,
  cacheMetrics,
  defaults,
  idempotencyMetrics,
  type MetricsHandle,
} from '@idem/prometheus';
import { idempotent as fastifyIdempotent } from '@idem/fastify';
import { redisStore } from '@idem/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { until } from '../harness/wait.js';
import { fakeClock, heldLoad, nextEvent } from '../cache/helpers.js';
import { frameworks, type OpsApp } from './apps.js';
import { Scrape } from './scrape.js';

const root = resolve(import.meta.dirname, '..', '..');
const ROUTE = '/orders/:id';

let app: OpsApp | undefined;
let handle: MetricsHandle | undefined;
afterEach(async () => {
  app?.handlers.gate.resolve();
  handle?.close();
  await app?.close();
  app = handle = undefined;
});

for (const framework of frameworks) {
  describe(`idempotencyMetrics on ${framework.name} with the memory store`, () => {
    it('shows every request series at 0 before the first request, for the routes it is told about', async () => {
      app = await framework.start({ store: memoryStore() });
      const registry = new Registry();
      handle = idempotencyMetrics(app.middleware, { registry, routes: [ROUTE] });

      const scrape = await Scrape.of(registry);
      for (const outcome of REQUEST_OUTCOMES) {
        expect(scrape.value('idem_requests_total', { route: ROUTE, outcome })).toBe(0);
      }
      for (const outcome of EXECUTE_OUTCOMES) {
        expect(scrape.value('idem_handler_duration_seconds_count', { route: ROUTE, outcome })).toBe(0);
      }
      expect(scrape.value('idem_replay_age_seconds_count', { route: ROUTE })).toBe(0);
      expect(scrape.value('idem_leases_lost_total', { route: ROUTE })).toBe(0);
      expect(scrape.value('idem_waits_total', { route: ROUTE })).toBe(0);
      for (const operation of STORE_OPERATIONS) {
        expect(scrape.value('idem_store_errors_total', { operation })).toBe(0);
        for (const result of ['ok', 'error']) {
          expect(scrape.value('idem_store_call_duration_seconds_count', { operation, result })).toBe(0);
        }
      }
    });

    it('counts 1 execute and 2 replays after three identical requests, by route pattern', async () => {
      app = await framework.start({ store: memoryStore() });
      const registry = new Registry();
      handle = idempotencyMetrics(app.middleware, { registry });
      const key = randomUUID();

      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await app.post('/orders/42', { key }));
      expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
      expect(app.handlers.runs).toBe(1);

      const scrape = await Scrape.of(registry);
      expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'execute' })).toBe(1);
      expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'replay' })).toBe(2);
      expect(scrape.sum('idem_requests_total')).toBe(3);
      expect(scrape.value('idem_handler_duration_seconds_count', { route: ROUTE, outcome: 'stored' })).toBe(1);
      expect(scrape.value('idem_replay_age_seconds_count', { route: ROUTE })).toBe(2);
      // The memory store reads and claims in one call: three of them, and one complete.
      expect(scrape.value('idem_store_call_duration_seconds_count', { operation: 'getOrClaim', result: 'ok' })).toBe(3);
      expect(scrape.value('idem_store_call_duration_seconds_count', { operation: 'complete', result: 'ok' })).toBe(1);
      expect(scrape.sum('idem_store_errors_total')).toBe(0);
      // Bounded labels: the pattern, never the raw path nor the key (raw or hashed).
      expect(scrape.text).not.toContain('/orders/42');
      expect(scrape.text).not.toContain(key);
      expect(scrape.text).not.toMatch(/[0-9a-f]{64}/);
    });

    it('counts a 409 as conflict, a 422 as mismatch and the 400s by code', async () => {
      app = await framework.start({ store: memoryStore(), concurrent: 'reject', required: true });
      const registry = new Registry();
      handle = idempotencyMetrics(app.middleware, { registry });
      const key = randomUUID();

      const started = app.handlers.started();
      const first = app.post('/slow', { key });
      await started;
      expect((await app.post('/slow', { key })).status).toBe(409);
      app.handlers.gate.resolve();
      expect((await first).status).toBe(200);
      expect((await app.post('/slow', { key, body: { amount: 2 } })).status).toBe(422);
      expect((await app.post('/slow')).status).toBe(400);
      expect((await app.post('/slow', { key: '' })).status).toBe(400);

      const scrape = await Scrape.of(registry);
      const outcome = (o: string): number => scrape.value('idem_requests_total', { route: '/slow', outcome: o });
      expect(outcome('execute')).toBe(1);
      expect(outcome('conflict')).toBe(1);
      expect(outcome('mismatch')).toBe(1);
      expect(outcome('key_missing')).toBe(1);
      expect(outcome('key_invalid')).toBe(1);
      expect(outcome('replay')).toBe(0);
      expect(app.handlers.runs).toBe(1);
    });

    it("counts a duplicate that waits (concurrent: 'wait') and its replay", async () => {
      app = await framework.start({ store: memoryStore(), concurrent: 'wait', waitTimeout: '10s' });
      const registry = new Registry();
      handle = idempotencyMetrics(app.middleware, { registry });
      const key = randomUUID();

      const started = app.handlers.started();
      const first = app.post('/slow', { key });
      await started;
      const waiting = new Promise((resolve) => app?.middleware.events.once('wait', resolve));
      const duplicate = app.post('/slow', { key });
      await waiting;
      app.handlers.gate.resolve();
      const [a, b] = await Promise.all([first, duplicate]);
      expect([a.status, b.status, b.headers.get('idempotent-replayed')]).toEqual([200, 200, 'true']);

      const scrape = await Scrape.of(registry);
      expect(scrape.value('idem_waits_total', { route: '/slow' })).toBe(1);
      expect(scrape.value('idem_requests_total', { route: '/slow', outcome: 'replay' })).toBe(1);
      expect(scrape.value('idem_requests_total', { route: '/slow', outcome: 'conflict' })).toBe(0);
      expect(scrape.value('idem_store_call_duration_seconds_count', { operation: 'waitFor', result: 'ok' })).toBe(1);
    });
  });
}

describe('idempotencyMetrics on Fastify (the plugin decorates its scope with the events)', () => {
  it('counts 1 execute and 2 replays after three identical requests, with a route of its own options too', async () => {
    const fastify = Fastify();
    await fastify.register(fastifyIdempotent, { store: memoryStore() });
    let runs = 0;
    fastify.post('/orders/:id', async (_request, reply) => reply.code(201).send({ run: ++runs }));
    fastify.post('/slow', { config: { idempotency: { concurrent: 'wait' } } }, async () => ({ run: ++runs }));
    const url = await fastify.listen({ port: 0, host: '127.0.0.1' });
    const registry = new Registry();
    handle = idempotencyMetrics(fastify.idempotency, { registry });
    try {
      const send = (path: string, key: string): Promise<Response> =>
        fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: '{"amount":1}',
        });
      const key = randomUUID();
      for (let i = 0; i < 3; i++) expect((await send('/orders/42', key)).status).toBe(201);
      expect((await send('/slow', key)).status).toBe(200);
      expect(runs).toBe(2);

      const scrape = await Scrape.of(registry);
      expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'execute' })).toBe(1);
      expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'replay' })).toBe(2);
      expect(scrape.value('idem_requests_total', { route: '/slow', outcome: 'execute' })).toBe(1);
    } finally {
      await fastify.close();
    }
  });
});

describe('idempotencyMetrics: attaching', () => {
  it('adds no listener until attached and removes them all on close, so the request path does no metrics work', async () => {
    app = await frameworks[0]!.start({ store: memoryStore() });
    const events = app.middleware.events;
    const names = ['replay', 'execute', 'storeCall', 'storeError', 'conflict', 'rejected'] as const;
    expect(names.filter((n) => events.hasListeners(n))).toEqual([]);
    const registry = new Registry();
    const attached = idempotencyMetrics(app.middleware, { registry });
    expect(names.filter((n) => events.hasListeners(n))).toEqual([...names]);
    attached.close();
    expect(names.filter((n) => events.hasListeners(n))).toEqual([]);
    expect((await registry.metrics()).trim()).toBe('');
  });

  it('counts several idempotent() instances in one set of series, and refuses a second attach to one registry', async () => {
    app = await frameworks[0]!.start({ store: memoryStore() });
    const other = await frameworks[1]!.start({ store: memoryStore() });
    try {
      const registry = new Registry();
      handle = idempotencyMetrics([app.middleware, other.middleware], { registry });
      expect(() => idempotencyMetrics(app!.middleware, { registry })).toThrow(/already registered.*close\(\)/s);
      await app.post('/orders/1', { key: randomUUID() });
      await other.post('/orders/2', { key: randomUUID() });
      const scrape = await Scrape.of(registry);
      expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'execute' })).toBe(2);
    } finally {
      await other.close();
    }
  });

  it('labels routes past maxRoutes as `other`: the set of series stays bounded whatever the app routes', async () => {
    app = await frameworks[0]!.start({ store: memoryStore() });
    const registry = new Registry();
    handle = idempotencyMetrics(app.middleware, { registry, routes: ['/a', '/b'], maxRoutes: 2 });
    await app.post('/orders/7', { key: randomUUID() });
    const scrape = await Scrape.of(registry);
    expect(scrape.value('idem_requests_total', { route: 'other', outcome: 'execute' })).toBe(1);
    expect(new Set(scrape.select('idem_requests_total').map((s) => s.labels.route))).toEqual(
      new Set(['/a', '/b', 'other']),
    );
  });

  it('refuses bad options with a ConfigError that names the option', () => {
    const mw = {
      events: new (class {
        on() {}
        off() {}
      })(),
    } as never;
    const registry = new Registry();
    const option = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).option;
      }
      return undefined;
    };
    expect(option(() => idempotencyMetrics(mw, { registry: {} as never }))).toBe('registry');
    expect(option(() => idempotencyMetrics(mw, { registry, prefix: '1x' }))).toBe('prefix');
    expect(option(() => idempotencyMetrics(mw, { registry, maxRoutes: 0 }))).toBe('maxRoutes');
    expect(option(() => idempotencyMetrics(mw, { registry, routes: '/a' as never }))).toBe('routes');
    expect(option(() => idempotencyMetrics(mw, { registry, prefx: 'a' } as never))).toBe('prefx');
    expect(() => idempotencyMetrics({} as never, { registry })).toThrow(TypeError);
    expect(() => cacheMetrics({} as never, { registry })).toThrow(TypeError);
  });
});

describe('idempotencyMetrics with the Redis store', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await server.stop();
  });

  const redis = (): Redis => {
    const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    clients.push(client);
    return client;
  };

  it('counts a record tampered with in Redis as invalid_record (answered 500, not replayed)', async () => {
    const client = redis();
    app = await frameworks[0]!.start({ store: redisStore({ client, prefix: 'tamper:' }) });
    const registry = new Registry();
    handle = idempotencyMetrics(app.middleware, { registry });
    const key = randomUUID();
    expect((await app.post('/orders/5', { key })).status).toBe(201);
    const [stored] = (await server.cli('--scan', '--pattern', 'tamper:*')).split('\n').filter(Boolean);
    expect(stored).toBeDefined();
    // The record is one string with a length-prefixed header: a same-length status out of range.
    const record = (await client.getBuffer(stored!))!.toString('latin1');
    expect(record).toContain('"status":201');
    await client.set(stored!, Buffer.from(record.replace('"status":201', '"status":999'), 'latin1'), 'KEEPTTL');

    const replay = await app.post('/orders/5', { key });
    expect(replay.status).toBe(500);
    expect((replay.body as { code: string }).code).toBe('record_invalid');
    expect(app.handlers.runs).toBe(1);
    const scrape = await Scrape.of(registry);
    expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'invalid_record' })).toBe(1);
    expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'replay' })).toBe(0);
  });

  for (const framework of frameworks) {
    it(`${framework.name}: counts replays through Redis, then 503 store_unavailable and fail_open once redis-server is stopped`, async () => {
      const store = redisStore({ client: redis(), commandTimeout: '300ms' });
      app = await framework.start({ store });
      const failOpen = await framework.start({ store, onStoreError: 'fail-open' });
      const registry = new Registry();
      handle = idempotencyMetrics([app.middleware, failOpen.middleware], { registry, routes: [ROUTE] });
      try {
        const key = randomUUID();
        expect((await app.post('/orders/1', { key })).status).toBe(201);
        expect((await app.post('/orders/1', { key })).headers.get('idempotent-replayed')).toBe('true');
        let scrape = await Scrape.of(registry);
        expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'execute' })).toBe(1);
        expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'replay' })).toBe(1);
        expect(scrape.value('idem_store_call_duration_seconds_count', { operation: 'getOrClaim', result: 'ok' })).toBe(
          2,
        );

        await server.kill();
        const down = await app.post('/orders/2', { key: randomUUID() });
        expect(down.status).toBe(503);
        expect((down.body as { code: string }).code).toBe('store_unavailable');
        expect((await failOpen.post('/orders/3', { key: randomUUID() })).status).toBe(201);
        expect(failOpen.handlers.runs).toBe(1);

        scrape = await Scrape.of(registry);
        expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'store_unavailable' })).toBe(1);
        expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'fail_open' })).toBe(1);
        expect(scrape.value('idem_requests_total', { route: ROUTE, outcome: 'execute' })).toBe(1);
        expect(scrape.value('idem_store_errors_total', { operation: 'getOrClaim' })).toBe(2);
        expect(
          scrape.value('idem_store_call_duration_seconds_count', { operation: 'getOrClaim', result: 'error' }),
        ).toBe(2);
      } finally {
        await failOpen.close();
        if (!server.alive) await server.restart();
      }
    });
  }
});

describe('idempotencyMetrics under a mixed load: every counter equals what the clients saw', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
  });
  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  for (const framework of frameworks) {
    it(`${framework.name} + Redis: parallel duplicates, reused keys, missing keys, then an outage`, async () => {
      app = await framework.start({
        store: redisStore({ client, commandTimeout: '300ms' }),
        concurrent: 'reject',
        required: true,
      });
      const registry = new Registry();
      handle = idempotencyMetrics(app.middleware, { registry, routes: [ROUTE] });
      const seen = { executed: 0, replayed: 0, conflict: 0, mismatch: 0, missing: 0, unavailable: 0, other: 0 };
      const tally = (a: { status: number; headers: Headers }): void => {
        if (a.status === 201 && a.headers.get('idempotent-replayed') === 'true') seen.replayed++;
        else if (a.status === 201) seen.executed++;
        else if (a.status === 409) seen.conflict++;
        else if (a.status === 422) seen.mismatch++;
        else if (a.status === 400) seen.missing++;
        else if (a.status === 503) seen.unavailable++;
        else seen.other++;
      };
      try {
        const keys = Array.from({ length: 12 }, () => randomUUID());
        // Three copies of each key at once, and requests without a key among them: all in parallel.
        const burst = keys.flatMap((key, i) => [0, 1, 2].map(() => app!.post(`/orders/${i}`, { key })));
        burst.push(...[0, 1, 2].map((i) => app!.post(`/orders/${i}`)));
        (await Promise.all(burst)).forEach(tally);
        // Then the same keys again (replays), and half of them with another body (422).
        const again = keys.map((key, i) => app!.post(`/orders/${i}`, { key }));
        const reused = keys.slice(0, 6).map((key, i) => app!.post(`/orders/${i}`, { key, body: { amount: 99 } }));
        (await Promise.all([...again, ...reused])).forEach(tally);
        // Redis goes away: every keyed request is a 503.
        await server.kill();
        const down = Array.from({ length: 4 }, (_, i) => app!.post(`/orders/${i}`, { key: randomUUID() }));
        (await Promise.all(down)).forEach(tally);

        expect(seen.other).toBe(0);
        expect(seen.executed).toBe(keys.length);
        expect(seen.executed).toBe(app.handlers.runs);
        // Each key's two parallel copies and its later copy: a replay or, while in flight, a 409.
        expect(seen.replayed + seen.conflict).toBe(3 * keys.length);
        expect(seen.mismatch).toBe(6);
        expect(seen.missing).toBe(3);
        expect(seen.unavailable).toBe(4);
        const scrape = await Scrape.of(registry);
        const counted = (outcome: string): number => scrape.value('idem_requests_total', { route: ROUTE, outcome });
        expect({
          executed: counted('execute'),
          replayed: counted('replay'),
          conflict: counted('conflict'),
          mismatch: counted('mismatch'),
          missing: counted('key_missing'),
          unavailable: counted('store_unavailable'),
          other: scrape.sum('idem_requests_total') - scrape.sum('idem_requests_total', { route: ROUTE }),
        }).toEqual(seen);
        expect(scrape.value('idem_handler_duration_seconds_count', { route: ROUTE, outcome: 'stored' })).toBe(
          keys.length,
        );
        expect(scrape.value('idem_replay_age_seconds_count', { route: ROUTE })).toBe(seen.replayed);
        expect(scrape.sum('idem_store_errors_total')).toBe(4);
      } finally {
        if (!server.alive) await server.restart();
      }
    });
  }
});

describe('cacheMetrics', () => {
  let cache: Cache | undefined;
  afterEach(async () => {
    await cache?.close();
    cache = undefined;
  });

  it('counts the turns of a warmEvery schedule by outcome, a failing one too', async () => {
    cache = createCache({ namespace: 'ops-warm' });
    const registry = new Registry();
    handle = cacheMetrics(cache, { registry });
    let runs = 0;
    const turns: string[] = [];
    const three = new Promise<void>((resolve) =>
      cache?.events.on('warm', (e) => {
        turns.push(e.outcome);
        if (turns.length === 3) resolve();
      }),
    );
    const schedule = cache.warmEvery(
      10,
      () => {
        if (++runs === 2) throw new Error('catalogue down');
        return [{ key: 'top', value: runs }];
      },
      { name: 'top-products' },
    );
    await three;
    schedule.stop();
    const scrape = await Scrape.of(registry);
    const count = (outcome: string): number => turns.filter((t) => t === outcome).length;
    for (const outcome of ['stored', 'failed']) {
      expect(scrape.value('idem_cache_warm_runs_total', { schedule: 'top-products', outcome })).toBe(count(outcome));
    }
    expect(count('failed')).toBe(1);
  });

  it('shows every series at 0 before the first lookup, and the gauges of a memory-only cache', async () => {
    cache = createCache({ namespace: 'ops' });
    const registry = new Registry();
    handle = cacheMetrics(cache, { registry });
    const scrape = await Scrape.of(registry);
    for (const layer of ['l1', 'l2']) {
      expect(scrape.value('idem_cache_hits_total', { layer })).toBe(0);
      expect(scrape.value('idem_cache_misses_total', { layer })).toBe(0);
    }
    for (const result of ['ok', 'error']) {
      expect(scrape.value('idem_cache_loader_runs_total', { result })).toBe(0);
      expect(scrape.value('idem_cache_loader_duration_seconds_count', { result })).toBe(0);
    }
    for (const reason of STALE_REASONS) expect(scrape.value('idem_cache_stale_served_total', { reason })).toBe(0);
    for (const state of BREAKER_STATES) {
      expect(scrape.value('idem_cache_breaker_state', { state })).toBe(state === 'closed' ? 1 : 0);
    }
    expect(scrape.value('idem_cache_bus_connected')).toBe(0);
    expect(scrape.value('idem_cache_l1_entries')).toBe(0);
    expect(scrape.value('idem_cache_l1_bytes')).toBe(0);
    expect(scrape.value('idem_cache_loader_waits_total')).toBe(0);
    for (const kind of ['set', 'delete', 'tags', 'prefix', 'clear']) {
      for (const origin of ['local', 'remote']) {
        expect(scrape.value('idem_cache_invalidations_total', { kind, origin })).toBe(0);
      }
    }
  });

  it('counts hits, misses, loader runs and errors, and a stale value served when the loader fails', async () => {
    const clock = fakeClock();
    cache = createCache({ namespace: 'ops', ttl: '1s', grace: '1m', clock });
    const registry = new Registry();
    handle = cacheMetrics(cache, { registry });

    expect(await cache.getOrSet('a', () => Promise.resolve(1))).toBe(1);
    expect(await cache.getOrSet('a', () => Promise.resolve(2))).toBe(1);
    await expect(cache.getOrSet('b', () => Promise.reject(new Error('upstream down')))).rejects.toThrow(
      'upstream down',
    );
    clock.advance(2_000);
    const entry = await cache.getOrSetEntry('a', () => Promise.reject(new Error('upstream down')));
    expect(entry).toMatchObject({ value: 1, stale: true });

    const scrape = await Scrape.of(registry);
    expect(scrape.value('idem_cache_hits_total', { layer: 'l1' })).toBe(1);
    expect(scrape.value('idem_cache_misses_total', { layer: 'l1' })).toBe(3);
    expect(scrape.value('idem_cache_loader_runs_total', { result: 'ok' })).toBe(1);
    expect(scrape.value('idem_cache_loader_runs_total', { result: 'error' })).toBe(2);
    expect(scrape.value('idem_cache_loader_duration_seconds_count', { result: 'error' })).toBe(2);
    expect(scrape.value('idem_cache_stale_served_total', { reason: 'error' })).toBe(1);
    expect(scrape.value('idem_cache_l1_entries')).toBe(1);

    await cache.delete('a');
    const after = await Scrape.of(registry);
    expect(after.value('idem_cache_invalidations_total', { kind: 'delete', origin: 'local' })).toBe(1);
    expect(after.value('idem_cache_l1_entries')).toBe(0);
  });

  describe('with Redis', () => {
    let server: RedisServer;
    const clients: Redis[] = [];
    beforeAll(async () => {
      server = await RedisServer.start();
    });
    afterAll(async () => {
      for (const client of clients.splice(0)) client.disconnect();
      await server.stop();
    });

    it('counts an L2 hit from another instance, shows the bus connected, then the breaker open once Redis hangs', async () => {
      const client = (): Redis => {
        const c = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
        c.on('error', () => {});
        clients.push(c);
        return c;
      };
      const options = { namespace: 'ops-l2', timeout: '200ms', breaker: { threshold: 2, cooldown: '1m' } };
      const writer = createCache({ ...options, redis: client() });
      cache = createCache({ ...options, redis: client() });
      const registry = new Registry();
      handle = cacheMetrics(cache, { registry });
      try {
        await until(() => cache!.stats().bus.connected, 'the bus to connect');
        expect(await writer.getOrSet('shared', () => Promise.resolve('from writer'))).toBe('from writer');
        expect(await cache.getOrSet('shared', () => Promise.resolve('not run'))).toBe('from writer');

        let scrape = await Scrape.of(registry);
        expect(scrape.value('idem_cache_misses_total', { layer: 'l1' })).toBe(1);
        expect(scrape.value('idem_cache_hits_total', { layer: 'l2' })).toBe(1);
        expect(scrape.value('idem_cache_loader_runs_total', { result: 'ok' })).toBe(0);
        expect(scrape.value('idem_cache_bus_connected')).toBe(1);

        // Another instance is loading a key: this one waits for it instead of loading too.
        const held = await heldLoad<string>(writer, 'held');
        const waiter = cache.getOrSet('held', () => Promise.resolve('not run either'));
        await until(() => cache!.stats().waits > 0, 'the second instance to wait');
        held.gate.resolve('loaded once');
        expect(await waiter).toBe('loaded once');
        scrape = await Scrape.of(registry);
        expect(scrape.value('idem_cache_loader_waits_total')).toBe(1);
        expect(scrape.value('idem_cache_loader_runs_total', { result: 'ok' })).toBe(0);

        // A server that hangs (not one known to be down) is what the breaker is for.
        server.pause();
        const opened = nextEvent(cache, 'breaker', (e) => e.state === 'open');
        for (let i = 0; i < 3; i++) await cache.getOrSet(`k${i}`, () => Promise.resolve(i));
        await opened;
        scrape = await Scrape.of(registry);
        expect(scrape.value('idem_cache_breaker_state', { state: 'open' })).toBe(1);
        expect(scrape.value('idem_cache_breaker_state', { state: 'closed' })).toBe(0);
        expect(scrape.value('idem_cache_l2_errors_total', { code: 'cache_l2_timeout' })).toBeGreaterThanOrEqual(2);
      } finally {
        server.resume();
        await writer.close();
      }
    });
  });
});

describe('README', () => {
  /** The `| \`name\` | default |` rows of the first table after `heading`. */
  function table(heading: string): Map<string, string> {
    const text = readFileSync(resolve(root, 'packages/prometheus/README.md'), 'utf8');
    const start = text.indexOf(heading);
    expect(start, `README has ${heading}`).toBeGreaterThanOrEqual(0);
    const rows = new Map<string, string>();
    for (const line of text.slice(start).split('\n').slice(1)) {
      if (line.startsWith('#')) break;
      const cells = /^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|/.exec(line);
      if (cells) rows.set(cells[1] as string, cells[2] as string);
    }
    return rows;
  }
  const written = (value: unknown): string =>
    typeof value === 'string' ? `'${value}'` : Array.isArray(value) ? `[${value.join(', ')}]` : String(value);

  it.each([
    ['### idempotencyMetrics options', defaults.idempotency],
    ['### cacheMetrics options', defaults.cache],
  ])('documents the defaults under %s', (heading, values) => {
    const rows = table(heading);
    for (const [name, value] of Object.entries(values)) {
      expect(rows.get(name), `${name} under ${heading}`).toBeDefined();
      expect(rows.get(name)?.startsWith(`\`${written(value)}\``), `default of ${name}`).toBe(true);
    }
  });

  it('lists every metric both collectors register, with its labels', async () => {
    const registry = new Registry();
    const a = idempotencyMetrics({ events: new (await import('@idem/core')).IdempotencyEvents() }, { registry });
    const cache = createCache({ namespace: 'readme' });
    const b = cacheMetrics(cache, { registry });
    const text = readFileSync(resolve(root, 'packages/prometheus/README.md'), 'utf8');
    for (const name of [...a.names, ...b.names]) expect(text, name).toContain(`\`${name}\``);
    a.close();
    b.close();
    await cache.close();
  });
});
