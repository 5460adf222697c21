/**
 * @idem/opentelemetry with the OpenTelemetry SDK's in-memory exporter, over real HTTP on Express
 * and Koa. Each request gets its server span from a middleware in front of the app, propagated by
 * the AsyncLocalStorage context manager, as an HTTP instrumentation would: idem's attributes,
 * events and store spans must land on that span, and on no other.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { createCache } from '@idem/cache';
import { ConfigError, memoryStore, storageKey } from '@idem/core';
import { ATTR, TRACER_NAME, cacheTracing, defaults, idempotencyTracing, type TracingHandle } from '@idem/opentelemetry';
import { redisStore } from '@idem/redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';
import { until } from '../harness/wait.js';
import { frameworks, type Before, type OpsApp } from './apps.js';

const root = resolve(import.meta.dirname, '..', '..');
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const serverTracer = provider.getTracer('test-http');

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

/** One server span per request, active while the app handles it: what an HTTP instrumentation does. */
const serverSpans: Before = (req, _res, next) =>
  serverTracer.startActiveSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER }, (span) =>
    next().finally(() => span.end()),
  );

const ROUTE = '/orders/:id';
const hrMs = ([s, ns]: [number, number]): number => s * 1000 + ns / 1e6;
const isServer = (s: ReadableSpan): boolean => s.kind === SpanKind.SERVER;
const childrenOf = (parent: ReadableSpan): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);

/** The finished server spans, in request order, once `count` have ended. */
async function requests(count: number): Promise<ReadableSpan[]> {
  await until(() => exporter.getFinishedSpans().filter(isServer).length >= count, `${count} server spans`);
  const spans = exporter.getFinishedSpans().filter(isServer);
  expect(spans).toHaveLength(count);
  return spans.sort((a, b) => hrMs(a.startTime) - hrMs(b.startTime));
}

let app: OpsApp | undefined;
let tracing: TracingHandle | undefined;
beforeEach(() => exporter.reset());
afterEach(async () => {
  app?.handlers.gate.resolve();
  tracing?.close();
  await app?.close();
  app = tracing = undefined;
});

