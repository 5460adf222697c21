/**
 * The handler's side of transactional mode: the client of its key's transaction, reachable from
 * the request through the execution the adapter attached (`executionOf`). The handler gets a
 * guarded view of the pooled client: its queries run in the transaction while it is open and are
 * refused after (so a late query can never autocommit on a client another request now uses), and
 * `release()` is the store's alone.
 */
import { executionOf } from '@idem/core';
import type { PoolClient } from 'pg';
import { TransactionControlError } from './errors.js';

/** The client of a transactional execution, as handlers see it: `query` and the rest of `pg`'s client, no `release`. */
export type TransactionClient = Omit<PoolClient, 'release'>;

interface State {
  open: boolean;
  /** Handler queries sent and not yet answered (a callback or streaming query counts until the end). */
  running: number;
}

// The leading keyword of a statement that would end (or nest a new) transaction: the handler's
// COMMIT would keep its writes without the stored response, an ORM's BEGIN would be a no-op with
// a COMMIT after it. SAVEPOINT, RELEASE [SAVEPOINT] and ROLLBACK TO [SAVEPOINT] nest safely, and
// SET TRANSACTION (the isolation level) is allowed. Leading comments and blanks are skipped.
const CONTROL =
  /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(begin|start|commit|end|abort|prepare\s+transaction|rollback(?!\s+(?:work\s+|transaction\s+)?to\b))\b/i;

/** The transaction-control keyword `text` starts with, if any. */
export function transactionControl(text: string): string | undefined {
  return CONTROL.exec(text)?.[1]?.replace(/\s+/g, ' ').toUpperCase();
}

const textOf = (config: unknown): string | undefined => {
  if (typeof config === 'string') return config;
  const text = (config as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : undefined;
};

/** Whether `value` is a promise-like (what `query` returns without a callback). */
const thenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

// One registry for every installed copy of this package (ESM and CommonJS builds alike).
const REGISTRY = Symbol.for('@idem/postgres/transactions');
const registry = ((globalThis as Record<symbol, unknown>)[REGISTRY] ??= new WeakMap()) as WeakMap<object, State>;

/**
 * A guarded view of `client` for one execution, the switch that closes it, and whether a handler
 * query is still running on it (then a ROLLBACK would wait behind it).
 */
export function openTransaction(client: PoolClient): { view: TransactionClient; close(): void; busy(): boolean } {
  const state: State = { open: true, running: 0 };
  const refused = (): Promise<never> =>
    Promise.reject(
      new Error(
        'idem: this idempotent transaction is over (committed or rolled back); query it only while the handler runs',
      ),
    );
  const settled = (): void => void state.running--;
  function guardedQuery(query: (...args: unknown[]) => unknown, target: PoolClient, args: unknown[]): unknown {
    if (!state.open) return refused();
    const keyword = transactionControl(textOf(args[0]) ?? '');
    if (keyword !== undefined) return Promise.reject(new TransactionControlError(keyword));
    state.running++;
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      const callback = last as (...results: unknown[]) => unknown;
      args[args.length - 1] = (...results: unknown[]) => (settled(), callback(...results));
      return query.apply(target, args);
    }
    const result = query.apply(target, args);
    if (thenable(result)) result.then(settled, settled);
    else {
      // A Submittable (a cursor, a stream): it ends with 'end' or 'error' where it has them.
      const events = result as { once?: (event: string, listener: () => void) => void } | null;
      if (typeof events?.once === 'function') {
        let once = false;
        const end = (): void => void (once || ((once = true), settled()));
        events.once('end', end);
        events.once('error', end);
      }
    }
    return result;
  }
  const view = new Proxy(client, {
    get(target, property) {
      if (property === 'release') return undefined;
      const value: unknown = Reflect.get(target, property, target);
      if (property === 'query') {
        const query = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => guardedQuery(query, target, args);
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as TransactionClient;
  registry.set(view, state);
  return { view, close: () => void (state.open = false), busy: () => state.running > 0 };
}

/**
 * The client of the transaction that idem opened for this request (Express `req` or Koa `ctx`),
 * with `postgresStore({ transactional: true })`; undefined outside an idempotent execution, with
 * another store, and once the transaction is over. Writes made through it are committed together
 * with the stored response, or rolled back with it. Statements that end the transaction (`BEGIN`,
 * `COMMIT`, `ROLLBACK`, `END`, `ABORT`, `START TRANSACTION`, `PREPARE TRANSACTION`) are refused
 * with a `TransactionControlError`, so an ORM's `.transaction()` helper must not be used on it;
 * `SAVEPOINT`, `RELEASE SAVEPOINT` and `ROLLBACK TO SAVEPOINT` nest safely.
 *
 * @example
 * app.post('/payments', async (req, res) => {
 *   const tx = transactionOf(req);
 *   if (tx === undefined) throw new Error('route is not idempotent');
 *   await tx.query('INSERT INTO payments (id, amount) VALUES ($1, $2)', [id, req.body.amount]);
 *   res.status(201).json({ id });
 * });
 */
export function transactionOf(reqOrCtx: unknown): TransactionClient | undefined {
  const context = executionOf(reqOrCtx)?.context;
  if (typeof context !== 'object' || context === null) return undefined;
  return registry.get(context)?.open ? (context as TransactionClient) : undefined;
}
