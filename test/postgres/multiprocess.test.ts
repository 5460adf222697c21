/**
 * Exactly-once across processes on one PostgreSQL, in both modes: three Express app processes
 * (test/fixtures/postgres-app.mjs) take truly concurrent duplicates; runs are counted from the
 * handler side over IPC, business rows in the database. Then the holder of a key is SIGKILLed
 * right after its own insert, and the retry shows what each mode promises (packages/postgres/README.md).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, type Reply } from '../fixtures/redis-apps.js';
import { PostgresApp, runs, type PostgresAppConfig } from '../fixtures/postgres-apps.js';
import { until, useDatabase } from './helpers.js';

const db = useDatabase();
const orders = async (key: string): Promise<{ pid: number }[]> =>
  db.query<{ pid: number }>('SELECT pid FROM orders WHERE key = $1', [key]);

const modes = [
  { mode: 'lease', transactional: false, lockTtl: 1_000 },
  // A long lease: a retry that succeeds within seconds did not wait one out.
  { mode: 'transactional', transactional: true, lockTtl: 60_000 },
];
// Every mode on every framework's adapter: the same engine, the same store, the same rows.
const runsOn = (['express', 'fastify', 'hono'] as const).flatMap((framework) =>
  modes.map((m) => ({ ...m, framework, on: framework === 'express' ? '' : ` (${framework})` })),
);

for (const { mode, transactional, lockTtl, framework, on } of runsOn) {
  describe(`${mode} mode across 3 processes${on}`, () => {
    let apps: PostgresApp[] = [];
    let config: PostgresAppConfig;
    beforeAll(async () => {
      await db.query(
        'CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, key text NOT NULL, pid int NOT NULL, n int NOT NULL)',
      );
      config = {
        framework,
        url: db.server.url,
        table: `mp_${mode}_${framework}`,
        transactional,
        store: { pollInterval: 100 },
        idempotency: { lockTtl, waitTimeout: 20_000 },
      };
      apps = await Promise.all([0, 1, 2].map(() => PostgresApp.start(config)));
    });
    afterAll(async () => {
      await Promise.all(apps.map((app) => app.kill()));
    });
    const appFor = (i: number): PostgresApp => apps[i % apps.length] as PostgresApp;

    it('wait: 45 duplicates over 3 processes run once, keep one business row, and all get the same 201', async () => {
      const key = randomUUID();
      const all = await Promise.all(
        Array.from({ length: 45 }, (_, i) => post(appFor(i).port, '/wait', { key, body: { item: 'book' } })),
      );
      expect(all.map((r) => r.status)).toEqual(Array(45).fill(201));
      expect(new Set(all.map((r) => r.body.toString('base64'))).size).toBe(1);
      expect(all.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(44);
      expect(await runs(apps, key)).toBe(1);
      expect(await orders(key)).toHaveLength(1);
    });

    it('reject: 30 duplicates over 3 processes while the first holds give one 201 and 29 × 409', async () => {
      const key = randomUUID();
      let answered = 0;
      const all = Array.from({ length: 30 }, (_, i) =>
        post(appFor(i).port, '/work', { key, hold: true }).then((reply) => {
          answered++;
          return reply;
        }),
      );
      await until(() => apps.some((a) => a.of('inserted', key).length > 0), 'the first to insert');
      await until(() => answered >= 29, '29 answers while the first holds');
      for (const app of apps) app.release(key);
      const statuses = (await Promise.all(all)).map((r) => r.status).sort();
      expect(statuses).toEqual([201, ...Array(29).fill(409)]);
      expect(await runs(apps, key)).toBe(1);
      expect(await orders(key)).toHaveLength(1);
    });

    it(
      transactional
        ? 'a holder SIGKILLed right after its insert leaves nothing: the retry runs at once and the key has exactly one row'
        : 'a holder SIGKILLed right after its insert: the retry runs after lockTtl and the key has two rows (the documented double)',
      async () => {
        const victim = await PostgresApp.start(config);
        const key = randomUUID();
        const lost = post(victim.port, '/work', { key, hold: true }).catch((error: unknown) => error);
        await victim.next((m) => m.type === 'inserted' && m.key === key, 'the holder to insert');
        await victim.kill();
        await lost;
        const other = apps[0] as PostgresApp;
        let retry: Reply | undefined;
        const started = Date.now();
        let conflicts = 0;
        await until(
          async () => {
            retry = await post(other.port, '/work', { key });
            if (retry.status === 409) conflicts++;
            return retry.status !== 409;
          },
          'the retry to run',
          10_000,
          50,
        );
        expect(retry?.status).toBe(201);
        const rows = await orders(key);
        if (transactional) {
          // Rolled back with the dead connection: only the retry's row, and no lease to wait out.
          expect(rows.map((r) => r.pid)).toEqual([other.child.pid]);
          expect(Date.now() - started).toBeLessThan(lockTtl / 6);
        } else {
          // The dead holder's autocommitted insert stays; its lease had to lapse first.
          expect(rows).toHaveLength(2);
          expect(rows.map((r) => r.pid)).toContain(other.child.pid);
          expect(conflicts).toBeGreaterThan(0);
        }
        const replay = await post((apps[1] as PostgresApp).port, '/work', { key });
        expect(replay.headers['idempotent-replayed']).toBe('true');
        expect(replay.body.equals((retry as Reply).body)).toBe(true);
      },
    );
  });
}
