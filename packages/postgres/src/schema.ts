/**
 * The records' table. One row per key: an in-flight lease or a completed response. The SQL is
 * built here once and is the very text the README shows (a test checks that they match), so a team
 * that runs its own migrations creates exactly what the store would.
 */
import { parseTable } from './options.js';

/**
 * The `CREATE TABLE` and `CREATE INDEX` statements for `table` (`name` or `schema.name`).
 *
 * @example
 * console.log(schemaSql('billing.idem_records')); // paste into your migration
 */
export function schemaSql(table = 'idem_records'): string {
  const { quotedTable, quotedIndex } = parseTable(table);
  return `CREATE TABLE IF NOT EXISTS ${quotedTable} (
  key          text PRIMARY KEY,      -- the engine's hashed key (scope + client key)
  state        text NOT NULL CHECK (state IN ('in_flight', 'completed')),
  fingerprint  text,                  -- of the request that claimed or completed the key
  lease_token  text,                  -- fences complete/extend/release; NULL once completed
  lease_lock   bigint,                -- transactional mode: the holder's session advisory lock
  started_at   timestamptz NOT NULL,  -- when the handler started (database clock)
  status       smallint,              -- completed: the response's status
  headers      jsonb,                 -- completed: the replayable headers
  body         bytea,                 -- completed: the exact body bytes
  completed_at timestamptz,
  expires_at   timestamptz NOT NULL   -- in flight: the lease's end; completed: the record's end
);
CREATE INDEX IF NOT EXISTS ${quotedIndex} ON ${quotedTable} (expires_at);`;
}

/**
 * The same statements as one script that many processes may run at once: a transaction-level
 * advisory lock per table serialises them, because two concurrent `CREATE TABLE IF NOT EXISTS`
 * can both pass the existence check and one then fails on the catalog's unique index. Sent as one
 * simple query, so it runs as one implicit transaction and the lock lasts until the DDL commits.
 */
export function migrationScript(table: string, ddl: string = schemaSql(table)): string {
  // The table name is a checked identifier (letters, digits, _, $, .), so it is safe as a literal.
  return `SELECT pg_advisory_xact_lock(1684366701, hashtext('${table}'));\n${ddl}`;
}
