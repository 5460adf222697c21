/**
 * Pooled connections with a bound on every wait. `pg` waits as long as the server does: a paused
 * (SIGSTOPped) PostgreSQL accepts TCP connections and queries and answers none of them. Each wait
 * here (for a pooled client, for an answer) is raced against `timeoutMs`; a client that timed out
 * or lost its connection is destroyed when it goes back, never handed out again. A client goes
 * back to the pool exactly once, whatever path the caller takes.
 */
import { StoreError } from '@idem/core';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { PostgresTimeoutError } from './errors.js';

/** SQLSTATE classes after which the connection itself is not to be trusted again. */
const BROKEN_CLASSES = new Set(['08', '57', '58', 'XX']);

/** True when `error` says the connection is gone or unusable (not a plain SQL error). */
export function breaksConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof PostgresTimeoutError) return true;
  return typeof code !== 'string' || code.length !== 5 || BROKEN_CLASSES.has(code.slice(0, 2));
}

/** The SQLSTATE of a database error, if any. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 ? code : undefined;
}

/** One pooled client lent to the store. */
export class Lent {
  #released = false;
  /** Set once the connection timed out or failed: it is destroyed on release. */
  broken = false;
  /** Set once the connection itself reported an error or its end: its server session is gone or going. */
  lost = false;
  /** Called when the connection fails while no query of ours runs (e.g. the server restarted). */
  onLost: (() => void) | undefined;
  readonly #onError = (): void => {
    // Without a listener, an 'error' of a checked-out client (pg-pool removes its own) would
    // crash the process; the next query fails anyway, and the client is destroyed on release.
    this.broken = true;
    this.lost = true;
    this.onLost?.();
  };

  constructor(
    readonly client: PoolClient,
    private readonly timeoutMs: number,
  ) {
    client.on('error', this.#onError);
  }

  /** Runs one statement, bounded; failures are `StoreError`s of `operation` that keep the driver's error. */
  query<R extends object = Record<string, unknown>>(
    operation: string,
    text: string,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    if (this.broken) return Promise.reject(new StoreError(operation, new Error('the connection was lost')));
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        this.broken = true;
        reject(new PostgresTimeoutError(operation, this.timeoutMs));
      }, this.timeoutMs);
      this.client.query<R>(text, values).then(
        (result) => {
          if (done) return;
          clearTimeout(timer);
          resolve(result);
        },
        (error: unknown) => {
          if (done) return;
          clearTimeout(timer);
          if (breaksConnection(error)) this.broken = true;
          reject(StoreError.from(operation, error));
        },
      );
    });
  }

  /** Gives the client back to the pool (destroyed when broken). Later calls do nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onLost = undefined;
    // pg-pool destroys a client released with an error instead of keeping it idle.
    this.client.release(this.broken ? new Error('idem: connection timed out or failed') : undefined);
    // Keep a listener: a destroyed connection may still report its end as an error.
    if (!this.broken) this.client.off('error', this.#onError);
  }

  /** Marks the client unusable and gives it back: the pool closes it (and its session with it). */
  destroy(): void {
    this.broken = true;
    this.release();
  }
}

/**
 * Takes a client from `pool` within `timeoutMs`; one that arrives after giving up goes straight back.
 *
 * The callback form, not the promise: pg-pool takes its own 'error' listener off a client as it
 * hands it over, and a promise would leave it without one until the next microtask. A client
 * handed over inside pg's parse of a socket chunk (another caller's query finished and released
 * it) can meet the next message of that same chunk there, such as the FATAL a backend sends when
 * the server goes down: with no listener, that 'error' crashes the process.
 */
export function checkout(pool: Pool, operation: string, timeoutMs: number): Promise<Lent> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new PostgresTimeoutError(operation, timeoutMs));
    }, timeoutMs);
    pool.connect((error, client) => {
      if (error || client === undefined) {
        if (done) return;
        clearTimeout(timer);
        return reject(StoreError.from(operation, error ?? new Error('the pool handed out no client')));
      }
      if (done) return client.release();
      clearTimeout(timer);
      // Lent's listener goes on here, synchronously, before anything else can reach the client.
      resolve(new Lent(client, timeoutMs));
    });
  });
}

/** Runs `work` on a pooled client and gives it back (destroyed when it broke). */
export async function withClient<T>(
  pool: Pool,
  operation: string,
  timeoutMs: number,
  work: (client: Lent) => Promise<T>,
): Promise<T> {
  const client = await checkout(pool, operation, timeoutMs);
  try {
    return await work(client);
  } finally {
    client.release();
  }
}
