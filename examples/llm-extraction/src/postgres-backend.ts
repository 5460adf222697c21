/**
 * PostgreSQL at start: a `pg.Pool` on `DATABASE_URL` and `postgresStore` on it in lease mode. Lease
 * mode, not transactional: a model call takes seconds (up to `LLM_TIMEOUT_MS`), and a transaction
 * held open that long would hold a pooled connection per running call; nor could a rollback undo
 * a model call that was already paid for. The records are durable rows either way.
 */
import { postgresStore } from '@idem/postgres';
import pg from 'pg';
import type { Backend } from './backend.js';
import type { Logger } from './logger.js';
import { redactUrl } from './redact-url.js';
import { withTimeout } from './with-timeout.js';

/** Connections of the pool: lease mode takes one per statement, not per running request. */
const POOL_SIZE = 10;

/** How the service's connections show in `pg_stat_activity` (a URL's own `application_name` wins). */
export const APPLICATION_NAME = 'llm-extraction';

/** The key `/health` reads: any key does, a read that finds nothing proves the store answers. */
const HEALTH_KEY = 'llm-extraction:health';

/** A connected backend, or why there is none. `where` is the URL without its password. */
export type PostgresConnection =
  { ok: true; backend: Backend } | { ok: false; reason: string; error: unknown; where: string };

/** The innermost message of `error`: a store error wraps the driver's (ECONNREFUSED, bad password, …). */
function rootMessage(error: unknown): string {
  let current = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/**
 * Opens the pool and creates the records' table when it is missing, within `timeoutMs`; never
 * throws. On failure the pool is ended.
 */
export async function connectPostgres(url: string, logger: Logger, timeoutMs: number): Promise<PostgresConnection> {
  const where = redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, application_name: APPLICATION_NAME });
  // Without a listener, an idle client that loses its connection (a database restart) crashes the process.
  pool.on('error', (error) =>
    logger.warn({ err: error, postgres: where }, 'an idle PostgreSQL connection failed; the pool opens a new one'),
  );
  const store = postgresStore({ pool, logger });
  try {
    await withTimeout(store.migrate(), timeoutMs, 'connecting to PostgreSQL');
  } catch (error) {
    await store.close().catch(() => {});
    void pool.end().catch(() => {});
    return { ok: false, reason: `${where}: ${rootMessage(error)}`, error, where };
  }
  return {
    ok: true,
    backend: {
      kind: 'postgres',
      store,
      redis: undefined,
      fallbackReason: undefined,
      ping: () =>
        withTimeout(store.get(HEALTH_KEY), 1_000, 'PostgreSQL health read').then(
          () => true,
          () => false,
        ),
      describe: () => `postgres at ${where} (lease mode: durable records, shared by every instance)`,
      close: async () => {
        await store.close();
        await pool.end();
      },
    },
  };
}
