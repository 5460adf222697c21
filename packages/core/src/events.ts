import { EventEmitter } from 'node:events';
import type { StoreError } from './errors.js';
import type { ExecuteOutcome } from './types.js';

/**
 * Payloads of the events an idempotency middleware emits. Times are in milliseconds. `key` is the
 * stored (hashed) key, never the client's; `route` is the route pattern when the framework knows
 * it (`/orders/:id`), a bounded label for metrics, never the raw path.
 */
export interface IdempotencyEventMap {
  /** A completed record was replayed. `ageMs`: how old the stored response is. */
  replay: { key: string; route: string | undefined; status: number; ageMs: number; durationMs: number };
  /** The handler ran. `outcome` says what became of its response. */
  execute: {
    key: string;
    route: string | undefined;
    status: number | undefined;
    outcome: ExecuteOutcome;
    durationMs: number;
  };
  /** A duplicate was answered 409 because the key was in flight (after `waitedMs` of waiting). */
  conflict: { key: string; route: string | undefined; waitedMs: number };
  /** The key was reused with a different request: 422. */
  mismatch: { key: string; route: string | undefined };
  /** The store failed; `failOpen` tells whether the request ran unprotected. `error.cause` is the store's own. */
  storeError: {
    operation: string;
    error: StoreError;
    failOpen: boolean;
    durationMs: number;
    key: string | undefined;
    route: string | undefined;
  };
  /** Our lease lapsed or was taken while the handler ran; its result will not be stored. */
  leaseLost: { key: string; route: string | undefined; heldMs: number };
  /** The store returned a record that cannot be replayed (corrupt, tampered, another format): answered 500. */
  invalidRecord: { key: string; route: string | undefined; reason: string };
  /**
   * The request was answered 400 or 500 before any store call: no key (`key_missing`), a
   * malformed one (`key_invalid`), or no parsed body to fingerprint (`body_not_parsed`).
   */
  rejected: { route: string | undefined; code: 'key_missing' | 'key_invalid' | 'body_not_parsed' };
  /** A duplicate started waiting for the key's holder (`concurrent: 'wait'`); once per request. */
  wait: { key: string; route: string | undefined };
  /**
   * One store call ended, well or not. `startTime` is epoch milliseconds (fractional) and
   * `durationMs` is measured on the monotonic clock, so sub-millisecond calls are seen. Built only
   * when someone listens: it is the hook for latency histograms and tracing spans.
   */
  storeCall: {
    operation: StoreOperation;
    ok: boolean;
    startTime: number;
    durationMs: number;
    key: string;
    route: string | undefined;
    /** The store's `name` (`'memory'`, `'redis'`, `'postgres'`): a span's database system. */
    store: string;
  };
}

/** The store calls the engine makes. */
export type StoreOperation = 'get' | 'claim' | 'getOrClaim' | 'waitFor' | 'extend' | 'complete' | 'release';

type Listener<P> = (event: P) => void;

/**
 * A typed event emitter over a map of event names to payloads. Listener errors are caught and
 * never reach the caller that emitted: an observer's bug must not turn a stored response into a 500.
 */
export class TypedEvents<Events extends object> {
  readonly #emitter = new EventEmitter();

  /** Adds a listener. */
  on<K extends keyof Events & string>(event: K, listener: Listener<Events[K]>): this {
    this.#emitter.on(event, listener);
    return this;
  }

  /** Removes a listener. */
  off<K extends keyof Events & string>(event: K, listener: Listener<Events[K]>): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /** Adds a listener called at most once. */
  once<K extends keyof Events & string>(event: K, listener: Listener<Events[K]>): this {
    this.#emitter.once(event, listener);
    return this;
  }

  /** @internal Whether anybody listens, to skip building a payload nobody reads. */
  hasListeners(event: keyof Events & string): boolean {
    return this.#emitter.listenerCount(event) > 0;
  }

  /** @internal */
  emit<K extends keyof Events & string>(event: K, payload: Events[K]): void {
    if (this.#emitter.listenerCount(event) === 0) return;
    // rawListeners: a `once` listener is its wrapper, which removes itself when called.
    for (const listener of this.#emitter.rawListeners(event) as Listener<Events[K]>[]) {
      try {
        listener.call(this, payload);
      } catch {
        // Swallowed on purpose: see the class comment.
      }
    }
  }
}

/**
 * The events of an idempotency middleware.
 *
 * @example
 * const mw = idempotent();
 * mw.events.on('replay', ({ key, ageMs }) => metrics.replays.inc());
 */
export class IdempotencyEvents extends TypedEvents<IdempotencyEventMap> {}
