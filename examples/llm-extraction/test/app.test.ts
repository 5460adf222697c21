/**
 * The service over HTTP on the memory store: validation, one model call per meeting however the
 * duplicates arrive, byte-identical replays, failures not stored, metrics, request IDs in logs.
 */
import type { Server } from 'node:http';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type Service } from '../src/app.js';
import { memoryBackend } from '../src/backend.js';
import { testConfig } from '../src/config.js';
import type { CustomerDirectory } from '../src/customers.js';
import { idempotencyKeyOf } from '../src/extraction.js';
import { parseMeetingPayload } from '../src/payload.js';
import {
  closeServer,
  fakeLlm,
  listen,
  meeting,
  memoryLogger,
  metricValue,
  waitTracker,
  type FakeLlm,
  type WaitTracker,
} from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('llm-extraction on the memory store', () => {
  let service: Service;
  let server: Server;
  let llm: FakeLlm;
  let waits: WaitTracker;
  let lines: Record<string, unknown>[];
  let seq = 0;
  /** A meeting id no other test uses. */
  const fresh = (): string => `meeting-${++seq}`;

  beforeAll(async () => {
    llm = fakeLlm();
    const backend = memoryBackend();
    waits = waitTracker();
    const log = memoryLogger();
    lines = log.lines;
    service = createApp(testConfig(), {
      backend: { ...backend, store: waits.wrap(backend.store) },
      llm,
      logger: log.logger,
    });
    ({ server } = await listen(service.app));
  });

  afterAll(async () => {
    await closeServer(server);
    await service.close();
  });

  describe('validation', () => {
    it('answers a bad payload 400 with a problem listing every invalid field, and calls no model', async () => {
      const before = llm.calls;
      const res = await request(server)
        .post('/extract')
        .send({ transcript: '  ', metadata: { meeting_id: 7.5, meet_date: '2024-02-30' } });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({
        type: 'urn:llm-extraction:problem:invalid_request',
        status: 400,
        code: 'invalid_request',
      });
      expect(res.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual([
        '/transcript',
        '/metadata/meeting_id',
        '/metadata/customer_id',
        '/metadata/meet_date',
      ]);
      expect(res.body.detail).toContain('4 fields are invalid');
      expect(llm.calls).toBe(before);
    });

    it('answers a missing metadata object, a non-object body, malformed JSON and a non-JSON body with problems', async () => {
      const noMeta = await request(server).post('/extract').send({ transcript: 'hi' });
      expect(noMeta.status).toBe(400);
      expect(noMeta.body.errors).toEqual([
        { pointer: '/metadata', detail: 'is required: { meeting_id, customer_id, meet_date }' },
      ]);

      const array = await request(server).post('/analyze').send([1, 2]);
      expect(array.status).toBe(400);
      expect(array.body.errors).toEqual([{ pointer: '', detail: 'must be a JSON object, got an array' }]);

      const malformed = await request(server)
        .post('/extract')
        .set('content-type', 'application/json')
        .send('{"transcript":');
      expect(malformed.status).toBe(400);
      expect(malformed.body.code).toBe('malformed_json');

      const text = await request(server).post('/extract').set('content-type', 'text/plain').send('hello');
      expect(text.status).toBe(415);
      expect(text.body.code).toBe('unsupported_media_type');
    });

    it('stores nothing for a rejected request: the valid retry runs the model', async () => {
      const id = fresh();
      const bad = await request(server)
        .post('/extract')
        .send({ ...meeting(id), transcript: 42 });
      expect(bad.status).toBe(400);
      const before = llm.calls;
      const good = await request(server).post('/extract').send(meeting(id));
      expect(good.status).toBe(200);
      expect(good.headers['idempotent-replayed']).toBeUndefined();
      expect(llm.calls).toBe(before + 1);
    });
  });

  describe('exactly one model call per meeting', () => {
    it('replays a repeated request byte for byte with Idempotent-Replayed: true', async () => {
      const id = fresh();
      const before = llm.calls;
      const first = await request(server).post('/extract').send(meeting(id));
      const second = await request(server).post('/extract').send(meeting(id));

      expect(first.status).toBe(200);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(second.status).toBe(200);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.text).toBe(first.text);
      expect(llm.calls).toBe(before + 1);
      expect(first.body.idempotency_key).toBe(idempotencyKeyOf('extract', parseMeetingPayload(meeting(id))));
      expect(first.body.idempotency_key).toMatch(/^[0-9a-f]{64}$/);
      expect(first.body.extraction.participants).toEqual(['Alice', 'Bob']);
    });

    it('derives the same key from trimmed ids and any ISO form of the same day', async () => {
      const id = fresh();
      const before = llm.calls;
      const first = await request(server)
        .post('/extract')
        .send(meeting(id, { meet_date: '2024-05-01' }));
      const variant = await request(server)
        .post('/extract')
        .send(meeting(`  ${id}\t`, { customer_id: ' cust-1 ', meet_date: '2024-05-01T23:30:00-05:00' }));
      expect(variant.headers['idempotent-replayed']).toBe('true');
      expect(variant.text).toBe(first.text);
      expect(first.body.meeting).toEqual({ meeting_id: id, customer_id: 'cust-1', meet_date: '2024-05-01' });
      expect(llm.calls).toBe(before + 1);
    });

    it('keeps /extract and /analyze of the same meeting apart, and another day is another key', async () => {
      const id = fresh();
      const before = llm.calls;
      const extract = await request(server).post('/extract').send(meeting(id));
      const analyze = await request(server).post('/analyze').send(meeting(id));
      const nextDay = await request(server)
        .post('/extract')
        .send(meeting(id, { meet_date: '2024-05-02' }));
      expect([extract.status, analyze.status, nextDay.status]).toEqual([200, 200, 200]);
      expect(analyze.headers['idempotent-replayed']).toBeUndefined();
      expect(nextDay.headers['idempotent-replayed']).toBeUndefined();
      expect(analyze.body.analysis.sentiment).toBeDefined();
      expect(analyze.body.idempotency_key).not.toBe(extract.body.idempotency_key);
      expect(llm.calls).toBe(before + 3);
    });

    it('answers ten concurrent duplicates with one model call: nine wait for it and get its response', async () => {
      const id = fresh();
      const before = llm.calls;
      waits.reset();
      const release = llm.hold();
      const responses = Promise.all(
        Array.from({ length: 10 }, () => request(server).post('/extract').send(meeting(id))),
      );
      // Release the model only once the nine others are provably waiting on the in-flight key.
      try {
        await waits.waiters(9);
      } finally {
        release();
      }
      const all = await responses;

      expect(llm.calls).toBe(before + 1);
      expect(all.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(new Set(all.map((r) => r.text)).size).toBe(1);
      expect(all.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(9);
    });

    it('answers 422 when the same meeting comes back with a different transcript', async () => {
      const id = fresh();
      await request(server).post('/extract').send(meeting(id));
      const changed = await request(server)
        .post('/extract')
        .send(meeting(id, { transcript: 'Alice: something else entirely.' }));
      expect(changed.status).toBe(422);
      expect(changed.body.code).toBe('key_reused');
    });
  });

  describe('model failures', () => {
    it('answers 502 without storing it, so the retry calls the model again', async () => {
      const id = fresh();
      const before = llm.calls;
      llm.failNext();
      const failed = await request(server).post('/extract').send(meeting(id));
      expect(failed.status).toBe(502);
      expect(failed.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(failed.body).toMatchObject({
        code: 'llm_failed',
        llm_error: 'llm_upstream_error',
        detail: 'The model API failed (HTTP 500); retry later.',
      });
      // What the provider said stays in the logs.
      expect(JSON.stringify(failed.body)).not.toContain('boom');

      const retry = await request(server).post('/extract').send(meeting(id));
      expect(retry.status).toBe(200);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      const replay = await request(server).post('/extract').send(meeting(id));
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(llm.calls).toBe(before + 2);
    });
  });

  describe('request IDs and logs', () => {
    it('echoes a sane X-Request-ID and replaces a missing or unsafe one with a UUID', async () => {
      const given = await request(server).get('/health').set('X-Request-ID', 'client-abc.123');
      expect(given.headers['x-request-id']).toBe('client-abc.123');
      const none = await request(server).get('/health');
      expect(none.headers['x-request-id']).toMatch(UUID);
      const spaced = await request(server).get('/health').set('X-Request-ID', 'a b <script>');
      expect(spaced.headers['x-request-id']).toMatch(UUID);
      const long = await request(server).get('/health').set('X-Request-ID', 'x'.repeat(129));
      expect(long.headers['x-request-id']).toMatch(UUID);
      const problem = await request(server).post('/extract').set('X-Request-ID', 'bad-1').send({});
      expect(problem.headers['x-request-id']).toBe('bad-1');
      expect(problem.body.instance).toBe('urn:request:bad-1');
      const unknown = await request(server).get('/nope').set('X-Request-ID', 'lost-1');
      expect(unknown.status).toBe(404);
      expect(unknown.headers['x-request-id']).toBe('lost-1');
    });

    it('carries the request ID in every log line, and logs a replay with the record age', async () => {
      const id = fresh();
      await request(server).post('/extract').set('X-Request-ID', `${id}-first`).send(meeting(id));
      await request(server).post('/extract').set('X-Request-ID', `${id}-again`).send(meeting(id));

      const first = lines.filter((l) => l.requestId === `${id}-first`).map((l) => l.msg);
      expect(first).toEqual(
        expect.arrayContaining(['calling the model', 'model call done', 'handler ran: response stored for replay']),
      );
      const again = lines.filter((l) => l.requestId === `${id}-again`);
      const replay = again.find((l) => String(l.msg).startsWith('replayed the stored response'));
      expect(replay).toMatchObject({ status: 200, key: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(replay!.ageMs).toEqual(expect.any(Number));
      expect(again.map((l) => l.msg)).not.toContain('calling the model');
      // No line of either request lost its ID on the way (body parser, engine, events).
      const ours = lines.filter((l) => typeof l.key === 'string' && l.key === replay!.key);
      expect(ours.every((l) => l.requestId === `${id}-first` || l.requestId === `${id}-again`)).toBe(true);
    });
  });

  describe('/health and /metrics', () => {
    it('reports the store and the model', async () => {
      const res = await request(server).get('/health');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: 'ok',
        store: { kind: 'memory', reachable: true },
        llm: { provider: 'fake', model: 'fake-1' },
      });
      expect(res.body.uptime_s).toEqual(expect.any(Number));
    });

    it('counts model calls, replays, executions, cost saved and durations by replay/miss', async () => {
      // A fresh app, so the counts are this test's alone.
      const own = fakeLlm();
      const app = createApp(testConfig(), { llm: own });
      try {
        const body = meeting('metrics-1');
        await request(app.app).post('/extract').send(body);
        for (let i = 0; i < 3; i++) await request(app.app).post('/extract').send(body);
        own.failNext();
        await request(app.app).post('/analyze').send(meeting('metrics-2'));

        const res = await request(app.app).get('/metrics');
        expect(res.status).toBe(200);
        const text = res.text;
        expect(metricValue(text, 'llm_calls_total', { task: 'extract', outcome: 'ok' })).toBe(1);
        expect(metricValue(text, 'llm_calls_total', { task: 'analyze', outcome: 'llm_upstream_error' })).toBe(1);
        // idem's metrics, from @idem/prometheus on the service's registry.
        expect(metricValue(text, 'idem_requests_total', { route: '/extract', outcome: 'execute' })).toBe(1);
        expect(metricValue(text, 'idem_requests_total', { route: '/extract', outcome: 'replay' })).toBe(3);
        expect(metricValue(text, 'idem_handler_duration_seconds_count', { route: '/extract', outcome: 'stored' })).toBe(
          1,
        );
        expect(
          metricValue(text, 'idem_handler_duration_seconds_count', { route: '/analyze', outcome: 'not_cacheable' }),
        ).toBe(1);
        expect(metricValue(text, 'llm_tokens_total', { task: 'extract', type: 'prompt' })).toBe(1000);
        // 1000 prompt tokens at $0.15/M + 200 completion tokens at $0.60/M = $0.00027 per call.
        expect(metricValue(text, 'llm_cost_usd_total', { task: 'extract' })).toBeCloseTo(0.00027, 9);
        expect(metricValue(text, 'llm_cost_saved_usd_total', { route: '/extract' })).toBeCloseTo(3 * 0.00027, 9);
        expect(
          metricValue(text, 'http_request_duration_seconds_count', { route: '/extract', idempotency: 'replay' }),
        ).toBe(3);
        expect(
          metricValue(text, 'http_request_duration_seconds_count', { route: '/extract', idempotency: 'miss' }),
        ).toBe(1);
        expect(metricValue(text, 'customer_directory_calls_total', { outcome: 'ok' })).toBe(1);
      } finally {
        await app.close();
      }
    });
  });
});

describe('customer lookups through @idem/cache', () => {
  let service: Service | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  /** A directory that counts calls and fails while `down`. */
  function directory(): CustomerDirectory & { calls: number; down: boolean } {
    return {
      calls: 0,
      down: false,
      async lookup(id) {
        this.calls++;
        if (this.down) throw new Error('CRM down');
        return { id, name: `Customer ${id}`, tier: 'growth', account_manager: 'Ana' };
      },
    };
  }

  it('loads a customer once and serves it from memory after', async () => {
    const crm = directory();
    service = createApp(testConfig(), { llm: fakeLlm(), directory: crm });
    const first = await request(service.app).get('/customers/c-1');
    const second = await request(service.app).get('/customers/c-1');
    expect(first.body.cache).toMatchObject({ source: 'loader', stale: false });
    expect(second.body.cache).toMatchObject({ source: 'l1', stale: false });
    expect(second.body.customer).toEqual(first.body.customer);
    expect(crm.calls).toBe(1);
  });

  it('serves the last known record, marked stale, when the directory fails after it expired', async () => {
    const crm = directory();
    const config = testConfig();
    service = createApp(
      { ...config, customers: { ...config.customers, ttlMs: 1 } },
      { llm: fakeLlm(), directory: crm },
    );
    await request(service.app).get('/customers/c-2');
    crm.down = true;
    // The 1 ms TTL has passed once the next macrotask runs after 5 ms.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const res = await request(service.app)
      .post('/extract')
      .send(meeting('stale-1', { customer_id: 'c-2' }));
    expect(res.status).toBe(200);
    expect(res.body.customer).toEqual({
      id: 'c-2',
      name: 'Customer c-2',
      tier: 'growth',
      account_manager: 'Ana',
      stale: true,
    });
    expect(crm.calls).toBe(2);
  });

  it('answers 502 (not stored) when the directory fails and nothing is cached', async () => {
    const crm = directory();
    const llm = fakeLlm();
    service = createApp(testConfig(), { llm, directory: crm });
    crm.down = true;
    const failed = await request(service.app)
      .post('/extract')
      .send(meeting('crm-1', { customer_id: 'c-3' }));
    expect(failed.status).toBe(502);
    expect(failed.body.code).toBe('customer_directory_unavailable');
    expect(llm.calls).toBe(0);
    crm.down = false;
    const retry = await request(service.app)
      .post('/extract')
      .send(meeting('crm-1', { customer_id: 'c-3' }));
    expect(retry.status).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
  });
});
