/**
 * The durable tier of `@idem/cache` on PostgreSQL: cached values in a table of their own, behind
 * L1 and Redis, that outlive a Redis flush and the restart of every process. It runs on the
 * store's plumbing (pooled clients with a bound on every wait, first-use migration, batched
 * cleanup of expired rows: connection.ts, table.ts).
 */
import type { DurableRecord, DurableTier } from '@idem/cache';
import { StoreError, type Duration, type Logger } from '@idem/core';
import { checkOptions, parseDuration } from '@idem/core/adapter';
import type { Pool } from 'pg';
import type { Lent } from './connection.js';
import { defaults, fail, resolveTableSettings, tableName } from './options.js';
import { migrationScript } from './schema.js';
import { keepTable } from './table.js';

/**
 * The defaults of `postgresTier()`; the README's option table is checked against them. The table
 * settings are the store's own (`resolveTableSettings` applies them to both).
 */
export const tierDefaults = Object.freeze({
  table: 'idem_cache',
  ttl: '24h',
  grace: '7d',
  queryTimeout: defaults.queryTimeout,
  createTable: defaults.createTable,
  cleanupInterval: defaults.cleanupInterval,
  cleanupBatch: defaults.cleanupBatch,
} as const);

/**
 * Options of `postgresTier()`.
 *
 * @example
 * postgresTier({ pool, table: 'cache.values', ttl: '24h', grace: '7d' });
 */
export interface PostgresTierOptions {
  /** The `pg.Pool` the tier queries on. You own it: the tier never ends it. */
  pool: Pool;
  /** The values' table, `name` or `schema.name` (letters, digits, `_`, `$`). @default 'idem_cache' */
  table?: string;
  /** How long a value stays fresh here (at least its own ttl is kept): served without calling the loader after L1 and Redis missed. @default '24h' */
  ttl?: Duration;
  /** How long past `ttl` a value may still be served, marked stale, when the loader fails. @default '7d' */
  grace?: Duration;
  /** Longest wait for any one database answer (and for a pooled connection); past it the call fails (a read is a miss). @default '2s' */
  queryTimeout?: Duration;
  /** Create the table (and its indexes) on first use when it is missing; `false` when you run `durableSchemaSql()` yourself. @default true */
  createTable?: boolean;
  /** How often rows past their grace are removed, in batches of `cleanupBatch`; `false` for never. @default '1m' */
  cleanupInterval?: Duration | false;
  /** Most rows one delete statement removes (cleanup and invalidations alike). @default 1000 */
  cleanupBatch?: number;
  /** A pino logger for what the tier handles itself (cleanup). @default silent */
  logger?: Logger;
}

/** The durable tier, with admin helpers. */
export interface PostgresTier extends DurableTier {
  readonly name: 'postgres';
  /** Creates the table and its indexes when missing (what first use does unless `createTable: false`). */
  migrate(): Promise<void>;
  /** Removes one batch of rows past their grace now (what the cleanup timer does); resolves to how many went. */
  cleanup(): Promise<number>;
  /** Stops the cleanup timer (the cache's `close()` calls it); your pool stays open. */
  close(): Promise<void>;
}

const KNOWN = Object.keys({
  pool: true,
  table: true,
  ttl: true,
  grace: true,
  queryTimeout: true,
  createTable: true,
  cleanupInterval: true,
  cleanupBatch: true,
  logger: true,
} satisfies Record<keyof PostgresTierOptions, true>);

/**
 * The `CREATE TABLE` and `CREATE INDEX` statements of the durable tier's table.
 *
 * @example
 * console.log(durableSchemaSql('cache.values')); // paste into your migration
 */
