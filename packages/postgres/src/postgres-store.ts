import { randomBytes, randomUUID } from 'node:crypto';
import type { ClaimResult, IdempotencyRecord, IdempotencyStore, InspectedRecord, Lease } from '@idem/core';
import { sha256 } from '@idem/core/adapter';
import { checkout, sqlState, type Lent } from './connection.js';
import { listenNotifications, type Watch } from './notifications.js';
import { resolvePostgresStoreOptions, type PostgresStoreOptions } from './options.js';
import { decodeRecord, bodyBytes, type RecordRow } from './record.js';
import { migrationScript } from './schema.js';
import { statements } from './sql.js';
import { keepTable } from './table.js';
import { Executions } from './transactional.js';

/**
 * The PostgreSQL store: an {@link IdempotencyStore} with admin helpers.
 *
 * @example
 * const store = postgresStore({ pool });
 * await store.migrate();
 * console.log(await store.count(), 'idempotency records');
 */
export interface PostgresStore extends IdempotencyStore {
  readonly name: 'postgres';
  readonly transactional: boolean;
  /** The record with the time its row has left, in one statement that changes nothing (for `@idem/admin`). */
  inspect(key: string): Promise<InspectedRecord | undefined>;
  /** `SELECT 1` on a pooled client within `queryTimeout`; creates no table. */
  ping(): Promise<void>;
  /** Creates the table and its index when missing (what first use does unless `createTable: false`). Safe to run from many processes at once. */
  migrate(): Promise<void>;
  /** Records that count (completed, and in flight under a live holder). */
  count(): Promise<number>;
  /** Deletes every row of the table and returns how many went. Running requests lose their keys: not for live traffic. */
  clear(): Promise<number>;
  /** Removes one batch of expired rows now (what the cleanup timer does) and returns how many went. */
  cleanup(): Promise<number>;
  /** Rolls back open transactions, closes the LISTEN connection and stops the timers; your pool stays open. */
  close(): Promise<void>;
}

type ClaimOptions = { fingerprint: string | null; lockTtl: number };
type ClaimRow = RecordRow & { acquired: boolean; locked: boolean | null };

/** A watch that no notification wakes: waiting degrades to polling. */
const pollingOnly: Watch = { next: (ms) => new Promise((resolve) => setTimeout(resolve, ms, false)), stop() {} };

/** A random advisory lock id: a signed 64-bit integer, as text (JavaScript numbers cannot hold it). */
const lockId = (): string => randomBytes(8).readBigInt64BE().toString();

