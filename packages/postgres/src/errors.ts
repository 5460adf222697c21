/**
 * Errors of the PostgreSQL store. Each is a core `StoreError`, so the engine maps it to 503 (or an
 * unprotected run with `onStoreError: 'fail-open'`) and logs which operation failed; `code` is
 * stable for alerting. Errors of the `pg` driver itself are wrapped once in a plain `StoreError`
 * that keeps them as `cause`.
 */
import { StoreError } from '@idem/core';
import { brand } from '@idem/core/adapter';

/**
 * PostgreSQL did not answer within `queryTimeout` (server paused, overloaded or unreachable, or no
 * pooled connection became free in time). The connection that waited is destroyed, never reused.
 *
 * @example
 * mw.events.on('storeError', ({ error }) => {
 *   if (error instanceof PostgresTimeoutError) metrics.postgresTimeouts.inc();
 * });
 */
export class PostgresTimeoutError extends StoreError {
  readonly code = 'postgres_timeout';
  readonly timeoutMs: number;

  constructor(operation: string, timeoutMs: number) {
    super(operation, new Error(`no answer from PostgreSQL within ${timeoutMs} ms`));
    this.name = 'PostgresTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The transaction of a transactional execution could not be committed (the database refused the
 * COMMIT, e.g. a deferred constraint, or rolled it back): the handler's writes were undone and
 * nothing was kept, so the engine answers 503 and a retry runs again.
 *
 * @example
 * if (error instanceof TransactionFailedError) log.warn({ err: error.cause }, 'idempotent transaction rolled back');
 */
export class TransactionFailedError extends StoreError {
  readonly code = 'transaction_failed';

  constructor(operation: string, cause: unknown) {
    super(operation, cause);
    this.name = 'TransactionFailedError';
  }
}

/**
 * A handler sent a transaction-control statement (`COMMIT`, `ROLLBACK`, `BEGIN`, …) through
 * `transactionOf(req)`: refused, because committing early would keep its writes without the stored
 * response (and a retry would write them again). Nest with `SAVEPOINT` instead; an ORM's
 * `.transaction()` helper must not run on this client (or must use savepoints).
 *
 * @example
 * await tx.query('SAVEPOINT step'); // fine; tx.query('COMMIT') rejects with TransactionControlError
 */
export class TransactionControlError extends Error {
  readonly code = 'transaction_control_refused';
  /** The refused statement's leading keyword, e.g. `COMMIT`. */
  readonly statement: string;

  constructor(statement: string) {
    super(
      `idem: ${statement} refused on an idempotent transaction: idem commits it with the stored response ` +
        '(use SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT to nest)',
    );
    this.name = 'TransactionControlError';
    this.statement = statement;
  }
}

brand(PostgresTimeoutError, 'PostgresTimeoutError');
brand(TransactionFailedError, 'TransactionFailedError');
brand(TransactionControlError, 'TransactionControlError');
