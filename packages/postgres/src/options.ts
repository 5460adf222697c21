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
export interface ResolvedPostgresStoreOptions extends TableSettings {
  /** The table as given, e.g. `billing.idem_records`. */
  table: string;
  /** The same, quoted for SQL: `"billing"."idem_records"`. */
  quotedTable: string;
  /** The index on the expiry time, quoted (lives in the table's schema). */
  quotedIndex: string;
  transactional: boolean;
  pollInterval: number;
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
/** A configuration error naming the option. */
export const fail = (option: string, message: string): IdempotencyConfigError =>
  new IdempotencyConfigError(option, message);
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

/** A checked table name: quoted for SQL, and the quoted name of an index of its (`suffix` appended). */
export interface TableName {
  quotedTable: string;
  indexName(suffix: string): string;
}

/** Splits and checks `schema.table`; throws naming the option. */
export function tableName(table: unknown): TableName {
  const parts = typeof table === 'string' ? table.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw fail(
      'table',
      `expected a table name or schema.table of letters, digits, _ and $ (at most 48 each), got ${JSON.stringify(table)}`,
    );
  }
  const name = parts[parts.length - 1] as string;
  const schema = parts.length === 2 ? `${quote(parts[0] as string)}.` : '';
  return { quotedTable: schema + quote(name), indexName: (suffix) => quote(`${name}_${suffix}`) };
}

/** The records' table checked, with its expiry index. */
export function parseTable(table: unknown): { quotedTable: string; quotedIndex: string } {
  const { quotedTable, indexName } = tableName(table);
  return { quotedTable, quotedIndex: indexName('expires_at_idx') };
}

/** The options every table of the package takes, checked once (the store's and the durable tier's). */
export interface TableSettings {
  pool: Pool;
  queryTimeout: number;
  createTable: boolean;
  cleanupInterval: number | false;
  cleanupBatch: number;
  logger: Logger;
}

type TableSettingOptions = {
  pool: Pool;
  queryTimeout?: Duration;
  createTable?: boolean;
  cleanupInterval?: Duration | false;
  cleanupBatch?: number;
  logger?: Logger;
};

/** An optional true/false option: `fallback` when not given; throws naming it when not a boolean. */
function flag(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw fail(option, `expected true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** Checks the options a table takes (the rest are the caller's to check); throws naming the option. */
export function resolveTableSettings(options: TableSettingOptions): TableSettings {
  const { pool } = options;
  if (!isPool(pool)) throw fail('pool', 'expected a pg Pool, e.g. new pg.Pool({ connectionString })');
  const createTable = flag('createTable', options.createTable, defaults.createTable);
  const cleanupBatch = options.cleanupBatch ?? defaults.cleanupBatch;
  if (!Number.isSafeInteger(cleanupBatch) || cleanupBatch < 1)
    throw fail('cleanupBatch', `expected a positive integer, got ${String(options.cleanupBatch)}`);
  const cleanup = options.cleanupInterval ?? defaults.cleanupInterval;
  return {
    pool,
    queryTimeout: parseDuration('queryTimeout', options.queryTimeout ?? defaults.queryTimeout, { fail }),
    createTable,
    cleanupInterval: cleanup === false ? false : parseDuration('cleanupInterval', cleanup, { fail }),
    cleanupBatch,
    logger: checkLogger(options.logger, fail),
  };
}

/** Validates the options once, at creation; a bad one throws an `IdempotencyConfigError` naming it. */
export function resolvePostgresStoreOptions(options: PostgresStoreOptions): ResolvedPostgresStoreOptions {
  checkOptions(options, KNOWN, fail);
  const settings = resolveTableSettings(options);
  const table = options.table ?? defaults.table;
  return {
    ...settings,
    table,
    ...parseTable(table),
    transactional: flag('transactional', options.transactional, defaults.transactional),
    pollInterval: parseDuration('pollInterval', options.pollInterval ?? defaults.pollInterval, { fail }),
  };
}