for (const framework of frameworks) {
  describe(`idempotencyTracing on ${framework.name}`, () => {
    it("puts execute and replay on each request's own span, with the key's hash, never the key", async () => {
      app = await framework.start({ store: memoryStore() }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      const key = randomUUID();

      for (let i = 0; i < 3; i++) expect((await app.post('/orders/42', { key })).status).toBe(201);
      expect(app.handlers.runs).toBe(1);

      const spans = await requests(3);
      const hash = storageKey(`POST ${ROUTE}`, key);
      expect(spans.map((s) => s.attributes[ATTR.outcome])).toEqual(['execute', 'replay', 'replay']);
      expect(spans.map((s) => s.attributes[ATTR.replayed])).toEqual([false, true, true]);
      for (const span of spans) {
        expect(span.attributes[ATTR.keyHash]).toBe(hash);
        expect(span.attributes[ATTR.route]).toBe(ROUTE);
        expect(span.attributes[ATTR.status]).toBe(201);
      }
      expect(spans[0]?.attributes[ATTR.executeOutcome]).toBe('stored');
      expect(spans[1]?.attributes[ATTR.replayAgeMs]).toBeGreaterThanOrEqual(0);
      expect(spans.map((s) => s.events.map((e) => e.name))).toEqual([
        ['idem.execute'],
        ['idem.replay'],
        ['idem.replay'],
      ]);

      // Nothing carries the client's key: not an attribute, not an event, not a span name.
      const everything = JSON.stringify(
        exporter.getFinishedSpans().map((s) => [s.name, s.attributes, s.events.map((e) => [e.name, e.attributes])]),
      );
      expect(everything).not.toContain(key);
    });

    it('makes a span per store call, a child of the request span, timed within it', async () => {
      app = await framework.start({ store: memoryStore() }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      const key = randomUUID();

      await app.post('/orders/1', { key });
      await app.post('/orders/1', { key });
      const [first, replay] = await requests(2);

      const calls = (parent: ReadableSpan): string[] => childrenOf(parent).map((s) => s.name);
      expect(calls(first!)).toEqual(['idem.store.getOrClaim', 'idem.store.complete']);
      expect(calls(replay!)).toEqual(['idem.store.getOrClaim']);
      for (const parent of [first!, replay!]) {
        for (const span of childrenOf(parent)) {
          expect(span.kind).toBe(SpanKind.CLIENT);
          expect(span.instrumentationScope.name).toBe(TRACER_NAME);
          expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
          expect(span.attributes[ATTR.keyHash]).toBe(storageKey(`POST ${ROUTE}`, key));
          expect(span.status.code).toBe(SpanStatusCode.UNSET);
          // Within the request, by the clocks both use (1 ms of slack for rounding).
          expect(hrMs(span.startTime)).toBeGreaterThanOrEqual(hrMs(parent.startTime) - 1);
          expect(hrMs(span.endTime)).toBeLessThanOrEqual(hrMs(parent.endTime) + 1);
          expect(hrMs(span.endTime)).toBeGreaterThanOrEqual(hrMs(span.startTime));
        }
      }
      // Every store span has a request span as its parent: none is a root of its own.
      const store = exporter.getFinishedSpans().filter((s) => s.name.startsWith('idem.store.'));
      expect(store).toHaveLength(3);
    });

    it('keeps store spans within their request when the wall clock has drifted from the performance clock', async () => {
      // The SDK times a span by Date.now(); the store call's event by the performance clock. In a
      // long-lived process the two drift apart (NTP, a VM's clock): 2 ms was seen in one CI run.
      app = await framework.start({ store: memoryStore() }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      const wall = Date.now.bind(Date);
      for (const driftMs of [5, -5]) {
        exporter.reset();
        const drifted = vi.spyOn(Date, 'now').mockImplementation(() => wall() + driftMs);
        try {
          expect((await app.post('/orders/1', { key: randomUUID() })).status).toBe(201);
          const [parent] = await requests(1);
          const spans = childrenOf(parent!);
          expect(spans.map((s) => s.name)).toEqual(['idem.store.getOrClaim', 'idem.store.complete']);
          for (const span of spans) {
            expect(hrMs(span.startTime)).toBeGreaterThanOrEqual(hrMs(parent!.startTime) - 1);
            expect(hrMs(span.endTime)).toBeLessThanOrEqual(hrMs(parent!.endTime) + 1);
          }
        } finally {
          drifted.mockRestore();
        }
      }
    });

    it('marks a 409 as conflict, a 422 as mismatch and a 400 by its code', async () => {
      app = await framework.start({ store: memoryStore(), concurrent: 'reject', required: true }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      const key = randomUUID();

      const started = app.handlers.started();
      const first = app.post('/slow', { key });
      await started;
      expect((await app.post('/slow', { key })).status).toBe(409);
      app.handlers.gate.resolve();
      await first;
      expect((await app.post('/slow', { key, body: { amount: 9 } })).status).toBe(422);
      expect((await app.post('/slow')).status).toBe(400);

      const spans = await requests(4);
      const byOutcome = new Map(spans.map((s) => [s.attributes[ATTR.outcome], s]));
      expect([...byOutcome.keys()].sort()).toEqual(['conflict', 'execute', 'key_missing', 'mismatch']);
      expect(byOutcome.get('conflict')?.attributes[ATTR.waitedMs]).toBeGreaterThanOrEqual(0);
      expect(byOutcome.get('conflict')?.events.map((e) => e.name)).toEqual(['idem.conflict']);
      expect(byOutcome.get('mismatch')?.attributes[ATTR.keyHash]).toBe(storageKey('POST /slow', key));
      expect(byOutcome.get('key_missing')?.attributes[ATTR.keyHash]).toBeUndefined();
      expect(childrenOf(byOutcome.get('key_missing')!)).toEqual([]);
    });

    it('marks an execution whose handler threw, on its own span, before the answer ends it', async () => {
      app = await framework.start({ store: memoryStore() }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      expect((await app.post('/throw', { key: randomUUID() })).status).toBe(500);
      const [span] = await requests(1);
      expect(span?.attributes[ATTR.outcome]).toBe('execute');
      // Koa's middleware sees the throw (failed); Express's own error handler answers a 500 that idem
      // captures and does not keep (not_cacheable). Either way the key was released, before the answer.
      expect(span?.attributes[ATTR.executeOutcome]).toBe(framework.name === 'Koa' ? 'failed' : 'not_cacheable');
      expect(childrenOf(span!).map((s) => s.name)).toEqual(['idem.store.getOrClaim', 'idem.store.release']);
    });

    it("records a duplicate's wait, its waitFor span and its replay on its own span", async () => {
      app = await framework.start({ store: memoryStore(), concurrent: 'wait', waitTimeout: '10s' }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      const key = randomUUID();
      const started = app.handlers.started();
      const first = app.post('/slow', { key });
      await started;
      const waiting = new Promise((r) => app?.middleware.events.once('wait', r));
      const duplicate = app.post('/slow', { key });
      await waiting;
      app.handlers.gate.resolve();
      await Promise.all([first, duplicate]);

      const spans = await requests(2);
      const dup = spans.find((s) => s.attributes[ATTR.outcome] === 'replay');
      expect(dup?.events.map((e) => e.name)).toEqual(['idem.wait', 'idem.replay']);
      expect(childrenOf(dup!).map((s) => s.name)).toEqual([
        'idem.store.getOrClaim',
        'idem.store.waitFor',
        'idem.store.getOrClaim',
      ]);
    });
  });
}

describe('idempotencyTracing: attaching', () => {
  it('adds no listener until attached, and none after close: no work on the request path', async () => {
    app = await frameworks[0]!.start({ store: memoryStore() }, serverSpans);
    const events = app.middleware.events;
    const names = ['replay', 'execute', 'storeCall', 'storeError', 'conflict', 'rejected', 'wait'] as const;
    expect(names.filter((n) => events.hasListeners(n))).toEqual([]);
    const handle = idempotencyTracing(app.middleware);
    expect(names.filter((n) => events.hasListeners(n))).toEqual([...names]);
    handle.close();
    expect(names.filter((n) => events.hasListeners(n))).toEqual([]);

    await app.post('/orders/1', { key: randomUUID() });
    const [span] = await requests(1);
    expect(Object.keys(span!.attributes).filter((k) => k.startsWith('idem.'))).toEqual([]);
    expect(exporter.getFinishedSpans()).toHaveLength(1);
  });

  it('with storeSpans: false, sets the outcome but makes no span and leaves storeCall unheard (calls untimed)', async () => {
    app = await frameworks[1]!.start({ store: memoryStore() }, serverSpans);
    tracing = idempotencyTracing(app.middleware, { storeSpans: false });
    expect(app.middleware.events.hasListeners('storeCall')).toBe(false);
    await app.post('/orders/1', { key: randomUUID() });
    const [span] = await requests(1);
    expect(span?.attributes[ATTR.outcome]).toBe('execute');
    expect(exporter.getFinishedSpans()).toHaveLength(1);
  });

  it('makes no store span without a recording request span (no orphan roots)', async () => {
    app = await frameworks[0]!.start({ store: memoryStore() });
    tracing = idempotencyTracing(app.middleware);
    expect((await app.post('/orders/1', { key: randomUUID() })).status).toBe(201);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('uses the tracer it is given, and refuses bad options with a ConfigError naming the option', async () => {
    const other = new InMemorySpanExporter();
    const otherProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(other)] });
    app = await frameworks[0]!.start({ store: memoryStore() }, serverSpans);
    tracing = idempotencyTracing(app.middleware, { tracer: otherProvider.getTracer('mine') });
    await app.post('/orders/1', { key: randomUUID() });
    await requests(1);
    expect(other.getFinishedSpans().map((s) => [s.name, s.instrumentationScope.name])).toEqual([
      ['idem.store.getOrClaim', 'mine'],
      ['idem.store.complete', 'mine'],
    ]);
    await otherProvider.shutdown();

    const option = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).option;
      }
      return undefined;
    };
    const mw = app.middleware;
    expect(option(() => idempotencyTracing(mw, { tracer: {} as never }))).toBe('tracer');
    expect(option(() => idempotencyTracing(mw, { storeSpans: 'yes' as never }))).toBe('storeSpans');
    expect(option(() => idempotencyTracing(mw, { tracr: 1 } as never))).toBe('tracr');
    expect(() => idempotencyTracing({} as never)).toThrow(TypeError);
    expect(() => idempotencyTracing([])).toThrow(TypeError);
    expect(() => cacheTracing({} as never)).toThrow(TypeError);
  });
});

describe('idempotencyTracing with a stopped Redis', () => {
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
    it(`${framework.name}: marks a 503 store_unavailable, with the store's error, and its failed store span`, async () => {
      app = await framework.start({ store: redisStore({ client, commandTimeout: '300ms' }) }, serverSpans);
      tracing = idempotencyTracing(app.middleware);
      try {
        expect((await app.post('/orders/1', { key: randomUUID() })).status).toBe(201);
        await server.kill();
        const down = await app.post('/orders/2', { key: randomUUID() });
        expect(down.status).toBe(503);

        const [, failed] = await requests(2);
        expect(failed?.attributes[ATTR.outcome]).toBe('store_unavailable');
        expect(failed?.attributes[ATTR.failOpen]).toBe(false);
        const event = failed?.events.find((e) => e.name === 'idem.store_unavailable');
        expect(event?.attributes?.[ATTR.storeOperation]).toBe('claim');
        expect(event?.attributes?.['exception.message']).toEqual(expect.any(String));
        const [call] = childrenOf(failed!);
        expect(call?.name).toBe('idem.store.getOrClaim');
        expect(call?.status.code).toBe(SpanStatusCode.ERROR);
      } finally {
        await server.restart();
      }
    });
  }
});

describe('cacheTracing', () => {
  it('adds hits, misses, loads and stale values to the span active where the cache is called', async () => {
    let now = 1_700_000_000_000;
    const cache = createCache({ namespace: 'ops-trace', ttl: '1s', grace: '1m', clock: () => now });
    const handle = cacheTracing(cache);
    try {
      const inSpan = <T>(name: string, fn: () => Promise<T>): Promise<T> =>
        serverTracer.startActiveSpan(name, (span) => fn().finally(() => span.end()));
      await inSpan('first', () => cache.getOrSet('a', () => Promise.resolve(1)));
      await inSpan('second', () => cache.getOrSet('a', () => Promise.resolve(2)));
      now += 2_000;
      await inSpan('stale', () => cache.getOrSet('a', () => Promise.reject(new Error('down'))));

      const events = (name: string): string[] =>
        (exporter.getFinishedSpans().find((s) => s.name === name)?.events ?? []).map(
          (e) => `${e.name}${e.attributes?.[ATTR.cacheLayer] ? ` ${String(e.attributes[ATTR.cacheLayer])}` : ''}`,
        );
      expect(events('first')).toContain('idem.cache.miss l1');
      expect(events('first')).toContain('idem.cache.load');
      expect(events('second')).toEqual(['idem.cache.hit l1']);
      expect(events('stale')).toContain('idem.cache.stale');
      const stale = exporter
        .getFinishedSpans()
        .find((s) => s.name === 'stale')
        ?.events.find((e) => e.name === 'idem.cache.stale');
      expect(stale?.attributes?.[ATTR.cacheReason]).toBe('error');
      // The cache's keys are the application's: not recorded.
      expect(JSON.stringify(exporter.getFinishedSpans().map((s) => s.events))).not.toContain('"a"');
    } finally {
      handle.close();
      await cache.close();
    }
  });
});

describe('README', () => {
  it('documents the defaults and every attribute', () => {
    const text = readFileSync(resolve(root, 'packages/opentelemetry/README.md'), 'utf8');
    for (const [name, value] of Object.entries(defaults)) {
      expect(text).toMatch(new RegExp(`\\| \`${name}\` \\| \`${String(value)}\``));
    }
    for (const attribute of Object.values(ATTR)) expect(text, attribute).toContain(`\`${attribute}\``);
  });
});
