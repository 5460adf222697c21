/**
 * PostgreSQL going away under a running app, in both modes: stopped and started again, crashed
 * (SIGKILL of the postmaster) and recovered, paused (SIGSTOP of every server process). While it is
 * gone the app answers 503 store_unavailable within the queryTimeout bound, never hangs; when it is
 * back the same app (same pool, same store) serves again, and completed keys still replay.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { StoreError } from '@idem/core';
import { postgresStore, type PostgresStore } from '@idem/postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import type { ScenarioApp } from '../apps/scenario.js';
import { post } from '../http/scenarios.js';
import { until, useDatabase } from './helpers.js';

const db = useDatabase();
const QUERY_TIMEOUT = 500;

describe.each([false, true])('PostgreSQL faults (transactional: %s)', (transactional) => {
  let pool: pg.Pool;
  let store: PostgresStore;
  let app: ScenarioApp;
  beforeAll(async () => {
    pool = db.pool({ max: 10 });
    store = postgresStore({
      pool,
      table: `faults_${transactional}`,
      transactional,
      queryTimeout: QUERY_TIMEOUT,
      pollInterval: 50,
    });
    app = await expressAdapter('Express 5', express as never).start({ idempotency: { store } });
  });
  afterAll(async () => {
    await app.close();
    await store.close();
  });

  /** A key completed before the fault, and its first answer. */
  async function completedKey(): Promise<{ key: string; body: Buffer }> {
    const key = randomUUID();
    const first = await post(app, '/echo', { key, body: { v: key } });
    expect(first.status).toBe(200);
    return { key, body: first.body };
  }

  /** A request while the database is gone: 503 store_unavailable, within the bound, handler not run. */
  async function unavailable(): Promise<void> {
    const before = app.probe.count('echo');
    const started = Date.now();
    const res = await post(app, '/echo', { key: randomUUID() });
    expect(res.status).toBe(503);
    expect(res.json().code).toBe('store_unavailable');
    // One bounded wait for a query (and at most one more for the connection behind it).
    expect(Date.now() - started).toBeLessThan(2 * QUERY_TIMEOUT + 1_000);
    expect(app.probe.count('echo')).toBe(before);
  }

  /** After the fault: the old key replays byte for byte, and a new key runs once and replays. */
  async function recovered(old: { key: string; body: Buffer }): Promise<void> {
    const replay = await post(app, '/echo', { key: old.key, body: { v: old.key } });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.equals(old.body)).toBe(true);
    const fresh = await completedKey();
    const again = await post(app, '/echo', { key: fresh.key, body: { v: fresh.key } });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  }

  it('stopped: 503 within the bound; started again: completed keys replay and the same app serves', async () => {
    const old = await completedKey();
    await db.server.shutdown();
    await unavailable();
    await db.server.launch();
    await recovered(old);
  });

  it('crashed (SIGKILL of the postmaster) and recovered: completed keys replay and the same app serves', async () => {
    const old = await completedKey();
    await db.server.kill('SIGKILL');
    await unavailable();
    await db.server.launch();
    await recovered(old);
  });

  it('paused: 503 within the bound, never a hang; resumed: the same app serves again', async () => {
    const old = await completedKey();
    db.server.pause();
    try {
      await unavailable();
      await unavailable();
    } finally {
      db.server.resume();
    }
    await recovered(old);
  });
});

describe('a pooled client handed over as the server goes down', () => {
  // When the postmaster dies, every backend sends FATAL 57P01 on its own. pg parses a socket chunk
  // message by message, synchronously: a query's answer, whose callback gives the client back to
  // the pool (pool.query does, and the pool hands it straight to a waiting caller, taking its own
  // 'error' listener off), and then that FATAL, emitted as 'error' on the client. The store's
  // waiting checkout must already be listening then, or the process dies of an unhandled 'error'
  // (seen in the soak). The FATAL is emitted here by hand, in the same synchronous step, because
  // its arrival in the same chunk cannot be arranged with a real server on demand.
  it('is listened to from the moment it is handed over: the store call fails, the process stays up', async () => {
    const pool = db.pool({ max: 1 });
    const store = postgresStore({ pool, table: 'handover', queryTimeout: 2_000 });
    await store.migrate();
    const holder = await pool.connect();
    const reading = store.get('k');
    await until(() => pool.waitingCount === 1);
    const fatal = Object.assign(new Error('terminating connection due to unexpected postmaster exit'), {
      code: '57P01',
    });
    expect(() => {
      holder.release();
      holder.emit('error', fatal);
    }).not.toThrow();
    const failed = await reading.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(StoreError);
    // The lost client was not kept: the next call gets a fresh connection and works.
    await expect(store.get('k')).resolves.toBeUndefined();
    expect(pool.totalCount).toBe(1);
    await store.close();
  });
});
