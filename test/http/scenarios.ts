/**
 * The HTTP scenario suite, written once and run against every adapter (Express 4, Express 5,
 * Koa 2, Koa 3) and every store. It talks real HTTP to a listening server and counts handler
 * executions inside the handlers.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { memoryStore, storageKey, type IdempotencyOptions, type IdempotencyStore } from '@idem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { TIMEOUT_BODY, type AdapterUnderTest, type ScenarioApp, type ScenarioAppOptions } from '../apps/scenario.js';
import { chaosStore, forgingStore } from '../harness/chaos-store.js';

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface PostOptions {
  key?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** POSTs JSON with fetch (undici): connections are pooled but not limited, so Promise.all is truly parallel. */
/**
 * The `x-tenant` header from what a `scope` function receives: the framework's own request (a
 * `headers` object on Express, Koa and Fastify; a context whose `req.header()` reads it on Hono).
 */
function tenantOf(native: unknown): string | undefined {
  const n = native as {
    headers?: Record<string, string | undefined>;
    req?: { header?(name: string): string | undefined };
  };
  return n.headers !== undefined ? n.headers['x-tenant'] : n.req?.header?.('x-tenant');
}

export async function post(app: ScenarioApp, path: string, options: PostOptions = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.key !== undefined) headers['idempotency-key'] = options.key;
  const res = await fetch(app.url + path, { method: 'POST', headers, body: JSON.stringify(options.body ?? {}) });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body.toString()) };
}

/** POSTs with raw header lines (repeated headers, latin1 bytes) through node:http. */
export function rawPost(
  app: ScenarioApp,
  path: string,
  headerLines: [string, string][],
): Promise<{ status: number; body: string; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const url = new URL(app.url + path);
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST' });
    for (const [name] of headerLines) {
      const values = headerLines.filter(([n]) => n === name).map(([, v]) => v);
      req.setHeader(name, values.length === 1 ? (values[0] as string) : values);
    }
    req.setHeader('content-type', 'application/json');
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          contentType: res.headers['content-type'],
        }),
      );
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** Resolves when `count` of the promises have settled. */
function settled<T>(promises: Promise<T>[], count: number): Promise<void> {
  let done = 0;
  return new Promise((resolve) => {
    for (const p of promises) {
      void p
        .finally(() => {
          if (++done === count) resolve();
        })
        .catch(() => {});
    }
  });
}

function expectProblem(res: { status: number; headers: Headers; json(): unknown }, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = res.json() as { title?: unknown; detail?: unknown };
  expect(problem).toMatchObject({ type: `urn:idem:problem:${code}`, status, code });
  expect(typeof problem.title).toBe('string');
  expect(typeof problem.detail).toBe('string');
}

export interface ScenarioSuiteOptions {
  /** A fresh store per test; default memoryStore(). */
  createStore?: () => IdempotencyStore | Promise<IdempotencyStore>;
}

