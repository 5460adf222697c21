/**
 * The two ways the service keeps its state, chosen by `DATABASE_URL`:
 *
 * - unset: the memory store and the in-memory ledger (this process only, gone on restart);
 * - set: PostgreSQL, `postgresStore({ transactional: true })` beside a `payments` table created
 *   at start. Each request's payment row and its stored response commit in one transaction.
 *
 * A payments API does not run on memory when its database was asked for: an unreachable
 * PostgreSQL at start is a {@link StorageError}, and the process exits.
 */
import { memoryStore, type IdempotencyStore } from '@idem/core';
import { postgresStore } from '@idem/postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { memoryLedger, PAYMENTS_SQL, postgresLedger, type Ledger } from './ledger.js';

/** Connections of the pool: transactional mode holds one per payment in flight, for its whole handler. */
const POOL_SIZE = 20;

/** How the service's connections show in `pg_stat_activity` (a URL's own `application_name` wins). */
export const APPLICATION_NAME = 'koa-payments';

/** The store, the ledger, and how to close both. */
export interface Storage {
  store: IdempotencyStore;
  ledger: Ledger;
  /** A line for the start-up banner. */
  description: string;
  /** Closes the store, then the pool (PostgreSQL). */
  close(): Promise<void>;
}

/** PostgreSQL did not answer at start, or refused the schema; `message` says what it said. */
export class StorageError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** `postgres://user:secret@host` → `postgres://user:***@host`, for logs. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

/** The innermost message of `error`: a store error wraps the driver's (ECONNREFUSED, bad password, …). */
function rootMessage(error: unknown): string {
  let current = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/**
 * Opens what `config` asks for; with PostgreSQL, creates the records' and the payments' tables
 * when missing. Throws {@link StorageError} when PostgreSQL does not answer.
 *
 * @example
 * const { store, ledger, close } = await openStorage(loadConfig(), logger);
 */
export async function openStorage(
  config: Pick<Config, 'databaseUrl' | 'paymentLatencyMs'>,
  logger: Logger,
): Promise<Storage> {
  if (config.databaseUrl === undefined) {
    const store = memoryStore();
    return {
      store,
      ledger: memoryLedger(config.paymentLatencyMs),
      description: 'memory store and in-memory ledger (this process only; set DATABASE_URL for PostgreSQL)',
      close: async () => store.close?.(),
    };
  }

  const where = redactUrl(config.databaseUrl);
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: POOL_SIZE,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: 5_000,
  });
  // Without a listener, an idle client that loses its connection (a database restart) crashes the process.
  pool.on('error', (error) =>
    logger.warn({ err: error, postgres: where }, 'an idle PostgreSQL connection failed; the pool opens a new one'),
  );
  const store = postgresStore({ pool, transactional: true, logger });
  try {
    await store.migrate();
    await pool.query(PAYMENTS_SQL);
  } catch (error) {
    await store.close().catch(() => {});
    await pool.end().catch(() => {});
    throw new StorageError(`PostgreSQL at ${where} did not answer: ${rootMessage(error)}`, { cause: error });
  }
  return {
    store,
    ledger: postgresLedger({ pool, latencyMs: config.paymentLatencyMs }),
    description: `PostgreSQL at ${where}, transactional: each payment row commits with its stored response`,
    close: async () => {
      await store.close();
      await pool.end();
    },
  };
}
