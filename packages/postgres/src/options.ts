import { IdempotencyConfigError, type Duration, type Logger } from '@idem/core';
import { checkLogger, checkOptions, parseDuration } from '@idem/core/adapter';
import type { Pool } from 'pg';

/** The defaults of `postgresStore()`, declared once; the README's option table is checked against them. */
export const defaults = Object.freeze({
  table: 'idem_records',
  transactional: false,
  queryTimeout: '2s',
  pollInterval: '500ms',
  createTable: true,
  cleanupInterval: '1m',
  cleanupBatch: 1000,
} as const);

/**
 * Options of `postgresStore()`.
 *
 * @example
 * postgresStore({ pool, table: 'billing.idem_records', transactional: true, queryTimeout: '1s' });
 */
export interface PostgresStoreOptions {
  /** The `pg.Pool` the records (and, in transactional mode, the handlers' transactions) use. You own it: the store never ends it. */
  pool: Pool;
  /** The records' table, `name` or `schema.name` (letters, digits, `_`, `$`; taken literally, so case-sensitive). @default 'idem_records' */
  table?: string;
  /**
   * Run each execution in a transaction on a client of its own: the handler writes through
   * `transactionOf(req)`, and the stored response is committed together with those writes.
   * @default false
   */
  transactional?: boolean;
  /** Longest wait for any one database answer (and for a pooled connection); past it the call throws and the engine answers 503. @default '2s' */
  queryTimeout?: Duration;
  /** How often a `concurrent: 'wait'` waiter re-checks the key when no notification came. @default '500ms' */
  pollInterval?: Duration;
  /** Create the table (and its index) on first use when it is missing. `false` for teams that run the README's SQL themselves. @default true */
  createTable?: boolean;
  /** How often expired rows are removed, in batches of `cleanupBatch`; `false` for never (then remove them yourself). @default '1m' */
  cleanupInterval?: Duration | false;
  /** Most rows one cleanup statement removes, so that it never holds many row locks at once. @default 1000 */
  cleanupBatch?: number;
  /** A pino logger for what the store handles itself (notification reconnects, cleanup, rollbacks). @default silent */
  logger?: Logger;
}

/** Options after validation, with defaults applied. */
export interface ResolvedPostgresStoreOptions {
  pool: Pool;
  /** The table as given, e.g. `billing.idem_records`. */
  table: string;
  /** The same, quoted for SQL: `"billing"."idem_records"`. */
  quotedTable: string;
  /** The index on the expiry time, quoted (lives in the table's schema). */
  quotedIndex: string;
  transactional: boolean;
  queryTimeout: number;
  pollInterval: number;
  createTable: boolean;
  cleanupInterval: number | false;
  cleanupBatch: number;
  logger: Logger;
}

const KNOWN = [
  'pool',
  'table',
  'transactional',
  'queryTimeout',
  'pollInterval',
  'createTable',
  'cleanupInterval',
  'cleanupBatch',
  'logger',
];
const fail = (option: string, message: string): IdempotencyConfigError => new IdempotencyConfigError(option, message);
// An unquoted-style identifier; the store quotes it, so a name can never inject SQL. 48 characters
// leave room for the index name's suffix within PostgreSQL's 63-byte identifiers.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,47}$/;

function isPool(value: unknown): value is Pool {
  const candidate = value as Record<string, unknown> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.connect === 'function' &&
    typeof candidate.query === 'function' &&
    typeof candidate.Client === 'function' &&
    typeof candidate.options === 'object'
  );
}

const quote = (identifier: string): string => `"${identifier}"`;

/** Splits and checks `schema.table`; throws naming the option. */
export function parseTable(table: unknown): { quotedTable: string; quotedIndex: string } {
  const parts = typeof table === 'string' ? table.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw fail(
      'table',
      `expected a table name or schema.table of letters, digits, _ and $ (at most 48 each), got ${JSON.stringify(table)}`,
    );
  }
  const name = parts[parts.length - 1] as string;
  const schema = parts.length === 2 ? `${quote(parts[0] as string)}.` : '';
  return { quotedTable: schema + quote(name), quotedIndex: quote(`${name}_expires_at_idx`) };
}

/** Validates the options once, at creation; a bad one throws an `IdempotencyConfigError` naming it. */
export function resolvePostgresStoreOptions(options: PostgresStoreOptions): ResolvedPostgresStoreOptions {
  checkOptions(options, KNOWN, fail);
  const { pool } = options;
  if (!isPool(pool)) throw fail('pool', 'expected a pg Pool, e.g. new pg.Pool({ connectionString })');
  const table = options.table ?? defaults.table;
  for (const flag of ['transactional', 'createTable'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean')
      throw fail(flag, `expected true or false, got ${JSON.stringify(options[flag])}`);
  }
  const cleanupBatch = options.cleanupBatch ?? defaults.cleanupBatch;
  if (!Number.isSafeInteger(cleanupBatch) || cleanupBatch < 1)
    throw fail('cleanupBatch', `expected a positive integer, got ${String(options.cleanupBatch)}`);
  const cleanup = options.cleanupInterval ?? defaults.cleanupInterval;
  return {
    pool,
    table,
    ...parseTable(table),
    transactional: options.transactional ?? defaults.transactional,
    queryTimeout: parseDuration('queryTimeout', options.queryTimeout ?? defaults.queryTimeout, { fail }),
    pollInterval: parseDuration('pollInterval', options.pollInterval ?? defaults.pollInterval, { fail }),
    createTable: options.createTable ?? defaults.createTable,
    cleanupInterval: cleanup === false ? false : parseDuration('cleanupInterval', cleanup, { fail }),
    cleanupBatch,
    logger: checkLogger(options.logger, fail),
  };
}
