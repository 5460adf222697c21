/**
 * Transactional mode at its edges: handlers that raise the isolation level and outlive lease
 * renewals, handlers that try to commit on their own, handlers stuck in a query when their key is
 * given up, and the liveness probe of a marker whose holder died.
 */
import { randomUUID } from 'node:crypto';
import { postgresStore, TransactionControlError, type PostgresStore } from '@idem/postgres';
import type { IdempotencyOptions, IdempotencyStore } from '@idem/core';
import type pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScenarioApp } from '../apps/scenario.js';
import { post } from '../http/scenarios.js';
import { until, useDatabase, within } from './helpers.js';
import { PAYMENTS_SQL, backends, earlyCommits, startPayments } from './payments-app.js';

const db = useDatabase();
let pool: pg.Pool;
beforeAll(async () => {
  pool = db.pool({ max: 20 });
  await db.query(PAYMENTS_SQL);
});

const rows = async (key: string): Promise<number> =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM payments WHERE key = $1', [key]))[0]?.n ?? -1;

const opened: { app?: ScenarioApp; store: PostgresStore }[] = [];
afterEach(async () => {
  for (const { app, store } of opened.splice(0)) {
    app?.probe.gate.open();
    await app?.close();
    await store.close();
  }
});

function store(options: { pool?: pg.Pool; queryTimeout?: number } = {}): PostgresStore {
  const made = postgresStore({
    pool,
    table: `edge_${randomUUID().slice(0, 8)}`,
    transactional: true,
    pollInterval: 50,
    ...options,
  });
  opened.push({ store: made });
  return made;
}

async function start(made: IdempotencyStore, idempotency: Partial<IdempotencyOptions<never>> = {}) {
  const app = await startPayments('express', { store: made, ...idempotency } as IdempotencyOptions<never>);
  opened.push({ app, store: made as PostgresStore });
  return app;
}

/** The store with its completed lease renewals counted (what the engine calls every lockTtl/3). */
function countingExtends(made: PostgresStore): { store: IdempotencyStore; renewed: () => number } {
  let renewed = 0;
  const counting: IdempotencyStore = {
    ...made,
    async extend(lease, lockTtl) {
      const kept = await made.extend(lease, lockTtl);
      if (kept) renewed++;
      return kept;
    },
  };
  return { store: counting, renewed: () => renewed };
}

