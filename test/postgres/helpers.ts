/**
 * Shared pieces of the PostgreSQL tests: one server per test file (started by the harness), pools
 * on it that the file closes, and small waiting helpers (wait for a condition, never a guess).
 */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { PostgresServer } from '../harness/postgres.mjs';

export { until, within } from '../harness/wait.js';

/** The server of this test file and the pools made on it. */
export interface Database {
  readonly server: PostgresServer;
  /** A pool on the server, closed after the file; errors of idle clients (a restart) are expected. */
  pool(options?: pg.PoolConfig): pg.Pool;
  /** One query on a pool of the file's own (for assertions on business tables). */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
}

/** Starts a PostgreSQL server for the file (beforeAll) and stops it with its pools (afterAll). */
export function useDatabase(): Database {
  let server: PostgresServer | undefined;
  const pools: pg.Pool[] = [];
  let admin: pg.Pool | undefined;
  beforeAll(async () => {
    server = await PostgresServer.start();
  });
  afterAll(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end().catch(() => {})));
    await server?.stop();
  });
  const database: Database = {
    get server() {
      if (server === undefined) throw new Error('the PostgreSQL server is not started yet (use it inside tests)');
      return server;
    },
    pool(options = {}) {
      const pool = new pg.Pool({ connectionString: database.server.url, max: 20, ...options });
      pool.on('error', () => {}); // idle clients of a restarted or crashed server report it here
      pools.push(pool);
      return pool;
    },
    async query(text, values) {
      admin ??= database.pool({ max: 4 });
      return (await admin.query(text, values)).rows;
    },
  };
  return database;
}
