/**
 * How the engine tells what happened: typed events and log lines, built only when someone
 * listens. Store failures are reported from this one place, so that every one is wrapped once
 * (keeping the store's own error class) and says the same things.
 */
import { debugEnabled, type Logger } from './config.js';
import { StoreError } from './errors.js';
import type { IdempotencyEvents } from './events.js';

/** The engine's reporting, shared by the decision and the executions. */
export interface Reporter {
  readonly events: IdempotencyEvents;
  readonly logger: Logger;
  /** Whether debug lines would be seen (checked per line: the level may change at run time). */
  debugging(): boolean;
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

export function createReporter(events: IdempotencyEvents, logger: Logger, storeName: string): Reporter {
  return {
    events,
    logger,
    debugging: debugEnabled(logger),
    storeError(operation, cause, { startedAt, failOpen, key, route, message }) {
      const error = StoreError.from(operation, cause);
      events.emit('storeError', { operation, error, failOpen, durationMs: Date.now() - startedAt, key, route });
      logger.error({ err: error, operation, store: storeName, key, failOpen }, message);
      return error;
    },
  };
}