export function durableSchemaSql(table: string = tierDefaults.table): string {
  const { quotedTable, indexName } = tableName(table);
  return `CREATE TABLE IF NOT EXISTS ${quotedTable} (
  namespace   text COLLATE "C" NOT NULL,  -- the cache's namespace
  key         text COLLATE "C" NOT NULL,  -- the cache key, as given
  value       bytea NOT NULL,             -- serialized by the cache's serializer
  tags        text[] NOT NULL,
  created_at  timestamptz NOT NULL,       -- when the value was loaded (the cache's clock)
  expires_at  timestamptz NOT NULL,       -- end of freshness here
  stale_until timestamptz NOT NULL,       -- end of grace: past it the row counts as absent
  PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS ${indexName('stale_until_idx')} ON ${quotedTable} (stale_until);
CREATE INDEX IF NOT EXISTS ${indexName('tags_idx')} ON ${quotedTable} USING gin (tags);`;
}

// Epoch milliseconds of the cache clock in and out. to_timestamp keeps microseconds, so a
// millisecond survives the round trip exactly.
const at = (parameter: string): string => `to_timestamp(${parameter}::float8 / 1000)`;
const ms = (column: string): string => `round(extract(epoch FROM ${column}) * 1000)::float8`;

/** The statements for one (quoted) table. */
function statements(table: string) {
  // A batch of rows, `where` over alias b, found by their primary key (a ctid would miss a row
  // that a concurrent upsert moved to a new version); plain FOR UPDATE (not SKIP LOCKED): an
  // invalidation waits for a concurrent write of the same row rather than skip it.
  const batched = (where: string, limit: string): string =>
    `DELETE FROM ${table} WHERE (namespace, key) IN (
  SELECT b.namespace, b.key FROM ${table} b WHERE ${where} LIMIT ${limit} FOR UPDATE
)`;
  return {
    // $1 namespace, $2 keys, $3 now (ms).
    getMany: `SELECT key, value, tags, ${ms('created_at')} AS created_ms, ${ms('expires_at')} AS expires_ms,
  ${ms('stale_until')} AS stale_ms
FROM ${table} WHERE namespace = $1 AND key = ANY($2::text[]) AND stale_until > ${at('$3')}`,
    // A value loaded earlier never replaces one loaded later (two processes, one slow).
    // $1 namespace, $2 key, $3 value, $4 tags, $5 created, $6 expires, $7 stale until (ms).
    set: `INSERT INTO ${table} AS r (namespace, key, value, tags, created_at, expires_at, stale_until)
VALUES ($1, $2, $3, $4::text[], ${at('$5')}, ${at('$6')}, ${at('$7')})
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, tags = excluded.tags,
  created_at = excluded.created_at, expires_at = excluded.expires_at, stale_until = excluded.stale_until
WHERE r.created_at <= excluded.created_at`,
    // $1 namespace, $2 keys.
    delete: `DELETE FROM ${table} WHERE namespace = $1 AND key = ANY($2::text[])`,
    // $1 namespace, $2 tags, $3 batch size.
    deleteByTag: batched('b.namespace = $1 AND b.tags && $2::text[]', '$3'),
    // $1 namespace, $2 LIKE pattern (the prefix with \ % _ escaped by a backslash, LIKE's own
    // escape character, then %), $3 batch size. With the key's "C" collation the primary key's
    // index serves the prefix.
    deleteByPrefix: batched('b.namespace = $1 AND b.key LIKE $2', '$3'),
    // $1 namespace, $2 batch size.
    clear: batched('b.namespace = $1', '$2'),
    // Rows past their grace, by the database clock (the index on stale_until serves now()); SKIP
    // LOCKED, so that cleanup never waits on a write. $1 batch size.
    cleanup: `DELETE FROM ${table} WHERE ctid IN (
  SELECT c.ctid FROM ${table} c WHERE c.stale_until <= now() LIMIT $1 FOR UPDATE SKIP LOCKED
)`,
  };
}

/** A prefix as a LIKE pattern that matches it literally. */
function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type Row = { key: string; value: Buffer; tags: string[]; created_ms: number; expires_ms: number; stale_ms: number };

