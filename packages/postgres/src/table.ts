/**
 * The life of a table the package keeps (the store's records, the cache's durable tier): created
 * on first use unless the team runs its own migration, and emptied of expired rows on a timer, a
 * bounded batch at a time. Both users hand their own statements; the plumbing is this one copy.
 */
import type { Logger } from '@idem/core';
import type { Pool } from 'pg';
import { withClient, type Lent } from './connection.js';

/** What a table's keeper needs: where, how long to wait, and the table's own SQL. @internal */
export interface TableOptions {
  pool: Pool;
  queryTimeout: number;
  /** The table, quoted (what `to_regclass` reads). */
  quotedTable: string;
  /** Create the table on first use when it is missing. */
  createTable: boolean;
  /** The DDL, run once when the table is missing (safe to run from many processes at once). */
  migration: string;
  /** One bounded batch of expired rows; `$1` is the batch size. */
  cleanup: string;
  cleanupInterval: number | false;
  cleanupBatch: number;
  logger: Logger;
  /** What the cleanup's log lines call the rows, e.g. 'idempotency records'. */
  rows: string;
}

/** The table's first-use, migration and cleanup. @internal */
export interface Table {
  /** Runs `work` on a pooled client, bounded by `queryTimeout`, given back (or destroyed) after. */
  run<T>(operation: string, work: (client: Lent) => Promise<T>): Promise<T>;
  /** First use: starts the cleanup timer, and creates the table when missing. Undefined when nothing is left to wait for. */
  prepare(): Promise<void> | undefined;
  /** Creates the table when missing. */
  migrate(): Promise<void>;
  /** Removes one batch of expired rows; resolves to how many went. */
  cleanup(): Promise<number>;
  /** Stops the timer. */
  close(): void;
}

const PRESENT = 'SELECT to_regclass($1) IS NOT NULL AS present';

/** The keeper of one table. @internal */
export function keepTable(o: TableOptions): Table {
  const { pool, queryTimeout, logger } = o;
  let ready: Promise<void> | undefined;
  let prepared = !o.createTable;
  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;
  let closed = false;

  const run = <T>(operation: string, work: (client: Lent) => Promise<T>): Promise<T> =>
    withClient(pool, operation, queryTimeout, work);

  async function migrate(): Promise<void> {
    await run('migrate', async (client) => {
      const { rows } = await client.query<{ present: boolean }>('migrate', PRESENT, [o.quotedTable]);
      if (!rows[0]?.present) await client.query('migrate', o.migration);
    });
  }

  async function cleanup(): Promise<number> {
    return run('cleanup', async (client) => (await client.query('cleanup', o.cleanup, [o.cleanupBatch])).rowCount ?? 0);
  }

  /**
   * One tick of the timer: batches until one comes back short, within half the interval (at most
   * 10 s), so that a table filling faster than one batch per interval still shrinks, and no tick
   * overlaps the next.
   */
  async function sweep(interval: number): Promise<number> {
    const budgetEnd = performance.now() + Math.min(interval / 2, 10_000);
    let removed = 0;
    for (;;) {
      const batch = await cleanup();
      removed += batch;
      if (batch < o.cleanupBatch || closed || performance.now() >= budgetEnd) return removed;
    }
  }

  function startCleanup(): void {
    const interval = o.cleanupInterval;
    if (interval === false || timer !== undefined || closed) return;
    timer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      sweep(interval)
        .then(
          (removed) => {
            if (removed > 0) logger.debug({ removed }, `idem: removed expired ${o.rows}`);
          },
          (error: unknown) => logger.warn({ err: error }, `idem: removing expired ${o.rows} failed; will retry`),
        )
        .finally(() => (sweeping = false));
    }, interval);
    timer.unref();
  }

  return {
    run,
    migrate,
    cleanup,
    prepare() {
      // Whoever made the table, its expired rows are ours to remove.
      startCleanup();
      if (prepared) return undefined;
      ready ??= migrate().then(
        () => {
          prepared = true;
        },
        (error: unknown) => {
          ready = undefined;
          throw error;
        },
      );
      return ready;
    },
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}
