/**
 * How the engine tells what happened: typed events and log lines, built only when someone
 * listens. Store failures are reported from this one place, so that every one is wrapped once
 * (keeping the store's own error class) and says the same things.
 */
import { debugEnabled, type Logger } from './config.js';
import { StoreError } from './errors.js';
import type { IdempotencyEvents, StoreOperation } from './events.js';

/**
 * Where an event's route comes from: the request view, read only when an event is built. A route
 * is a string made per read (Express: base URL and route path), and it is set once the router
 * matched, after idem ran: an execution reads it at its end.
 */
export interface Routed {
  readonly route?: string | undefined;
}

/** The engine's reporting, shared by the decision and the executions. */
export interface Reporter {
  readonly events: IdempotencyEvents;
  readonly logger: Logger;
  /** Whether debug lines would be seen (checked per line: the level may change at run time). */
  debugging(): boolean;
  /** Marks the start of a store call: a timestamp when `storeCall` has listeners, else a sentinel. */
  callStart(): number;
  /** Reports the end of a store call started at `start` (a no-op when nobody listened at the start). */
  callEnd(operation: StoreOperation, start: number, ok: boolean, key: string, request: Routed): void;
  /**
   * Reports a store failure: the error as a {@link StoreError} (the store's own when it is one),
   * a `storeError` event and one log line. Returns the error.
   */
  storeError(
    operation: string,
    cause: unknown,
    context: {
      startedAt: number;
      failOpen: boolean;
      key: string | undefined;
      route: string | undefined;
      message: string;
    },
  ): StoreError;
}

/** No one listens for `storeCall`: the call is not timed. */
const UNTIMED = -1;

export function createReporter(events: IdempotencyEvents, logger: Logger, storeName: string): Reporter {
  return {
    events,
    logger,
    debugging: debugEnabled(logger),
    callStart() {
      return events.hasListeners('storeCall') ? performance.now() : UNTIMED;
    },
    callEnd(operation, start, ok, key, request) {
      if (start === UNTIMED) return;
      const durationMs = performance.now() - start;
      events.emit('storeCall', {
        operation,
        ok,
        startTime: performance.timeOrigin + start,
        durationMs,
        key,
        route: request.route,
        store: storeName,
      });
    },
    storeError(operation, cause, { startedAt, failOpen, key, route, message }) {
      const error = StoreError.from(operation, cause);
      events.emit('storeError', { operation, error, failOpen, durationMs: Date.now() - startedAt, key, route });
      logger.error({ err: error, operation, store: storeName, key, failOpen }, message);
      return error;
    },
  };
}
