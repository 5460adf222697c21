/** The table is created on first use, race-free when many stores (processes) start at once; expired rows go in batches. */
import { randomUUID } from 'node:crypto';
import { postgresStore } from '@idem/postgres';
import { describe, expect, it } from 'vitest';
import { useDatabase } from './helpers.js';

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
});