describe('transactional mode under REPEATABLE READ / SERIALIZABLE', () => {
  // regression: extend renewed the marker row from another connection, so the handler's
  // transaction failed its final UPDATE with 40001 once it outlived one renewal (lockTtl/3).
  it.each([
    { how: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE as its first statement', serializableDb: false },
    { how: 'a database default of serializable', serializableDb: true },
  ])('a handler with $how that outlives several renewals commits', async ({ serializableDb }) => {
    const made = store(
      serializableDb ? { pool: db.pool({ max: 20, options: '-c default_transaction_isolation=serializable' }) } : {},
    );
    const { store: counting, renewed } = countingExtends(made);
    const app = await start(counting, { lockTtl: 300, concurrent: 'reject' });
    const key = randomUUID();
    const headers: Record<string, string> = { 'x-hold': '1' };
    if (!serializableDb) headers['x-isolation'] = 'serializable';
    const first = post(app, '/pay', { key, body: { amount: 3 }, headers });
    await app.probe.running('pay');
    await until(() => renewed() >= 4, 'four lease renewals while the handler holds');
    // A duplicate meanwhile: in flight, and it does not disturb the holder's transaction.
    expect((await post(app, '/pay', { key, body: { amount: 3 } })).status).toBe(409);
    app.probe.gate.open();
    const answer = await first;
    expect(answer.status).toBe(201);
    expect(await rows(key)).toBe(1);
    const replay = await post(app, '/pay', { key, body: { amount: 3 } });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(app.probe.count('pay')).toBe(1);
  });
});

describe('transaction control through transactionOf', () => {
  // regression: a handler's (or its ORM's) COMMIT went straight through and kept its writes
  // without the stored response, so the retry wrote them again.
  it('a handler sending COMMIT through tx gets TransactionControlError; nothing is kept, the retry writes one row', async () => {
    const app = await start(store());
    const key = randomUUID();
    expect((await post(app, '/pay', { key, headers: { 'x-fail': 'commit-early' } })).status).toBe(500);
    const answer = earlyCommits.get(key);
    expect(answer).toBeInstanceOf(TransactionControlError);
    expect((answer as TransactionControlError).statement).toBe('COMMIT');
    expect(await rows(key)).toBe(0);
    expect((await post(app, '/pay', { key })).status).toBe(201);
    expect(await rows(key)).toBe(1);
  });

  it('savepoints nest and the other control statements are refused', async () => {
    const made = store();
    const claimed = await made.claim(randomUUID(), { fingerprint: null, lockTtl: 10_000 });
    if (!claimed.acquired) throw new Error('expected the claim');
    const tx = claimed.lease.context as pg.PoolClient;
    await tx.query('SAVEPOINT a');
    await tx.query('ROLLBACK TO SAVEPOINT a');
    await tx.query('rollback work to a');
    await tx.query('RELEASE SAVEPOINT a');
    for (const text of ['commit', ' /* x */ -- y\n ROLLBACK', 'END', 'abort', 'begin', 'START TRANSACTION']) {
      await expect(tx.query(text)).rejects.toBeInstanceOf(TransactionControlError);
    }
    await expect(tx.query({ text: 'PREPARE TRANSACTION $$x$$' })).rejects.toBeInstanceOf(TransactionControlError);
    await made.release(claimed.lease);
  });
});

describe('giving up a key while a handler query still runs', () => {
  // regression: the ROLLBACK queued behind the handler's query and timed out; the client was
  // destroyed on our side only, and its backend kept running with the key's lock.
  it('maxHold 200 ms, handler stuck in pg_sleep(5): the retry runs within a second, and the old backend is gone', async () => {
    const app = await start(store(), { maxHold: 200, lockTtl: 10_000 });
    const key = randomUUID();
    const started = Date.now();
    const first = await within(post(app, '/pay', { key, headers: { 'x-sleep': '5' } }), 4_000, 'the first answer');
    expect(first.status).toBeGreaterThanOrEqual(500);
    const retry = await post(app, '/pay', { key });
    expect(retry.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(1_000);
    const pid = backends.get(key);
    expect(pid).toBeGreaterThan(0);
    expect(await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).toHaveLength(0);
    expect(await db.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory'")).toHaveLength(0);
    expect(await rows(key)).toBe(1);
  });
});

describe('liveness of a transactional marker', () => {
  /** The key and the lock id of a marker left by a holder that died (a lock nobody holds). */
  async function deadMarker(made: PostgresStore): Promise<{ key: string; lock: string }> {
    await made.migrate();
    return { key: `k-${randomUUID()}`, lock: String(Math.floor(Math.random() * 2 ** 40)) };
  }

  // regression: readers probed with the exclusive try-lock, so a reader's probe made a dead
  // holder look alive to a takeover at the same instant.
  it("a concurrent reader's probe does not make a dead holder look alive", async () => {
    const table = `probe_${randomUUID().slice(0, 8)}`;
    const made = postgresStore({ pool, table, transactional: true, pollInterval: 50 });
    opened.push({ store: made });
    const { key, lock } = await deadMarker(made);
    await db.query(
      `INSERT INTO "${table}" (key, state, lease_token, lease_lock, started_at, expires_at)
       VALUES ($1, 'in_flight', 'dead', $2, now(), now() + interval '1 hour')`,
      [key, lock],
    );
    // Another reader's probe, caught in the middle: it holds the lock a probe takes.
    const reader = await pool.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT pg_try_advisory_xact_lock_shared($1::bigint)', [lock]);
      expect(await made.get(key)).toBeUndefined();
      const claimed = await made.claim(key, { fingerprint: null, lockTtl: 10_000 });
      expect(claimed.acquired).toBe(true);
      if (claimed.acquired) await made.release(claimed.lease);
    } finally {
      await reader.query('ROLLBACK');
      reader.release();
    }
  });
});

describe('a claim that meets a locked row', () => {
  // regression: a lock timeout (55P03) answered record: undefined, so a mismatching request was
  // 409 instead of 422.
  it('reads the standing record, with its fingerprint', async () => {
    const table = `locked_${randomUUID().slice(0, 8)}`;
    const made = postgresStore({ pool, table });
    opened.push({ store: made });
    const key = `k-${randomUUID()}`;
    expect((await made.claim(key, { fingerprint: 'a', lockTtl: 60_000 })).acquired).toBe(true);
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM "${table}" WHERE key = $1 FOR UPDATE`, [key]);
      const claimed = await made.claim(key, { fingerprint: 'b', lockTtl: 60_000 });
      expect(claimed.acquired).toBe(false);
      if (!claimed.acquired) expect(claimed.record).toMatchObject({ state: 'in_flight', fingerprint: 'a' });
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
  });
});