/**
 * A store that keeps idempotency records in a PostgreSQL table, on your `pg.Pool`. Lease mode
 * (the default) has the Redis store's semantics on durable rows: a claim is one statement, the
 * lease token fences complete/extend/release, waiters are woken by LISTEN/NOTIFY. Transactional
 * mode (`transactional: true`) runs each execution in a transaction the handler writes in
 * (`transactionOf(req)`) and commits the stored response with those writes, before the response
 * is sent. Every call is bounded by `queryTimeout` and throws a `StoreError` on failure (503).
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * app.use(idempotent({ store: postgresStore({ pool, transactional: true }) }));
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  const o = resolvePostgresStoreOptions(options);
  const { pool, queryTimeout, logger, transactional } = o;
  const sql = statements(o.quotedTable);
  // A channel name of our own per table: any table name fits, and every process agrees on it.
  const channel = `idem_${sha256(o.quotedTable).slice(0, 24)}`;
  const notifications = listenNotifications(pool, channel, { timeoutMs: queryTimeout, logger });
  const executions = new Executions(sql, channel, logger, pool, queryTimeout);
  // Row locks are only ever held for a statement, or for the COMMIT round trip of a transactional
  // execution: a duplicate waits at most this long before it is told "in flight".
  const lockTimeout = `${Math.max(1, Math.min(250, Math.floor(queryTimeout / 4)))}ms`;
  const table = keepTable({
    ...o,
    migration: migrationScript(o.table),
    cleanup: sql.cleanup,
    rows: 'idempotency records',
  });
  const { run, prepare, migrate, cleanup } = table;

  async function get(key: string): Promise<IdempotencyRecord | undefined> {
    await prepare();
    return run('get', async (client) => decodeRecord((await client.query<RecordRow>('get', sql.get, [key])).rows[0]));
  }

  /**
   * One claim statement on `client`; the answer, or 'retry' when the standing row was not visible
   * yet or was locked (by a holder committing its record): the caller reads it then.
   */
  async function claimOnce(
    client: Lent,
    key: string,
    { fingerprint, lockTtl }: ClaimOptions,
  ): Promise<ClaimResult | 'retry'> {
    const token = randomUUID();
    const lock = transactional ? lockId() : null;
    let rows: ClaimRow[];
    try {
      ({ rows } = await client.query<ClaimRow>('claim', sql.claim, [
        key,
        fingerprint,
        token,
        lockTtl,
        lock,
        lockTimeout,
      ]));
    } catch (error) {
      // A row locked by a transaction that is committing its record: read it (a plain read does
      // not wait on the lock), so that a mismatching fingerprint is still told apart.
      if (sqlState((error as Error).cause) === '55P03') return 'retry';
      throw error;
    }
    const row = rows[0];
    if (row === undefined) return 'retry';
    if (!row.acquired) return { acquired: false, record: decodeRecord(row) };
    if (lock === null) return { acquired: true, lease: { key, token } };
    if (row.locked !== true) throw new Error('idem: a fresh advisory lock id was already taken');
    const held = await executions.begin(key, token, lock, client, lockTtl);
    return { acquired: true, lease: { key, token, context: held.view } };
  }

  async function claim(key: string, options: ClaimOptions): Promise<ClaimResult> {
    await prepare();
    for (let attempt = 0; ; attempt++) {
      const client = await checkout(pool, 'claim', queryTimeout);
      let result: ClaimResult | 'retry';
      try {
        result = await claimOnce(client, key, options);
      } catch (error) {
        // A claim that failed half way (statement done, BEGIN not) must not keep its session lock.
        client.destroy();
        throw error;
      }
      if (!(result !== 'retry' && result.acquired && transactional)) client.release();
      if (result !== 'retry') return result;
      // The conflicting row was committed after our snapshot, or locked: read it with a fresh one.
      const record = await get(key);
      if (record !== undefined || attempt >= 2) return { acquired: false, record };
    }
  }

  return {
    name: 'postgres',
    transactional,
    get,
    claim,
    getOrClaim: claim,
    migrate,
    cleanup,

    async extend(lease: Lease, lockTtl: number) {
      // Transactional: the lease is our session's lock, held while the transaction is open on a
      // live connection; no query (nor pooled client) is needed, and none may touch the marker.
      if (transactional) return executions.extend(lease.token, lockTtl);
      // Lease mode: the marker must still carry our token within its lease, and gets lockTtl more.
      return run(
        'extend',
        async (client) => (await client.query('extend', sql.extend, [lease.key, lease.token, lockTtl])).rowCount === 1,
      );
    },

    async complete(lease, response, { fingerprint, ttl }) {
      if (transactional) {
        const held = executions.open(lease.token);
        if (held === undefined) {
          // Not ours, or its connection died (the transaction with it): nothing can be committed.
          await executions.rollback(lease.token).catch(() => {});
          return false;
        }
        return executions.commit(held, response, fingerprint, ttl);
      }
      const values = [
        lease.key,
        lease.token,
        response.status,
        JSON.stringify(response.headers),
        bodyBytes(response),
        fingerprint,
        ttl,
        channel,
      ];
      return run('complete', async (client) => (await client.query('complete', sql.complete, values)).rowCount === 1);
    },

    async release(lease) {
      if (executions.has(lease.token)) return executions.rollback(lease.token);
      // Lease mode, or a transactional lease whose transaction already ended: drop a marker left behind.
      await run('release', (client) => client.query('release', sql.release, [lease.key, lease.token, channel, null]));
    },

    async waitFor(key, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      // Listen first, then look: a change between the two is caught by one or the other.
      const watch = await notifications.watch(key).catch((error: unknown) => {
        logger.warn({ err: error, key }, 'idem: LISTEN is not available; waiting by polling');
        return pollingOnly;
      });
      try {
        await prepare();
        for (;;) {
          const { rows } = await run('waitFor', (client) =>
            client.query<{ state: string; remaining_ms: number | null }>('waitFor', sql.peek, [key]),
          );
          const peek = rows[0];
          if (peek === undefined || peek.state === 'completed') return;
          const remaining = deadline - Date.now();
          if (remaining <= 0) return;
          // A crashed holder notifies nobody: look again when its lease lapses, and poll as a
          // backstop (a transactional holder's death is seen at the next look).
          const lapse = peek.remaining_ms === null ? o.pollInterval : peek.remaining_ms + 1;
          if (await watch.next(Math.min(remaining, o.pollInterval, lapse))) return;
        }
      } finally {
        watch.stop();
      }
    },

    async delete(key) {
      await prepare();
      return run(
        'delete',
        async (client) =>
          (await client.query<{ live: boolean }>('delete', sql.remove, [key, channel])).rows[0]?.live === true,
      );
    },

    async inspect(key) {
      await prepare();
      return run('inspect', async (client) => {
        const row = (await client.query<RecordRow & { remaining_ms: number | null }>('inspect', sql.inspect, [key]))
          .rows[0];
        const record = decodeRecord(row);
        if (record === undefined || row === undefined) return undefined;
        return { record, expiresInMs: row.remaining_ms === null ? null : Number(row.remaining_ms) };
      });
    },

    async ping() {
      await run('ping', (client) => client.query('ping', sql.ping));
    },

    async count() {
      await prepare();
      return run('count', async (client) => (await client.query<{ n: number }>('count', sql.count)).rows[0]?.n ?? 0);
    },

    async clear() {
      await prepare();
      return run('clear', async (client) => (await client.query('clear', sql.clear)).rowCount ?? 0);
    },

    async close() {
      table.close();
      await Promise.all([executions.closeAll(), notifications.close()]);
    },
  };
}
