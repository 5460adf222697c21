/**
 * One run of the handler under a lease: the lease renewal, the `maxHold` bound, storing or
 * releasing at the end, and what is reported about it. The engine starts it; the adapter ends it
 * with `finish` or `abort`.
 */
import { IdempotencyError } from './errors.js';
import { replayableHeaders } from './headers.js';
import { problemResponse } from './problem.js';
import type { ResolvedOptions } from './options.js';
import type { Reporter } from './report.js';
import type { CapturedResponse, ExecuteOutcome, Execution, Lease, OutgoingResponse } from './types.js';

// A transactional store undid the handler's writes: its own answer would claim what did not happen.
const undone = {
  notStored: (): OutgoingResponse => problemResponse(new IdempotencyError('response_not_stored',
    'The response could not be stored with its effects (too large, or not cacheable), so they were undone; nothing was kept.')),
  unavailable: (): OutgoingResponse => problemResponse(new IdempotencyError('store_unavailable',
    'The idempotency store could not commit this request; nothing was kept. Retry shortly.', { retryAfter: 1 })),
};

/**
 * Starts an execution of `lease`. One timer at a time per execution: it renews the lease every
 * lockTtl/3 and, at `maxHold`, gives the key up (docs/design.md, "A lease cannot be held forever").
 */
export function startExecution(o: ResolvedOptions, report: Reporter, lease: Lease, fingerprint: string | null, route: () => string | undefined): Execution {
  const { store } = o;
  const { events, logger } = report;
  const startedAt = Date.now();
  const holdUntil = startedAt + o.maxHold;
  const renewEvery = Math.max(1, Math.floor(o.lockTtl / 3));
  let settled = false;
  let lost = false;
  let timer = schedule();

  function schedule(): NodeJS.Timeout {
    const next = setTimeout(tick, Math.max(1, Math.min(renewEvery, holdUntil - Date.now())));
    next.unref();
    return next;
  }

  function tick(): void {
    if (settled) return;
    if (Date.now() >= holdUntil) return void expire();
    store.extend(lease, o.lockTtl).then(
      (kept) => {
        if (kept || settled || lost) return;
        lost = true;
        // Nothing left to keep: renewing a lost lease would only spend store round trips.
        clearTimeout(timer);
        leaseLost();
      },
      (error: unknown) => logger.warn({ err: error, key: lease.key }, 'idempotency lease renewal failed; will retry'),
    );
    if (!lost) timer = schedule();
  }

  function leaseLost(): void {
    const heldMs = Date.now() - startedAt;
    events.emit('leaseLost', { key: lease.key, route: route(), heldMs });
    logger.warn({ key: lease.key, heldMs }, 'idempotency lease lost while the handler ran; its result will not be stored');
  }

  /** The handler held the key past maxHold: give it up, so that the key is not stuck behind it. */
  async function expire(): Promise<void> {
    if (!settle()) return;
    logger.warn({ key: lease.key, maxHoldMs: o.maxHold }, 'idempotent handler ran past maxHold; releasing its key, a late result will not be stored');
    await release(undefined, 'max_hold');
  }

  function settle(): boolean {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    return true;
  }

  function done(status: number | undefined, outcome: ExecuteOutcome): void {
    const durationMs = Date.now() - startedAt;
    if (events.hasListeners('execute')) events.emit('execute', { key: lease.key, route: route(), status, outcome, durationMs });
    if (report.debugging()) logger.debug({ key: lease.key, status, outcome, durationMs }, 'idempotent execution');
  }

  function storeFailed(operation: 'complete' | 'release', error: unknown, message: string): void {
    report.storeError(operation, error, { startedAt, failOpen: false, key: lease.key, route: route(), message });
  }

  async function release(status: number | undefined, outcome: ExecuteOutcome): Promise<void> {
    try {
      await store.release(lease);
      done(status, outcome);
    } catch (error) {
      // The lease lapses on its own after lockTtl; the handler's outcome stands.
      storeFailed('release', error, 'idempotency release failed; the key unlocks when its lease expires');
      done(status, 'store_error');
    }
  }

  async function complete(captured: CapturedResponse): Promise<OutgoingResponse | undefined> {
    const { status, body } = captured;
    if (!o.cacheable(status)) {
      await release(status, 'not_cacheable');
      // A success that is not kept had its effects undone: it must not reach the client as one.
      return store.transactional && status < 400 ? undone.notStored() : undefined;
    }
    if (body === null || body.byteLength > o.maxBodyBytes) {
      await release(status, 'too_large');
      return store.transactional ? undone.notStored() : undefined;
    }
    const response = { status, headers: replayableHeaders(captured.headers), body };
    try {
      if (await store.complete(lease, response, { fingerprint, ttl: o.ttl })) {
        done(status, 'stored');
        return undefined;
      }
      logger.warn({ key: lease.key, status }, 'idempotency lease was lost before the response was stored; not storing it (fenced)');
      if (!lost) leaseLost();
      done(status, 'fenced');
      return store.transactional ? undone.unavailable() : undefined;
    } catch (error) {
      // A timed-out write may still land when the store answers again: then the response is
      // kept and replayed. Only when it did not does a retry run the handler again.
      storeFailed('complete', error, 'idempotency store did not confirm keeping the response; if it was not kept, a retry runs the handler again');
      await store.release(lease).catch(() => {}); // a no-op if the write landed: the lease is gone then
      done(status, 'store_error');
      return store.transactional ? undone.unavailable() : undefined;
    }
  }

  return {
    key: lease.key,
    context: lease.context,
    finish(captured) {
      return settle() ? complete(captured) : Promise.resolve(undefined);
    },
    abort(reason) {
      if (!settle()) return Promise.resolve();
      if (report.debugging()) logger.debug({ key: lease.key, err: reason }, 'idempotent handler failed; releasing the key');
      return release(undefined, 'failed');
    },
  };
}

// One registry for every installed copy of core: a store's `transactionOf(req)` finds the
// execution that an adapter built with another copy attached.
const REGISTRY = Symbol.for('@idem/executions');
const executions: WeakMap<object, Execution> = ((globalThis as Record<symbol, unknown>)[REGISTRY] ??= new WeakMap()) as WeakMap<object, Execution>;

/** Adapters: makes `execution` reachable from the framework's request (Express `req`, Koa `ctx`). */
export function attachExecution(native: object, execution: Execution): void {
  executions.set(native, execution);
}

/**
 * The execution running for this request (Express `req` or Koa `ctx`), or undefined outside an
 * idempotent execution. Stores use it for their context, e.g. `transactionOf(req)`.
 */
export function executionOf(native: unknown): Execution | undefined {
  return typeof native === 'object' && native !== null ? executions.get(native) : undefined;
}
