/**
 * Transactional mode as a user sees it: a real business table written through transactionOf(req),
 * counted after each scenario. Whatever the handler does, the rows and the stored response are
 * kept together or not at all, and a client is never told "success" for writes that were undone.
 */
import { randomUUID } from 'node:crypto';
import { postgresStore, type PostgresStore } from '@idem/postgres';
import type pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScenarioApp } from '../apps/scenario.js';
import { post } from '../http/scenarios.js';
import { useDatabase, within } from './helpers.js';
import { PAYMENTS_SQL, startPayments, type Framework } from './payments-app.js';

const db = useDatabase();
let pool: pg.Pool;
beforeAll(async () => {
  pool = db.pool({ max: 40 });
  await db.query(PAYMENTS_SQL);
});

const rows = async (key: string): Promise<number> =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM payments WHERE key = $1', [key]))[0]?.n ?? -1;

describe.each<Framework>(['express', 'koa'])(
  'transactional mode on %s: business rows and responses together',
  (framework) => {
    const opened: { app: ScenarioApp; store: PostgresStore }[] = [];
    afterEach(async () => {
      for (const { app, store } of opened.splice(0)) {
        app.probe.gate.open();
        await app.close();
        await store.close();
      }
    });
    async function start(options: { concurrent?: 'reject' | 'wait' } = {}): Promise<ScenarioApp> {
      const store = postgresStore({ pool, table: 'tx_records', transactional: true, pollInterval: 50 });
      const app = await startPayments(framework, { store, ...options });
      opened.push({ app, store });
      return app;
    }

    it('a completed payment keeps exactly its row and replays without running again', async () => {
      const app = await start();
      const key = randomUUID();
      const first = await post(app, '/pay', { key, body: { amount: 5 } });
      expect(first.status).toBe(201);
      const replay = await post(app, '/pay', { key, body: { amount: 5 } });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body.equals(first.body)).toBe(true);
      expect(await rows(key)).toBe(1);
      expect(app.probe.count('pay')).toBe(1);
    });

    it('a handler that throws after its insert keeps nothing; the retry runs again and keeps one row', async () => {
      const app = await start();
      const key = randomUUID();
      expect((await post(app, '/pay', { key, headers: { 'x-fail': 'throw' } })).status).toBe(500);
      expect(await rows(key)).toBe(0);
      expect((await post(app, '/pay', { key })).status).toBe(201);
      expect(await rows(key)).toBe(1);
      expect(app.probe.count('pay')).toBe(2);
    });

    it('a 5xx answer keeps nothing; the retry runs again', async () => {
      const app = await start();
      const key = randomUUID();
      expect((await post(app, '/pay', { key, headers: { 'x-fail': '500' } })).status).toBe(500);
      expect(await rows(key)).toBe(0);
      expect((await post(app, '/pay', { key })).status).toBe(201);
      expect(await rows(key)).toBe(1);
    });

    it('a success too large to store is 500 response_not_stored, keeps nothing, and the retry runs', async () => {
      const app = await start();
      const key = randomUUID();
      const big = await post(app, '/pay', { key, headers: { 'x-fail': 'big' } });
      expect(big.status).toBe(500);
      expect(big.json().code).toBe('response_not_stored');
      expect(await rows(key)).toBe(0);
      expect((await post(app, '/pay', { key })).status).toBe(201);
      expect(app.probe.count('pay')).toBe(2);
    });

    it('a failed commit is never answered as success: 503, no row, and the retry runs again', async () => {
      const app = await start();
      const key = randomUUID();
      // The row's deferred foreign key fails at COMMIT, after the handler answered 201.
      const failed = await post(app, '/pay', { key, headers: { 'x-fail': 'commit' } });
      expect(failed.status).toBe(503);
      expect(failed.json().code).toBe('store_unavailable');
      expect(await rows(key)).toBe(0);
      const retry = await post(app, '/pay', { key });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(await rows(key)).toBe(1);
      expect(app.probe.count('pay')).toBe(2);
    });

    it("30 duplicates fired at once with concurrent: 'wait' run once, keep one row, and all get the one response", async () => {
      const app = await start({ concurrent: 'wait' });
      const key = randomUUID();
      const all = await Promise.all(Array.from({ length: 30 }, () => post(app, '/pay', { key, body: { amount: 7 } })));
      expect(all.map((r) => r.status)).toEqual(Array(30).fill(201));
      expect(new Set(all.map((r) => r.body.toString())).size).toBe(1);
      expect(app.probe.count('pay')).toBe(1);
      expect(await rows(key)).toBe(1);
    });

    it("'reject' answers 409 at once while the first holds its transaction open after its insert", async () => {
      const app = await start({ concurrent: 'reject' });
      const key = randomUUID();
      const first = post(app, '/pay', { key, headers: { 'x-hold': '1' } });
      await app.probe.running('pay');
      // The first's row is inserted and uncommitted; a duplicate blocked on it would never answer
      // before the gate opens.
      const duplicates = await within(
        Promise.all(Array.from({ length: 20 }, () => post(app, '/pay', { key }))),
        5_000,
        'the duplicates, answered while the first holds its transaction',
      );
      expect(duplicates.map((r) => r.status)).toEqual(Array(20).fill(409));
      app.probe.gate.open();
      expect((await first).status).toBe(201);
      expect(await rows(key)).toBe(1);
      expect(app.probe.count('pay')).toBe(1);
    });

    it('a mismatching request while in flight is 422, not 409', async () => {
      const app = await start();
      const key = randomUUID();
      const first = post(app, '/pay', { key, body: { amount: 1 }, headers: { 'x-hold': '1' } });
      await app.probe.running('pay');
      expect((await post(app, '/pay', { key, body: { amount: 2 } })).status).toBe(422);
      app.probe.gate.open();
      expect((await first).status).toBe(201);
    });

    it('outside an idempotent execution transactionOf is undefined (a request without a key runs unprotected)', async () => {
      const app = await start();
      const res = await post(app, '/pay');
      expect(res.json()).toMatchObject({ unprotected: true });
    });
  },
);
