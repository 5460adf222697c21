/**
 * One run of the handler under a lease: the lease renewal, the `maxHold` bound, storing or
 * releasing at the end, and what is reported about it. The engine starts it; the adapter ends it
 * with `finish` or `abort`.
 */
import { IdempotencyError } from './errors.js';
import { replayableHeaders } from './headers.js';
import { RETRY_AFTER_SECONDS } from './problem.js';
import type { ResolvedOptions } from './options.js';
import type { Reporter, Routed } from './report.js';
import type { CapturedResponse, ExecuteOutcome, Execution, Lease, OutgoingResponse } from './types.js';

// A transactional store undid the handler's writes: its own answer would claim what did not happen.
const undone = {
  notStored: (): IdempotencyError =>
    new IdempotencyError(
      'response_not_stored',
      'The response could not be stored with its effects (too large, or not cacheable), so they were undone; nothing was kept.',
    ),
  unknown: (): IdempotencyError =>
    new IdempotencyError(
      'store_unavailable',
      'The idempotency store did not confirm this request. Retry with the same key: it replays if the request was kept and runs again if not.',
      { retryAfter: RETRY_AFTER_SECONDS },
    ),
};

/** A store call that throws synchronously rejects instead, so no timer callback can crash the process. */
function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

/**
 * Starts an execution of `lease` for `request` (read for the route of its events). One timer at a
 * time per execution: it renews the lease every lockTtl/3 and, at `maxHold`, gives the key up
 * (docs/design.md, "A lease cannot be held forever").
 */
