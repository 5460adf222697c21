/**
 * Transactional mode's executions: a pooled client per claimed key, holding a transaction that the
 * handler writes in and that `complete` commits together with the stored response (or `release`
 * rolls back). Each client goes back to the pool exactly once: after COMMIT, after ROLLBACK, or
 * destroyed when its connection failed or timed out (PostgreSQL then rolls the transaction back
 * itself and drops the session's advisory lock, which is what frees the key at once). A client
 * destroyed while its backend may still be busy (a handler query still running, a statement that
 * timed out) has its backend terminated from another pooled connection first: closing the socket
 * alone leaves the backend running its query, holding the key's lock and its row locks.
 *
 * The lease is the holder's session lock, never a row the holder renews: `extend` only checks that
 * the transaction is still open on a live connection, and a watchdog here rolls it back when no
 * `extend` came for `lockTtl` (the lease lapsed). Renewing the marker from another connection
 * would be a concurrent update of the row the transaction updates at the end, which fails with
 * 40001 under REPEATABLE READ or SERIALIZABLE.
 */
import type { Logger, StoredResponse } from '@idem/core';
import { StoreError } from '@idem/core';
import type { Pool } from 'pg';
import { sqlState, withClient, type Lent } from './connection.js';
import { TransactionFailedError } from './errors.js';
import { bodyBytes } from './record.js';
import type { Statements } from './sql.js';
import { openTransaction, type TransactionClient } from './transaction.js';

/** One running execution: its client, its marker's token and advisory lock, the handler's view. */
export interface Held {
  readonly key: string;
  readonly token: string;
  readonly lockId: string;
  readonly client: Lent;
  readonly view: TransactionClient;
  /** True until the transaction ends (committed, rolled back, or its connection lost). */
  open: boolean;
  closeView(): void;
  /** Whether a handler query still runs on the client. */
  busy(): boolean;
  /** performance.now() past which the lease has lapsed unless extended. */
  deadline: number;
  watchdog: NodeJS.Timeout | undefined;
}

/** The executions of one store, by lease token. */
export class Executions {
  readonly #held = new Map<string, Held>();

  constructor(
    private readonly sql: Statements,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly pool: Pool,
    private readonly timeoutMs: number,
  ) {}

  /** Opens the transaction on `client`, whose claim statement just wrote our marker and took `lockId`. */
  async begin(key: string, token: string, lockId: string, client: Lent, lockTtl: number): Promise<Held> {
    // No isolation level here: the handler may raise it with SET TRANSACTION as its first statement.
    await client.query('claim', 'BEGIN');
    const { view, close, busy } = openTransaction(client.client);
    const held: Held = {
      key,
      token,
      lockId,
      client,
      view,
      open: true,
      closeView: close,
      busy,
      deadline: performance.now() + lockTtl,
      watchdog: undefined,
    };
    // A connection that dies while the handler runs took the transaction with it: the lease is lost.
    client.onLost = () => {
      held.open = false;
      close();
    };
    this.#held.set(token, held);
    this.#watch(held);
    return held;
  }

  /** The lease of `token` lasts `lockTtl` more; false when its transaction is over (lease lost). */
  extend(token: string, lockTtl: number): boolean {
    const held = this.open(token);
    if (held === undefined) return false;
    held.deadline = Math.max(held.deadline, performance.now() + lockTtl);
    return true;
  }

  /** Rolls the execution back once its lease lapsed: nobody extended it for lockTtl. */
  #watch(held: Held): void {
    const wait = Math.max(1, held.deadline - performance.now());
    held.watchdog = setTimeout(() => {
      held.watchdog = undefined;
      if (this.#held.get(held.token) !== held) return;
      if (performance.now() < held.deadline) return this.#watch(held);
      this.logger.warn({ key: held.key }, 'idem: transactional lease lapsed (not extended); rolling back');
      this.rollback(held.token).catch(() => {});
    }, wait);
    held.watchdog.unref();
  }

  /** The open execution of `token`, if this store holds it. */
  open(token: string): Held | undefined {
    const held = this.#held.get(token);
    return held?.open && !held.client.broken ? held : undefined;
  }

  /** True when `token` is one of ours (open or not yet given back). */
  has(token: string): boolean {
    return this.#held.has(token);
  }

