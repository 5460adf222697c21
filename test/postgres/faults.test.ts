/**
 * PostgreSQL going away under a running app, in both modes: stopped and started again, crashed
 * (SIGKILL of the postmaster) and recovered, paused (SIGSTOP of every server process). While it is
 * gone the app answers 503 store_unavailable within the queryTimeout bound, never hangs; when it is
 * back the same app (same pool, same store) serves again, and completed keys still replay.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { postgresStore, type PostgresStore } from '@idem/postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import type { ScenarioApp } from '../apps/scenario.js';
import { post } from '../http/scenarios.js';
import { useDatabase } from './helpers.js';

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