export function startExecution(
  o: ResolvedOptions,
  report: Reporter,
  lease: Lease,
  fingerprint: string | null,
  request: Routed,
): Execution {
  const { store } = o;
  const { events, logger } = report;
  const startedAt = Date.now();
  // A monotonic clock: a wall-clock step must not lengthen or cut the hold.
  const holdUntil = performance.now() + o.maxHold;
  const renewEvery = Math.max(1, Math.floor(o.lockTtl / 3));
  let settled = false;
  /** The key was given up (maxHold or a lost lease) while the handler still ran. */
  let given: 'max_hold' | 'lost' | undefined;
  let timer = schedule();

  function schedule(): NodeJS.Timeout {
    const next = setTimeout(tick, Math.max(1, Math.min(renewEvery, holdUntil - performance.now())));
    next.unref();
    return next;
  }

  function tick(): void {
    if (settled || given !== undefined) return;
    if (performance.now() >= holdUntil) return void expire();
    timer = schedule();
    const calledAt = report.callStart();
    call(() => store.extend(lease, o.lockTtl)).then(
      (kept) => {
        report.callEnd('extend', calledAt, true, lease.key, request);
        if (kept || settled || given !== undefined) return;
        given = 'lost';
        // Nothing left to keep: renewing a lost lease would only spend store round trips.
        clearTimeout(timer);
        leaseLost();
        // Whatever the store still holds for us goes: a no-op where the lease simply lapsed, the
        // rollback of a transactional store's open transaction.
        void quietRelease('after the lease was lost');
      },
      (error: unknown) => {
        report.callEnd('extend', calledAt, false, lease.key, request);
        logger.warn({ err: error, key: lease.key }, 'idempotency lease renewal failed; will retry');
      },
    );
  }

  function leaseLost(): void {
    const heldMs = Date.now() - startedAt;
    events.emit('leaseLost', { key: lease.key, route: request.route, heldMs });
    logger.warn(
      { key: lease.key, heldMs },
      'idempotency lease lost while the handler ran; its result will not be stored',
    );
  }

  /** The handler held the key past maxHold: give it up, so that the key is not stuck behind it. */
  async function expire(): Promise<void> {
    if (!settle()) return;
    given = 'max_hold';
    logger.warn(
      { key: lease.key, maxHoldMs: o.maxHold },
      'idempotent handler ran past maxHold; releasing its key, a late result will not be stored',
    );
    await release(undefined, 'max_hold');
  }

  function settle(): boolean {
    if (settled) return false;
    settled = true;
    execution.settled = true;
    clearTimeout(timer);
    return true;
  }

  function done(status: number | undefined, outcome: ExecuteOutcome): void {
    const durationMs = Date.now() - startedAt;
    if (events.hasListeners('execute')) {
      events.emit('execute', { key: lease.key, route: request.route, status, outcome, durationMs });
    }
    if (report.debugging()) logger.debug({ key: lease.key, status, outcome, durationMs }, 'idempotent execution');
  }

  function storeFailed(operation: 'complete' | 'release', error: unknown, calledAt: number, message: string): void {
    report.storeError(operation, error, {
      startedAt: calledAt,
      failOpen: false,
      key: lease.key,
      route: request.route,
      message,
    });
  }

  function quietRelease(why: string): Promise<void> {
    const calledAt = report.callStart();
    return call(() => store.release(lease)).then(
      () => report.callEnd('release', calledAt, true, lease.key, request),
      (error: unknown) => {
        report.callEnd('release', calledAt, false, lease.key, request);
        logger.warn(
          { err: error, key: lease.key },
          `idempotency release ${why} failed; the key unlocks when its lease expires`,
        );
      },
    );
  }

  async function release(status: number | undefined, outcome: ExecuteOutcome): Promise<void> {
    const calledAt = Date.now();
    const timed = report.callStart();
    try {
      await store.release(lease);
      report.callEnd('release', timed, true, lease.key, request);
      done(status, outcome);
    } catch (error) {
      report.callEnd('release', timed, false, lease.key, request);
      // The lease lapses on its own after lockTtl; the handler's outcome stands.
      storeFailed('release', error, calledAt, 'idempotency release failed; the key unlocks when its lease expires');
      done(status, 'store_error');
    }
  }

  // What a transactional store's client must get instead of a success whose writes were undone.
  const instead = (replacement: () => IdempotencyError, status: number): OutgoingResponse | undefined =>
    store.transactional && status < 400 ? o.problem(replacement()) : undefined;

  async function complete(captured: CapturedResponse): Promise<OutgoingResponse | undefined> {
    const { status, body } = captured;
    // A status a replay could not send (Node takes 100–999) is never kept, whatever `cacheable` says.
    if (!o.cacheable(status) || status < 100 || status > 599) {
      await release(status, 'not_cacheable');
      return instead(undone.notStored, status);
    }
    if (body === null || body.byteLength > o.maxBodyBytes) {
      await release(status, 'too_large');
      return instead(undone.notStored, status);
    }
    const response = { status, headers: replayableHeaders(captured.headers), body };
    const calledAt = Date.now();
    const timed = report.callStart();
    try {
      const kept = await store.complete(lease, response, { fingerprint, ttl: o.ttl });
      report.callEnd('complete', timed, true, lease.key, request);
      if (kept) {
        done(status, 'stored');
        return undefined;
      }
      logger.warn(
        { key: lease.key, status },
        'idempotency lease was lost before the response was stored; not storing it (fenced)',
      );
      if (given !== 'lost') leaseLost();
      done(status, 'fenced');
      return instead(undone.unknown, status);
    } catch (error) {
      report.callEnd('complete', timed, false, lease.key, request);
      // A timed-out write may still land when the store answers again: then the response is
      // kept and replayed. Only when it did not does a retry run the handler again.
      storeFailed(
        'complete',
        error,
        calledAt,
        'idempotency store did not confirm keeping the response; if it was not kept, a retry runs the handler again',
      );
      await quietRelease('after a failed complete'); // a no-op if the write landed: the lease is gone then
      done(status, 'store_error');
      return instead(undone.unknown, status);
    }
  }

  // A plain data property, set in settle(): an object literal with a getter is built on V8's slow
  // path, and measured as ~25 µs more GC per first execution (bench/FINDINGS.md, M).
  const execution: { -readonly [K in keyof Execution]: Execution[K] } = {
    key: lease.key,
    context: lease.context,
    settled: false,
    finish(captured) {
      if (!settle()) {
        // Too late: the key was given up past maxHold. A transactional store rolled the writes back.
        return Promise.resolve(given === 'max_hold' ? instead(undone.unknown, captured.status) : undefined);
      }
      return complete(captured).catch((error: unknown) => {
        // Only an observer can throw here (a logger, an event listener is already guarded).
        try {
          logger.error({ err: error, key: lease.key }, 'idempotency finish failed');
        } catch {
          // Nothing left to tell it to.
        }
        return instead(undone.unknown, captured.status);
      });
    },
    abort(reason) {
      if (!settle()) return Promise.resolve();
      if (report.debugging())
        logger.debug({ key: lease.key, err: reason }, 'idempotent handler failed; releasing the key');
      return release(undefined, 'failed').catch(() => {});
    },
  };
  return execution;
}

// The execution rides on the framework's request under a global symbol, so a store built against
// another installed copy of core finds it too. A property, not a WeakMap: a WeakMap entry per
// request kept every execution alive until a major GC processed the table, which measured as
// ~30 µs of extra GC per first execution (bench/FINDINGS.md, M).
const EXECUTION = Symbol.for('@idem/execution');

/**
 * Adapters: makes `execution` reachable from the framework's request: on the object a handler
 * holds (Koa `ctx`), or on the response that a request object links to as `res` (Express).
 */
export function attachExecution(native: object, execution: Execution): void {
  (native as Record<symbol, unknown>)[EXECUTION] = execution;
}

/**
 * The execution running for this request (Express `req` or `res`, Koa `ctx`), or undefined outside
 * an idempotent execution. Stores use it for their context, e.g. `transactionOf(req)`.
 */
export function executionOf(native: unknown): Execution | undefined {
  if (typeof native !== 'object' || native === null) return undefined;
  const own = (native as Record<symbol, unknown>)[EXECUTION];
  if (own !== undefined) return own as Execution;
  // Express keeps it on the response (packages/express/src/index.ts), which req links to.
  const res = (native as { res?: unknown }).res;
  if (typeof res !== 'object' || res === null) return undefined;
  const linked = (res as Record<symbol, unknown>)[EXECUTION];
  return linked === undefined ? undefined : (linked as Execution);
}
