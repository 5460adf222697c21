/** The table is created on first use, race-free when many stores (processes) start at once; expired rows go in batches. */
import { randomUUID } from 'node:crypto';
import { postgresStore, schemaSql } from '@idem/postgres';
import type { Logger } from '@idem/core';
import { describe, expect, it } from 'vitest';
import { until, useDatabase } from './helpers.js';

const db = useDatabase();

describe('postgresStore schema and cleanup', () => {
  it('twelve stores using a missing table at once all succeed, and it exists once', async () => {
    const table = `race_${randomUUID().slice(0, 8)}`;
    // Separate pools, as separate processes would have.
    const stores = Array.from({ length: 12 }, () => postgresStore({ pool: db.pool({ max: 2 }), table }));
    const answers = await Promise.all(stores.map((store) => store.get(`k-${randomUUID()}`)));
    expect(answers.every((a) => a === undefined)).toBe(true);
    expect(await db.query('SELECT 1 FROM pg_class WHERE relname = $1', [table])).toHaveLength(1);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('with createTable: false a missing table is a store error, not a silent create', async () => {
    const store = postgresStore({
      pool: db.pool({ max: 2 }),
      table: `absent_${randomUUID().slice(0, 8)}`,
      createTable: false,
    });
    await expect(store.get('k')).rejects.toThrow(/does not exist/);
    await store.close();
  });

  it('cleanup removes expired rows in bounded batches; live ones stay', async () => {
    const table = `sweep_${randomUUID().slice(0, 8)}`;
    const store = postgresStore({ pool: db.pool({ max: 4 }), table, cleanupBatch: 2, cleanupInterval: false });
    const live = `k-${randomUUID()}`;
    await store.claim(live, { fingerprint: null, lockTtl: 60_000 });
    for (let i = 0; i < 5; i++) await store.claim(`k-${randomUUID()}`, { fingerprint: null, lockTtl: 1 });
    const rowsOf = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`))[0]?.n;
    // The short leases are over once the database's own clock says so: wait for that, not a guess.
    await db.query(`SELECT pg_sleep(0.01)`);
    expect(await rowsOf()).toBe(6);
    expect(await store.cleanup()).toBe(2);
    expect(await store.cleanup()).toBe(2);
    expect(await store.cleanup()).toBe(1);
    expect(await store.cleanup()).toBe(0);
    expect(await rowsOf()).toBe(1);
    expect((await store.get(live))?.state).toBe('in_flight');
    await store.close();
  });

  /** `n` rows of `table` that expired an hour ago (and `live` that last another hour). */
  async function fill(table: string, expired: number, live = 0): Promise<void> {
    await db.query(
      `INSERT INTO "${table}" (key, state, started_at, expires_at)
       SELECT 'k-' || i, 'completed', now(), now() + CASE WHEN i <= $1 THEN interval '-1 hour' ELSE interval '1 hour' END
       FROM generate_series(1, $2::int) i`,
      [expired, expired + live],
    );
  }
  const rowsIn = async (table: string) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`))[0]?.n;

  /** A logger that keeps the cleanup timer's reports. */
  function sweepLog(): { logger: Logger; removed: number[] } {
    const removed: number[] = [];
    const quiet = () => {};
    const logger = {
      debug: (fields: { removed?: number }) => void (fields.removed !== undefined && removed.push(fields.removed)),
      info: quiet,
      warn: quiet,
      error: quiet,
    } as unknown as Logger;
    return { logger, removed };
  }

  // regression: the timer started in the table's migration only, so with createTable: false it
  // never started and expired rows stayed forever.
  it('with createTable: false the cleanup timer still runs, from first use', async () => {
    const table = `own_${randomUUID().slice(0, 8)}`;
    await db.query(schemaSql(table));
    await fill(table, 3);
    const store = postgresStore({ pool: db.pool({ max: 2 }), table, createTable: false, cleanupInterval: 50 });
    expect(await store.get('k-absent')).toBeUndefined();
    await until(async () => (await rowsIn(table)) === 0, 'the timer to remove the expired rows', 3_000);
    await store.close();
  });

  // regression: one tick removed one batch, so a table filling faster than cleanupBatch per
  // interval never shrank.
  it('one cleanup tick removes batches until one comes back short', async () => {
    const table = `tick_${randomUUID().slice(0, 8)}`;
    await db.query(schemaSql(table));
    await fill(table, 7, 1);
    const { logger, removed } = sweepLog();
    const store = postgresStore({ pool: db.pool({ max: 2 }), table, cleanupBatch: 2, cleanupInterval: 100, logger });
    await store.get('k-absent');
    await until(() => removed.length > 0, "the first tick's report", 3_000);
    expect(removed[0]).toBe(7);
    expect(await rowsIn(table)).toBe(1);
    await store.close();
  });

  // regression: the batch compared expires_at with clock_timestamp(), which is volatile, so the
  // expires_at index could not serve it: every tick scanned the whole table.
  it('the cleanup statement finds its batch through the expires_at index', async () => {
    const table = `plan_${randomUUID().slice(0, 8)}`;
    await db.query(schemaSql(table));
    await fill(table, 20, 20_000);
    await db.query(`ANALYZE "${table}"`);
    const pool = db.pool({ max: 1 });
    const sent: { text: string; values: unknown[] }[] = [];
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        if (typeof args[0] === 'string') sent.push({ text: args[0], values: (args[1] as unknown[]) ?? [] });
        return query(...args);
      };
    });
    const store = postgresStore({ pool, table, cleanupInterval: false, createTable: false });
    expect(await store.cleanup()).toBe(20);
    const cleanup = sent.find((q) => q.text.trimStart().startsWith('DELETE') && q.text.includes('LIMIT'));
    expect(cleanup).toBeDefined();
    const [{ 'QUERY PLAN': plan }] = (await db.query(`EXPLAIN (FORMAT JSON) ${cleanup?.text}`, cleanup?.values)) as [
      { 'QUERY PLAN': unknown },
    ];
    const indexes: string[] = [];
    const walk = (node: unknown): void => {
      if (typeof node !== 'object' || node === null) return;
      const name = (node as Record<string, unknown>)['Index Name'];
      if (typeof name === 'string') indexes.push(name);
      Object.values(node).forEach(walk);
    };
    walk(plan);
    expect(indexes).toContain(`${table}_expires_at_idx`);
    await store.close();
  });
});