export function httpScenarios(adapter: AdapterUnderTest, suite: ScenarioSuiteOptions = {}): void {
  describe(`HTTP scenarios: ${adapter.name}`, () => {
    const apps: ScenarioApp[] = [];
    const stores: IdempotencyStore[] = [];
    afterEach(async () => {
      for (const app of apps) app.probe.gate.open();
      await Promise.all(apps.splice(0).map((a) => a.close()));
      await Promise.all(stores.splice(0).map(async (s) => s.close?.()));
    });

    async function start(
      idempotency: IdempotencyOptions<never> = {},
      extra: Omit<ScenarioAppOptions, 'idempotency'> = {},
    ): Promise<ScenarioApp> {
      let store = idempotency.store;
      if (store === undefined) {
        store = await (suite.createStore ?? (() => memoryStore()))();
        stores.push(store);
      }
      const app = await adapter.start({ idempotency: { ...idempotency, store }, ...extra });
      apps.push(app);
      return app;
    }

    const key = (): string => randomUUID();

    it('replays the identical status, body and allowed headers, and marks the replay', async () => {
      const app = await start();
      const k = key();
      const first = await post(app, '/orders', { key: k, body: { amount: 42 } });
      const second = await post(app, '/orders', { key: k, body: { amount: 42 } });
      expect(first.status).toBe(201);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      expect(second.status).toBe(201);
      expect(second.body.equals(first.body)).toBe(true);
      expect(second.json()).toEqual({ id: 'ord_1', n: 1, body: { amount: 42 } });
      for (const h of ['content-type', 'location', 'x-order-trace'])
        expect(second.headers.get(h)).toBe(first.headers.get(h));
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('orders')).toBe(1);
    });

    it('never replays Set-Cookie', async () => {
      const app = await start();
      const k = key();
      const first = await post(app, '/orders', { key: k });
      const second = await post(app, '/orders', { key: k });
      expect(first.headers.get('set-cookie')).toMatch(/session=s1/);
      expect(second.headers.get('set-cookie')).toBeNull();
    });

    it('replays a 201 with Location and an empty body as such', async () => {
      const app = await start();
      const k = key();
      const first = await post(app, '/empty', { key: k });
      const second = await post(app, '/empty', { key: k });
      expect(first.status).toBe(201);
      expect(second.status).toBe(201);
      expect(second.body.length).toBe(0);
      expect(second.headers.get('location')).toBe('/things/1');
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('empty')).toBe(1);
    });

    it('replays a binary body byte for byte', async () => {
      const app = await start();
      const k = key();
      const first = await post(app, '/buffer', { key: k });
      const second = await post(app, '/buffer', { key: k });
      const expected = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      expect(first.body.equals(expected)).toBe(true);
      expect(second.body.equals(expected)).toBe(true);
      expect(second.headers.get('content-type')).toBe('application/octet-stream');
      expect(app.probe.count('buffer')).toBe(1);
    });

    it('replays a body written in several chunks exactly', async () => {
      const app = await start();
      const k = key();
      const first = await post(app, '/chunked', { key: k });
      const second = await post(app, '/chunked', { key: k });
      expect(first.body.toString()).toBe('first,second,third-1');
      expect(second.body.equals(first.body)).toBe(true);
      expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(app.probe.count('chunked')).toBe(1);
    });

    it("50 concurrent duplicates with concurrent: 'reject' run the handler once: 1 success, 49 × 409 with Retry-After", async () => {
      const app = await start({ concurrent: 'reject' });
      const k = key();
      const requests = Array.from({ length: 50 }, () => post(app, '/slow', { key: k, body: { a: 1 } }));
      // The first holds the gate; the others must all be answered 409 while it is held.
      await settled(requests, 49);
      app.probe.gate.open();
      const results = await Promise.all(requests);
      const ok = results.filter((r) => r.status === 200);
      const conflicts = results.filter((r) => r.status === 409);
      expect(ok).toHaveLength(1);
      expect(conflicts).toHaveLength(49);
      for (const c of conflicts) {
        expectProblem(c, 409, 'in_flight');
        expect(Number(c.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      expect(app.probe.count('slow')).toBe(1);
    });

    it("50 concurrent duplicates with concurrent: 'wait' run the handler once and all get its response", async () => {
      const app = await start({ concurrent: 'wait' });
      const k = key();
      const requests = Array.from({ length: 50 }, () => post(app, '/slow', { key: k, body: { a: 1 } }));
      await app.probe.arrivals(50);
      app.probe.gate.open();
      const results = await Promise.all(requests);
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(new Set(results.map((r) => r.body.toString())).size).toBe(1);
      expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(49);
      expect(app.probe.count('slow')).toBe(1);
    });

    it('a waiting duplicate gets 409 after waitTimeout while the first is still running', async () => {
      const app = await start({ concurrent: 'wait', waitTimeout: 150 });
      const k = key();
      const first = post(app, '/slow', { key: k });
      await app.probe.running('slow');
      const second = await post(app, '/slow', { key: k });
      expectProblem(second, 409, 'in_flight');
      app.probe.gate.open();
      expect((await first).status).toBe(200);
      expect(app.probe.count('slow')).toBe(1);
    });

    it('a waiting duplicate runs the handler itself when the first one failed', async () => {
      const app = await start({ concurrent: 'wait' });
      const k = key();
      const first = post(app, '/flaky', { key: k });
      const second = post(app, '/flaky', { key: k });
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, b.status].sort()).toEqual([200, 500]);
      expect(app.probe.count('flaky')).toBe(2);
    });

    it('the same key with a different body is 422, and 422 wins over 409 while in flight', async () => {
      const app = await start();
      const k = key();
      const first = post(app, '/slow', { key: k, body: { amount: 1 } });
      await app.probe.running('slow');
      const mismatch = await post(app, '/slow', { key: k, body: { amount: 2 } });
      expectProblem(mismatch, 422, 'key_reused');
      const conflict = await post(app, '/slow', { key: k, body: { amount: 1 } });
      expectProblem(conflict, 409, 'in_flight');
      app.probe.gate.open();
      expect((await first).status).toBe(200);
      const afterwards = await post(app, '/slow', { key: k, body: { amount: 2 } });
      expectProblem(afterwards, 422, 'key_reused');
      expect(app.probe.count('slow')).toBe(1);
    });

    it('key order in the JSON body does not change the fingerprint', async () => {
      const app = await start();
      const k = key();
      await post(app, '/echo', { key: k, body: { a: 1, b: { c: 2, d: 3 } } });
      const again = await post(app, '/echo', { key: k, body: { b: { d: 3, c: 2 }, a: 1 } });
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('echo')).toBe(1);
    });

    it('a missing key is 400 when required and passes through otherwise', async () => {
      const strict = await start({ required: true });
      expectProblem(await post(strict, '/echo'), 400, 'key_missing');
      expect(strict.probe.count('echo')).toBe(0);
      const lax = await start();
      expect((await post(lax, '/echo')).status).toBe(200);
      expect((await post(lax, '/echo')).status).toBe(200);
      expect(lax.probe.count('echo')).toBe(2);
    });

    it('every invalid key form is 400 key_invalid and executes nothing', async () => {
      const app = await start();
      const forms: [string, [string, string][]][] = [
        ['empty', [['idempotency-key', '']]],
        ['empty sf-string', [['idempotency-key', '""']]],
        ['256 characters', [['idempotency-key', 'a'.repeat(256)]]],
        [
          'sent twice',
          [
            ['idempotency-key', 'a'],
            ['idempotency-key', 'b'],
          ],
        ],
        ['a list', [['idempotency-key', 'a, b']]],
        ['a list of sf-strings', [['idempotency-key', '"a", "b"']]],
        ['unterminated', [['idempotency-key', '"abc']]],
        ['a tab inside', [['idempotency-key', 'ab\tc']]],
        ['non-ASCII', [['idempotency-key', 'caf\u00e9']]],
        ['bad escape', [['idempotency-key', '"a\\nb"']]],
      ];
      for (const [what, headers] of forms) {
        const res = await rawPost(app, '/echo', headers);
        expect(res.status, what).toBe(400);
        expect(res.contentType, what).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(res.body).code, what).toBe('key_invalid');
      }
      expect(app.probe.count('echo')).toBe(0);
    });

    it('accepts the sf-string form and the bare token as the same key', async () => {
      const app = await start();
      const k = `order-${key()}`;
      const first = await rawPost(app, '/echo', [['idempotency-key', `"${k}"`]]);
      const second = await rawPost(app, '/echo', [['idempotency-key', k]]);
      expect(first.status).toBe(200);
      expect(second.body).toBe(first.body);
      expect(app.probe.count('echo')).toBe(1);
      const max = await rawPost(app, '/echo', [['idempotency-key', key().padEnd(255, 'k')]]);
      expect(max.status).toBe(200);
    });

    it('a 500 is not stored: the retry runs the handler again', async () => {
      const app = await start();
      const k = key();
      expect((await post(app, '/fail', { key: k })).status).toBe(500);
      const retry = await post(app, '/fail', { key: k });
      expect(retry.status).toBe(500);
      expect(retry.json().n).toBe(2);
      expect(app.probe.count('fail')).toBe(2);
    });

    // regression: every Express idempotency package before idem left the key in flight here (409 until expiry)
    it("a throw that reaches the framework's default error handling releases the key", async () => {
      const app = await start();
      const k = key();
      expect((await post(app, '/throw', { key: k })).status).toBe(500);
      const retry = await post(app, '/throw', { key: k });
      expect(retry.status).toBe(500);
      expect(app.probe.count('throw')).toBe(2);
      const flakyKey = key();
      expect((await post(app, '/flaky', { key: flakyKey })).status).toBe(500);
      const ok = await post(app, '/flaky', { key: flakyKey });
      expect(ok.status).toBe(200);
      const replay = await post(app, '/flaky', { key: flakyKey });
      expect(replay.body.equals(ok.body)).toBe(true);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('flaky')).toBe(2);
    });

    it('stores 4xx results but not transient ones (408, 409, 425, 429)', async () => {
      const app = await start();
      for (const code of [400, 404]) {
        const k = key();
        await post(app, `/status/${code}`, { key: k });
        const replay = await post(app, `/status/${code}`, { key: k });
        expect(replay.status).toBe(code);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(app.probe.count(`status-${code}`)).toBe(1);
      }
      for (const code of [408, 409, 425, 429]) {
        const k = key();
        await post(app, `/status/${code}`, { key: k });
        const retry = await post(app, `/status/${code}`, { key: k });
        expect(retry.headers.get('idempotent-replayed')).toBeNull();
        expect(app.probe.count(`status-${code}`)).toBe(2);
      }
    });

    it("another tenant's scope never sees the replay", async () => {
      const app = await start({
        scope: (req: unknown) => tenantOf(req),
      } as never);
      const k = key();
      const a = await post(app, '/orders', { key: k, headers: { 'x-tenant': 'acme' } });
      const b = await post(app, '/orders', { key: k, headers: { 'x-tenant': 'globex' } });
      expect(b.headers.get('idempotent-replayed')).toBeNull();
      expect(b.json().n).toBe(2);
      const a2 = await post(app, '/orders', { key: k, headers: { 'x-tenant': 'acme' } });
      expect(a2.body.equals(a.body)).toBe(true);
      expect(app.probe.count('orders')).toBe(2);
    });

    it('a throwing scope function is a 500 through the framework and runs nothing; the server keeps serving', async () => {
      const app = await start({
        scope: (req: unknown) => {
          const tenant = tenantOf(req);
          if (tenant === undefined) throw new Error('no tenant');
          return tenant;
        },
      } as never);
      expect((await post(app, '/orders', { key: key() })).status).toBe(500);
      expect(app.probe.count('orders')).toBe(0);
      expect((await post(app, '/orders', { key: key(), headers: { 'x-tenant': 'acme' } })).status).toBe(201);
      expect(app.probe.count('orders')).toBe(1);
    });

    it('a key becomes new again after its ttl', async () => {
      let now = Date.now();
      const app = await start({ store: memoryStore({ clock: () => now }), ttl: '1h' });
      const k = key();
      await post(app, '/echo', { key: k });
      now += 59 * 60_000;
      expect((await post(app, '/echo', { key: k })).headers.get('idempotent-replayed')).toBe('true');
      now += 60_001;
      const fresh = await post(app, '/echo', { key: k });
      expect(fresh.headers.get('idempotent-replayed')).toBeNull();
      expect(app.probe.count('echo')).toBe(2);
    });

    it('derives keys from body fields when configured, without a header', async () => {
      const app = await start({ header: false, key: ['body.meeting_id', 'body.customer_id'], fingerprint: false });
      const [m1, m2] = [key(), key()];
      const first = await post(app, '/echo', { body: { meeting_id: m1, customer_id: 'c1', note: 'x' } });
      const same = await post(app, '/echo', { body: { customer_id: 'c1', meeting_id: m1, note: 'y' } });
      expect(same.headers.get('idempotent-replayed')).toBe('true');
      expect(same.body.equals(first.body)).toBe(true);
      const other = await post(app, '/echo', { body: { meeting_id: m2, customer_id: 'c1' } });
      expect(other.headers.get('idempotent-replayed')).toBeNull();
      // No selected field present: no key, so the request passes through unprotected.
      await post(app, '/echo', { body: { unrelated: true } });
      await post(app, '/echo', { body: { unrelated: true } });
      expect(app.probe.count('echo')).toBe(4);
    });

    it('answers a clear error when the body was never parsed, and runs nothing', async () => {
      const app = await start({}, { parserAfter: true });
      const res = await post(app, '/echo', { key: key(), body: { a: 1 } });
      expectProblem(res, 500, 'body_not_parsed');
      expect(res.json().detail).toMatch(/body parser/);
      expect(app.probe.count('echo')).toBe(0);
    });

    it('stores a body of exactly maxBodyBytes; a larger one is not stored (sent whole, or refused by a transactional store)', async () => {
      const app = await start({ maxBodyBytes: 1000 });
      // A transactional store undid the handler's writes for a response it could not keep: the
      // client must not get that success (docs/design.md, "What is stored").
      const transactional = stores.at(-1)?.transactional === true;
      const k = key();
      const atCap = await post(app, '/big?size=1000', { key: k });
      expect(atCap.body.length).toBe(1000);
      expect((await post(app, '/big?size=1000', { key: k })).headers.get('idempotent-replayed')).toBe('true');
      const k2 = key();
      for (const attempt of [
        await post(app, '/big?size=5000', { key: k2 }),
        await post(app, '/big?size=5000', { key: k2 }),
      ]) {
        expect(attempt.headers.get('idempotent-replayed')).toBeNull();
        if (transactional) {
          expectProblem(attempt, 500, 'response_not_stored');
        } else {
          expect(attempt.status).toBe(200);
          expect(attempt.body.length).toBe(5000);
        }
      }
      expect(app.probe.count('big')).toBe(3);
    });

    it('a client that disconnects does not cancel the store', async () => {
      const app = await start();
      const k = key();
      const controller = new AbortController();
      const aborted = fetch(`${app.url}/slow`, {
        method: 'POST',
        signal: controller.signal,
        headers: { 'content-type': 'application/json', 'idempotency-key': k },
        body: '{}',
      }).catch((e: unknown) => e);
      await app.probe.running('slow');
      const executed = new Promise<string>((resolve) => app.events.once('execute', (e) => resolve(e.outcome)));
      controller.abort();
      await aborted;
      app.probe.gate.open();
      expect(await executed).toBe('stored');
      const replay = await post(app, '/slow', { key: k });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('slow')).toBe(1);
    });

    it('lists Idempotent-Replayed in Access-Control-Expose-Headers on CORS replays', async () => {
      const app = await start();
      const k = key();
      await post(app, '/echo', { key: k, headers: { origin: 'https://shop.example' } });
      const replay = await post(app, '/echo', { key: k, headers: { origin: 'https://shop.example' } });
      expect(replay.headers.get('access-control-expose-headers')).toMatch(/Idempotent-Replayed/);
    });

    it('a failing store answers 503 store_unavailable with Retry-After, runs nothing, and recovers (fail-closed)', async () => {
      const store = chaosStore(await (suite.createStore ?? (() => memoryStore()))());
      stores.push(store);
      const app = await start({ store });
      const errors: string[] = [];
      app.events.on('storeError', (e) => errors.push(`${e.operation}:${e.failOpen}`));
      store.break('get', 'claim');
      const k = key();
      const res = await post(app, '/echo', { key: k });
      expectProblem(res, 503, 'store_unavailable');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(res.json().detail).not.toMatch(/chaos/); // internal errors never leak to clients
      expect(app.probe.count('echo')).toBe(0);
      expect(errors).toEqual(['get:false']);
      // The read works, the claim fails: the error names the claim (the chaos store has no getOrClaim).
      store.heal();
      store.break('claim');
      expectProblem(await post(app, '/echo', { key: k }), 503, 'store_unavailable');
      expect(errors).toEqual(['get:false', 'claim:false']);
      store.heal();
      expect((await post(app, '/echo', { key: k })).status).toBe(200);
      expect((await post(app, '/echo', { key: k })).headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('echo')).toBe(1);
    });

    it("a failing store runs the handler unprotected with onStoreError: 'fail-open'", async () => {
      const store = chaosStore(await (suite.createStore ?? (() => memoryStore()))());
      stores.push(store);
      const app = await start({ store, onStoreError: 'fail-open' });
      const errors: boolean[] = [];
      app.events.on('storeError', (e) => errors.push(e.failOpen));
      store.break('get');
      const k = key();
      expect((await post(app, '/echo', { key: k })).status).toBe(200);
      expect((await post(app, '/echo', { key: k })).status).toBe(200);
      expect(app.probe.count('echo')).toBe(2);
      expect(errors).toEqual([true, true]);
    });

    it('a store that fails to keep the response still answers the client, and the retry runs again', async () => {
      const store = chaosStore(await (suite.createStore ?? (() => memoryStore()))());
      stores.push(store);
      const app = await start({ store });
      store.break('complete');
      const k = key();
      const first = await post(app, '/echo', { key: k });
      expect(first.status).toBe(200);
      store.heal();
      const retry = await post(app, '/echo', { key: k });
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(app.probe.count('echo')).toBe(2);
    });

    // A store is a trust boundary: a shared Redis may hold a corrupt, tampered or older-format record.
    // regression: a status of 1000 or a header value with a newline ended the whole Express process
    for (const read of ['get', 'getOrClaim'] as const) {
      it(`a stored record that cannot be replayed is 500 record_invalid, runs nothing, and the server keeps serving (${read})`, async () => {
        const store = forgingStore(await (suite.createStore ?? (() => memoryStore()))(), {
          getOrClaim: read === 'getOrClaim',
        });
        stores.push(store);
        const app = await start({ store });
        const completed = (response: Record<string, unknown>) => ({
          state: 'completed',
          fingerprint: null,
          completedAt: Date.now(),
          response: {
            status: 200,
            headers: { 'content-type': 'text/plain' },
            body: Buffer.from('forged'),
            ...response,
          },
        });
        const unreplayable: [string, unknown][] = [
          ['a status of 1000', completed({ status: 1000 })],
          ['a header value with a newline', completed({ headers: { location: '/a\nx-injected: yes' } })],
          ['a set-cookie header', completed({ headers: { 'set-cookie': 'session=stolen' } })],
          ['a body that is not bytes', completed({ body: 'forged' })],
        ];
        for (const [what, record] of unreplayable) {
          store.forge(record);
          const res = await post(app, '/echo', { key: key() });
          expect(res.status, what).toBe(500);
          expectProblem(res, 500, 'record_invalid');
          expect(res.headers.get('set-cookie'), what).toBeNull();
          expect(res.headers.get('x-injected'), what).toBeNull();
        }
        expect(app.probe.count('echo')).toBe(0);
        expect((await post(app, '/echo', { key: key() })).status).toBe(200);
        expect(app.probe.count('echo')).toBe(1);
      });
    }

    // regression: the late replay to a duplicate that a timeout middleware had answered hit
    // ERR_HTTP_HEADERS_SENT in Express, an unhandled rejection
    it('a request-timeout middleware that answers a waiting duplicate first keeps its answer; the server keeps serving', async () => {
      const app = await start({ concurrent: 'wait' }, { requestTimeout: true });
      const k = key();
      const first = post(app, '/slow', { key: k });
      await app.probe.running('slow');
      const replayed = new Promise<void>((resolve) => app.events.once('replay', () => resolve()));
      const timedOut = await post(app, '/slow', { key: k, headers: { 'x-timeout-ms': '50' } });
      expect(timedOut.status).toBe(503);
      expect(timedOut.json()).toEqual(TIMEOUT_BODY);
      app.probe.gate.open();
      expect((await first).status).toBe(200);
      // The duplicate's wait ends with a replay, answered on a response that is already sent.
      await replayed;
      const again = await post(app, '/slow', { key: k });
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('slow')).toBe(1);
    });

    // regression: on Express 4 (res.status does not check) the flush after storing threw
    // ERR_HTTP_INVALID_STATUS_CODE outside any handler and ended the process
    it('a handler answering a status Node refuses (1000) gets a 500 through the framework; the key is free and the server keeps serving', async () => {
      const app = await start();
      const k = key();
      expect((await post(app, '/status/1000', { key: k })).status).toBe(500);
      expect((await post(app, '/status/1000', { key: k })).status).toBe(500);
      expect(app.probe.count('status-1000')).toBe(2);
      expect((await post(app, '/echo', { key: key() })).status).toBe(200);
    });

    it('executionOf() inside the handler is the execution of its key; undefined without a key', async () => {
      const app = await start();
      const k = key();
      const executed = new Promise<string>((resolve) => app.events.once('execute', (e) => resolve(e.key)));
      const inside = await post(app, '/execution', { key: k });
      expect(inside.json().key).toBe(await executed);
      expect(inside.json().key).toBe(storageKey('POST /execution', k));
      expect((await post(app, '/execution')).json()).toEqual({ key: null });
    });

    it('emits typed events with timings', async () => {
      const app = await start();
      const seen: string[] = [];
      app.events.on('execute', (e) => seen.push(`execute:${e.outcome}:${typeof e.durationMs}`));
      app.events.on('replay', (e) => seen.push(`replay:${e.status}:${e.ageMs >= 0}`));
      const k = key();
      await post(app, '/echo', { key: k });
      await post(app, '/echo', { key: k });
      expect(seen).toEqual(['execute:stored:number', 'replay:200:true']);
    });
  });
}
