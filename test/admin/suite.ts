/**
 * What the admin API does for every store and both frameworks, over real HTTP: a record looked up
 * after a real idempotent request, deleted so that the retry runs the handler again, a stuck key
 * freed, the health probe, and what authorize and scopes keep apart.
 */
import { randomUUID } from 'node:crypto';
import type { IdempotencyStore } from '@idem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { FRAMEWORKS, TTL_MS, address, post, type AdminApp } from './apps.js';

export interface SuiteOptions {
  createStore: () => IdempotencyStore | Promise<IdempotencyStore>;
  /** True for a store whose in-flight records have no fixed end (transactional PostgreSQL). */
  leaseWithoutEnd?: boolean;
}

async function problemOf(response: Response): Promise<Record<string, unknown>> {
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status: response.status, type: expect.stringMatching(/^urn:idem:admin:problem:/) });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

export function adminSuite(storeName: string, options: SuiteOptions): void {
  for (const framework of FRAMEWORKS) {
    describe(`admin API on ${framework.name} with the ${storeName} store`, () => {
      const opened: { app: AdminApp; store: IdempotencyStore }[] = [];
      afterEach(async () => {
        for (const { app, store } of opened.splice(0)) {
          app.probe.gate.open();
          await app.close();
          await store.close?.();
        }
      });
      async function start(): Promise<AdminApp> {
        const store = await options.createStore();
        const app = await framework.start({ store });
        opened.push({ app, store });
        return app;
      }

      it('looks a record up after a real idempotent request: state, status, age, expiry, fingerprint, size', async () => {
        const app = await start();
        const key = `order-${randomUUID()}`;
        const created = await post(app, '/orders', key, { amount: 42 });
        expect(created.status).toBe(201);
        const sent = await created.text();

        const looked = await app.admin(`/records${address(key, 'POST /orders')}`);
        expect(looked.status).toBe(200);
        expect(looked.headers.get('content-type')).toMatch(/^application\/json/);
        expect(looked.headers.get('cache-control')).toBe('no-store');
        const view = (await looked.json()) as Record<string, unknown>;
        expect(view).toMatchObject({
          scope: 'POST /orders',
          key,
          state: 'completed',
          valid: true,
          status: 201,
          fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
          size: { bodyBytes: Buffer.byteLength(sent), headerBytes: expect.any(Number) },
        });
        expect(view.ageMs).toBeGreaterThanOrEqual(0);
        expect(view.ageMs).toBeLessThan(60_000);
        expect(view.expiresInMs).toBeGreaterThan(TTL_MS - 60_000);
        expect(view.expiresInMs).toBeLessThanOrEqual(TTL_MS);
        expect(Date.parse(view.expiresAt as string)).toBeGreaterThan(Date.now() + TTL_MS - 60_000);
        expect(Date.parse(view.completedAt as string)).toBeLessThanOrEqual(Date.now() + 1_000);
        // The body only when asked.
        expect(view).not.toHaveProperty('response');

        const withBody = (await (await app.admin(`/records${address(key, 'POST /orders', '&body=1')}`)).json()) as {
          response: { body: string; bodyEncoding: string; headers: Record<string, string> };
        };
        expect(withBody.response.bodyEncoding).toBe('utf8');
        expect(withBody.response.body).toBe(sent);
        expect(withBody.response.headers['content-type']).toMatch(/^application\/json/);

        // The default scope spelled as method and route reaches the same record.
        const byRoute = await app.admin(`/records?key=${encodeURIComponent(key)}&method=post&route=/orders`);
        expect(((await byRoute.json()) as { storageKey: string }).storageKey).toBe(view.storageKey);
        // Looking changed nothing: the retry still replays.
        const replay = await post(app, '/orders', key, { amount: 42 });
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(app.probe.count('orders')).toBe(1);
      });

      it('a binary body comes back as base64, byte for byte', async () => {
        const app = await start();
        const key = `bin-${randomUUID()}`;
        const sent = Buffer.from(await (await post(app, '/binary', key)).arrayBuffer());
        const view = (await (await app.admin(`/records${address(key, 'POST /binary', '&body=1')}`)).json()) as {
          response: { body: string; bodyEncoding: string };
        };
        expect(view.response.bodyEncoding).toBe('base64');
        expect(Buffer.from(view.response.body, 'base64').equals(sent)).toBe(true);
      });

      it('delete forces a re-run: the retry runs the handler again and its answer is kept', async () => {
        const app = await start();
        const key = `rerun-${randomUUID()}`;
        expect(((await (await post(app, '/orders', key)).json()) as { n: number }).n).toBe(1);
        expect((await post(app, '/orders', key)).headers.get('idempotent-replayed')).toBe('true');
        expect(app.probe.count('orders')).toBe(1);

        const deleted = await app.admin(`/records${address(key, 'POST /orders')}`, { method: 'DELETE' });
        expect(deleted.status).toBe(200);
        expect(await deleted.json()).toMatchObject({ deleted: true, scope: 'POST /orders', key });
        const gone = await app.admin(`/records${address(key, 'POST /orders')}`);
        expect(gone.status).toBe(404);
        expect((await problemOf(gone)).code).toBe('record_not_found');

        const rerun = await post(app, '/orders', key);
        expect(rerun.status).toBe(201);
        expect(rerun.headers.get('idempotent-replayed')).toBeNull();
        expect(((await rerun.json()) as { n: number }).n).toBe(2);
        expect(app.probe.count('orders')).toBe(2);
        expect((await post(app, '/orders', key)).headers.get('idempotent-replayed')).toBe('true');
        expect(app.probe.count('orders')).toBe(2);

        // Nothing there any more after a second delete: 404, not a silent success.
        await app.admin(`/records${address(key, 'POST /orders')}`, { method: 'DELETE' });
        const again = await app.admin(`/records${address(key, 'POST /orders')}`, { method: 'DELETE' });
        expect(again.status).toBe(404);
      });

      it('frees a stuck in-flight key: the retry runs while the first is still held, and only its result is kept', async () => {
        const app = await start();
        const key = `stuck-${randomUUID()}`;
        const first = post(app, '/slow', key);
        await app.probe.running('slow', 1);

        const inFlight = (await (await app.admin(`/records${address(key, 'POST /slow', '&body=1')}`)).json()) as Record<
          string,
          unknown
        >;
        expect(inFlight).toMatchObject({ state: 'in_flight', status: null, size: null, response: null });
        expect(inFlight.ageMs).toBeGreaterThanOrEqual(0);
        if (options.leaseWithoutEnd) expect(inFlight.expiresInMs).toBeNull();
        else expect(inFlight.expiresInMs).toBeGreaterThan(0);
        expect((await post(app, '/slow', key)).status).toBe(409);

        expect((await app.admin(`/records${address(key, 'POST /slow')}`, { method: 'DELETE' })).status).toBe(200);
        const retry = await post(app, '/slow', key);
        expect(retry.status).toBe(201);
        expect(((await retry.json()) as { n: number }).n).toBe(2);
        expect(app.probe.count('slow')).toBe(2);

        // The first finishes late: fenced out, its result is not the one kept.
        app.probe.gate.open();
        await (await first).arrayBuffer();
        const kept = (await (await app.admin(`/records${address(key, 'POST /slow', '&body=1')}`)).json()) as {
          response: { body: string };
        };
        expect(JSON.parse(kept.response.body)).toEqual({ n: 2 });
        expect(app.probe.count('slow')).toBe(2);
      });

      it('answers 403 problem+json when authorize says no, and changes nothing', async () => {
        const app = await start();
        const key = `deny-${randomUUID()}`;
        await post(app, '/orders', key);
        for (const token of [null, 'wrong-token']) {
          const read = await app.admin(`/records${address(key, 'POST /orders')}`, { token });
          expect(read.status).toBe(403);
          expect((await problemOf(read)).code).toBe('forbidden');
          const removal = await app.admin(`/records${address(key, 'POST /orders')}`, { method: 'DELETE', token });
          expect(removal.status).toBe(403);
        }
        expect((await post(app, '/orders', key)).headers.get('idempotent-replayed')).toBe('true');
        expect(app.probe.count('orders')).toBe(1);
      });

      it('another scope cannot see the record; a tenant-limited authorize sees which scope is asked', async () => {
        const app = await start();
        const key = `shared-key-${randomUUID()}`;
        await post(app, '/orders', key);
        // The same client key in another scope is another record.
        expect((await app.admin(`/records${address(key, 'POST /other')}`)).status).toBe(404);
        expect((await app.admin(`/records${address(key, 'PATCH /orders')}`)).status).toBe(404);

        // Tenants a and b use the same key; each is its own record.
        await post(app, '/tenant/orders', key, {}, { 'x-tenant': 'tenant-a' });
        expect((await app.admin(`/records${address(key, 'tenant-a')}`, { tenant: 'tenant-a' })).status).toBe(200);
        // b's operator asking for a's scope is refused before anything is read …
        const across = await app.admin(`/records${address(key, 'tenant-a')}`, { tenant: 'tenant-b' });
        expect(across.status).toBe(403);
        const deleteAcross = await app.admin(`/records${address(key, 'tenant-a')}`, {
          method: 'DELETE',
          tenant: 'tenant-b',
        });
        expect(deleteAcross.status).toBe(403);
        // … and in its own scope finds nothing of a's.
        expect((await app.admin(`/records${address(key, 'tenant-b')}`, { tenant: 'tenant-b' })).status).toBe(404);
        // a's record is still there and still replays.
        const replay = await post(app, '/tenant/orders', key, {}, { 'x-tenant': 'tenant-a' });
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(app.probe.count('tenant')).toBe(1);
      });

      it('reports the store reachable with its latency', async () => {
        const app = await start();
        const response = await app.admin('/health');
        expect(response.status).toBe(200);
        const report = (await response.json()) as { status: string; store: Record<string, unknown> };
        expect(report.status).toBe('ok');
        expect(report.store).toMatchObject({ reachable: true, probe: 'ping' });
        expect(report.store.latencyMs).toBeGreaterThanOrEqual(0);
        expect(report).not.toHaveProperty('cache');
      });
    });
  }
}