/**
 * A durable tier for `createCache({ durable })` on a PostgreSQL table: read after an L1 and Redis
 * miss, written on every load and `set`, and served, marked stale, within its own `grace` when
 * the loader fails. It survives a Redis flush and the restart of every process; every
 * invalidation (`delete`, `deleteByTag`, `deleteByPrefix`, `clear`) reaches it. Every call is
 * bounded by `queryTimeout`. Options are validated here (an `IdempotencyConfigError` naming one).
 *
 * @example
 * import pg from 'pg';
 * import { createCache } from '@idem/cache';
 * import { postgresTier } from '@idem/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const cache = createCache({ redis, ttl: '1h', durable: postgresTier({ pool, ttl: '24h', grace: '7d' }) });
 */
export function postgresTier(options: PostgresTierOptions): PostgresTier {
  checkOptions(options, KNOWN, fail);
  const settings = resolveTableSettings(options);
  const table = options.table ?? tierDefaults.table;
  const { quotedTable } = tableName(table);
  const ttl = parseDuration('ttl', options.ttl ?? tierDefaults.ttl, { fail });
  const grace = parseDuration('grace', options.grace ?? tierDefaults.grace, { fail, allowZero: true });
  const sql = statements(quotedTable);
  const { cleanupBatch, queryTimeout } = settings;
  const keeper = keepTable({
    ...settings,
    quotedTable,
    migration: migrationScript(table, durableSchemaSql(table)),
    cleanup: sql.cleanup,
    rows: 'cached values',
  });

  async function query<T>(operation: string, work: (client: Lent) => Promise<T>): Promise<T> {
    await keeper.prepare();
    return keeper.run(operation, work);
  }

  /**
   * Runs a batched delete until a batch deletes nothing (a short one may have waited on a row
   * that a concurrent write then kept out of it). Bounded as a whole by `queryTimeout` past the
   * first batch: what is left then fails the call, which the cache queues and retries, so an
   * invalidation of a million rows holds no caller for long.
   */
  function deleteAll(operation: string, text: string, values: unknown[]): Promise<void> {
    return query(operation, async (client) => {
      const deadline = performance.now() + queryTimeout;
      for (;;) {
        const { rowCount } = await client.query(operation, text, [...values, cleanupBatch]);
        if ((rowCount ?? 0) === 0) return;
        if (performance.now() >= deadline) {
          const more = new Error(`more rows than one queryTimeout (${queryTimeout} ms) removes; the rest is retried`);
          throw new StoreError(operation, more);
        }
      }
    });
  }

  return {
    name: 'postgres',
    ttl,
    grace,

    async getMany(namespace, keys, now) {
      const { rows } = await query('getMany', (client) =>
        client.query<Row>('getMany', sql.getMany, [namespace, keys, now]),
      );
      const byKey = new Map(rows.map((row) => [row.key, row]));
      return keys.map((key): DurableRecord | undefined => {
        const row = byKey.get(key);
        if (row === undefined) return undefined;
        return {
          value: row.value,
          tags: row.tags,
          createdAt: Number(row.created_ms),
          expiresAt: Number(row.expires_ms),
          staleUntil: Number(row.stale_ms),
        };
      });
    },

    async set(namespace, key, record) {
      const values = [namespace, key, record.value, record.tags, record.createdAt, record.expiresAt, record.staleUntil];
      await query('set', (client) => client.query('set', sql.set, values));
    },

    async delete(namespace, keys) {
      if (keys.length === 0) return;
      await query('delete', (client) => client.query('delete', sql.delete, [namespace, keys]));
    },

    deleteByTag: (namespace, tags) => deleteAll('deleteByTag', sql.deleteByTag, [namespace, tags]),
    deleteByPrefix: (namespace, prefix) =>
      deleteAll('deleteByPrefix', sql.deleteByPrefix, [namespace, prefixPattern(prefix)]),
    clear: (namespace) => deleteAll('clear', sql.clear, [namespace]),

    migrate: () => keeper.migrate(),
    cleanup: async () => {
      await keeper.prepare();
      return keeper.cleanup();
    },
    async close() {
      keeper.close();
    },
  };
}