  /**
   * Writes the completed record into the transaction and commits. True when committed; false,
   * rolled back, when the marker no longer carries our token (lease lost); throws when the commit
   * failed or its outcome is unknown (a timeout), with everything rolled back or left to roll back.
   */
  async commit(held: Held, response: StoredResponse, fingerprint: string | null, ttl: number): Promise<boolean> {
    this.#end(held);
    const { client } = held;
    try {
      const written = await client.query('complete', this.sql.complete, [
        held.key,
        held.token,
        response.status,
        JSON.stringify(response.headers),
        bodyBytes(response),
        fingerprint,
        ttl,
        this.channel,
      ]);
      if (written.rowCount !== 1) {
        await this.#undo(held, 'complete');
        return false;
      }
      const committed = await client.query('complete', 'COMMIT');
      // COMMIT of a transaction that already failed answers ROLLBACK, without an error.
      if (committed.command !== 'COMMIT') {
        await this.#free(held, 'complete');
        throw new TransactionFailedError(
          'complete',
          new Error('PostgreSQL rolled the transaction back instead of committing it'),
        );
      }
    } catch (error) {
      if (error instanceof TransactionFailedError) throw error;
      await this.#undo(held, 'complete').catch(() => {});
      throw client.broken ? error : new TransactionFailedError('complete', (error as StoreError).cause ?? error);
    }
    try {
      await client.query('complete', 'SELECT pg_advisory_unlock($1::bigint)', [held.lockId]);
    } catch {
      await this.#kill(held); // the session ends, and its lock with it
    }
    client.release();
    return true;
  }

  /** Rolls back and drops the marker. No-op for a token that is not ours (any more). */
  async rollback(token: string): Promise<void> {
    const held = this.#held.get(token);
    if (held === undefined) return;
    this.#end(held);
    await this.#undo(held, 'release');
  }

  /** Rolls back every open execution (the store is closing); their clients go back to the pool. */
  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.#held.values()].map(async (held) => {
        this.#end(held);
        await this.#undo(held, 'close').catch(() => {});
      }),
    );
  }

  #end(held: Held): void {
    clearTimeout(held.watchdog);
    held.open = false;
    held.closeView();
    held.client.onLost = undefined;
    this.#held.delete(held.token);
  }

  /**
   * ROLLBACK, then drop the marker and our lock; on any failure the connection is destroyed
   * instead. While a handler query still runs, a ROLLBACK would only queue behind it: the backend
   * is terminated at once.
   */
  async #undo(held: Held, operation: string): Promise<void> {
    const { client } = held;
    if (!client.broken && held.busy()) {
      this.logger.warn({ key: held.key }, 'idem: a handler query still runs; terminating its connection');
      await this.#kill(held);
      return;
    }
    try {
      if (!client.broken) await client.query(operation, 'ROLLBACK');
    } catch (error) {
      this.logger.warn(
        { err: error, key: held.key },
        'idem: ROLLBACK failed; closing the connection, which rolls back',
      );
      await this.#kill(held);
      throw error;
    }
    if (client.broken) return this.#kill(held);
    await this.#free(held, operation);
  }

  /**
   * Ends the client's session for good: terminates its backend from another pooled connection
   * (bounded by queryTimeout; waiting for it to exit, so that its locks are gone when this
   * returns), then destroys the client. Closing the socket alone would leave a busy backend
   * running, holding the key's advisory lock and its row locks.
   */
  async #kill(held: Held): Promise<void> {
    const { client } = held;
    const pid = (client.client as unknown as { processID?: unknown }).processID;
    if (typeof pid === 'number' && !client.lost) {
      const waitMs = Math.max(1, Math.floor(this.timeoutMs / 2));
      await withClient(this.pool, 'terminate', this.timeoutMs, async (other) => {
        try {
          await other.query('terminate', 'SELECT pg_terminate_backend($1, $2)', [pid, waitMs]);
        } catch (error) {
          // PostgreSQL before 14 has no timeout argument: terminate without waiting.
          if (sqlState((error as StoreError).cause) !== '42883') throw error;
          await other.query('terminate', 'SELECT pg_terminate_backend($1)', [pid]);
        }
      }).catch((error: unknown) => {
        this.logger.warn({ err: error, key: held.key }, 'idem: terminating a busy connection failed');
      });
    }
    client.destroy();
  }

  /** After the transaction ended: drop our marker and our session lock, give the client back. */
  async #free(held: Held, operation: string): Promise<void> {
    const { client } = held;
    try {
      await client.query(operation, this.sql.release, [held.key, held.token, this.channel, held.lockId]);
    } catch (error) {
      // A marker whose session is gone counts as absent: ending the session frees the key too.
      await this.#kill(held);
      throw error;
    } finally {
      client.release();
    }
  }
}
