/**
 * Transactional mode's executions: a pooled client per claimed key, holding a transaction that the
 * handler writes in and that `complete` commits together with the stored response (or `release`
 * rolls back). Each client goes back to the pool exactly once: after COMMIT, after ROLLBACK, or
 * destroyed when its connection failed or timed out (PostgreSQL then rolls the transaction back
 * itself and drops the session's advisory lock, which is what frees the key at once).
 */
import type { Logger, StoredResponse } from '@idem/core';
import { StoreError } from '@idem/core';
import type { Lent } from './connection.js';
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
}

/** The executions of one store, by lease token. */
export class Executions {
  readonly #held = new Map<string, Held>();

  constructor(
    private readonly sql: Statements,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {}

  /** Opens the transaction on `client`, whose claim statement just wrote our marker and took `lockId`. */
  async begin(key: string, token: string, lockId: string, client: Lent): Promise<Held> {
    await client.query('claim', 'BEGIN');
    const { view, close } = openTransaction(client.client);
    const held: Held = { key, token, lockId, client, view, open: true, closeView: close };
    // A connection that dies while the handler runs took the transaction with it: the lease is lost.
    client.onLost = () => {
      held.open = false;
      close();
    };
    this.#held.set(token, held);
    return held;
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
      client.destroy(); // the session ends, and its lock with it
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
    held.open = false;
    held.closeView();
    held.client.onLost = undefined;
    this.#held.delete(held.token);
  }

  /** ROLLBACK, then drop the marker and our lock; on any failure the connection is destroyed instead. */
  async #undo(held: Held, operation: string): Promise<void> {
    const { client } = held;
    try {
      if (!client.broken) await client.query(operation, 'ROLLBACK');
    } catch (error) {
      this.logger.warn(
        { err: error, key: held.key },
        'idem: ROLLBACK failed; closing the connection, which rolls back',
      );
      client.destroy();
      throw error;
    }
    await this.#free(held, operation);
  }

  /** After the transaction ended: drop our marker and our session lock, give the client back. */
  async #free(held: Held, operation: string): Promise<void> {
    const { client } = held;
    try {
      if (!client.broken)
        await client.query(operation, this.sql.release, [held.key, held.token, this.channel, held.lockId]);
    } catch (error) {
      // A marker whose session is gone counts as absent: destroying the connection frees the key too.
      client.destroy();
      throw error;
    } finally {
      client.release();
    }
  }
}
