/**
 * The handler's side of transactional mode: the client of its key's transaction, reachable from
 * the request through the execution the adapter attached (`executionOf`). The handler gets a
 * guarded view of the pooled client: its queries run in the transaction while it is open and are
 * refused after (so a late query can never autocommit on a client another request now uses), and
 * `release()` is the store's alone.
 */
import { executionOf } from '@idem/core';
import type { PoolClient } from 'pg';

/** The client of a transactional execution, as handlers see it: `query` and the rest of `pg`'s client, no `release`. */
export type TransactionClient = Omit<PoolClient, 'release'>;

interface State {
  open: boolean;
}

// One registry for every installed copy of this package (ESM and CommonJS builds alike).
const REGISTRY = Symbol.for('@idem/postgres/transactions');
const registry = ((globalThis as Record<symbol, unknown>)[REGISTRY] ??= new WeakMap()) as WeakMap<object, State>;

/** A guarded view of `client` for one execution, and the switch that closes it. */
export function openTransaction(client: PoolClient): { view: TransactionClient; close(): void } {
  const state: State = { open: true };
  const refused = (): Promise<never> =>
    Promise.reject(
      new Error(
        'idem: this idempotent transaction is over (committed or rolled back); query it only while the handler runs',
      ),
    );
  const view = new Proxy(client, {
    get(target, property) {
      if (property === 'release') return undefined;
      const value: unknown = Reflect.get(target, property, target);
      if (property === 'query') {
        const query = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => (state.open ? query.apply(target, args) : refused());
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as TransactionClient;
  registry.set(view, state);
  return { view, close: () => void (state.open = false) };
}

/**
 * The client of the transaction that idem opened for this request (Express `req` or Koa `ctx`),
 * with `postgresStore({ transactional: true })`; undefined outside an idempotent execution, with
 * another store, and once the transaction is over. Writes made through it are committed together
 * with the stored response, or rolled back with it.
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
