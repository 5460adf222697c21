/**
 * What the tracing of the middleware and of the cache share: the attribute names, the option
 * checks and the handle they return.
 */
import { trace, type Span } from '@opentelemetry/api';
import { ConfigError } from '@idem/core';

/**
 * The attribute names set on spans. `idem.key_hash` is the stored key, SHA-256 of the scope and
 * the client's key (docs/design.md, "Decision order"): a trace can be matched with a record
 * without the client's key ever reaching the tracing backend.
 */
export const ATTR = Object.freeze({
  outcome: 'idem.outcome',
  replayed: 'idem.replayed',
  keyHash: 'idem.key_hash',
  route: 'idem.route',
  status: 'idem.status',
  replayAgeMs: 'idem.replay.age_ms',
  executeOutcome: 'idem.execute.outcome',
  executeDurationMs: 'idem.execute.duration_ms',
  waitedMs: 'idem.conflict.waited_ms',
  heldMs: 'idem.lease.held_ms',
  reason: 'idem.reason',
  failOpen: 'idem.fail_open',
  storeOperation: 'idem.store.operation',
  cacheLayer: 'idem.cache.layer',
  cacheOk: 'idem.cache.ok',
  cacheDurationMs: 'idem.cache.duration_ms',
  cacheReason: 'idem.cache.reason',
  cacheAgeMs: 'idem.cache.age_ms',
  cacheOperation: 'idem.cache.operation',
  cacheCode: 'idem.cache.code',
});

/** What `idempotencyTracing()` and `cacheTracing()` return. */
export interface TracingHandle {
  /** Stops listening: nothing is added to spans any more, and the events cost nothing again. */
  close(): void;
}

export const fail = (option: string, message: string): ConfigError =>
  new ConfigError(option, message, { scope: '@idem/opentelemetry' });

/** The active span, when it records: a non-recording one (unsampled, or none) gets nothing. */
export function activeSpan(): Span | undefined {
  const span = trace.getActiveSpan();
  return span !== undefined && span.isRecording() ? span : undefined;
}

/** A listener whose payload type was checked where it was written (in a mapped listeners object). */
export type Subscriber = (event: never) => void;
/** The events' on/off, seen through their names only: the typed map was checked by the caller. */
export interface Subscribable {
  on(event: string, listener: Subscriber): unknown;
  off(event: string, listener: Subscriber): unknown;
}

/** Subscribes every listener to every target; the handle unsubscribes them all, once. */
export function subscribe(targets: readonly Subscribable[], listeners: object): TracingHandle {
  const entries = Object.entries(listeners) as [string, Subscriber][];
  for (const target of targets) for (const [event, listener] of entries) target.on(event, listener);
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      for (const target of targets) for (const [event, listener] of entries) target.off(event, listener);
    },
  };
}

/** The `.events` of each of `what`, checked. */
export function eventsOf(what: unknown, fn: string, takes: string): Subscribable[] {
  const list: readonly unknown[] = Array.isArray(what) ? what : [what];
  if (list.length === 0) throw new TypeError(`@idem/opentelemetry: ${fn} needs at least one ${takes}`);
  return list.map((item) => {
    const events = (item as { events?: Partial<Subscribable> } | null)?.events;
    if (typeof events?.on !== 'function' || typeof events.off !== 'function') {
      throw new TypeError(
        `@idem/opentelemetry: ${fn} takes what ${takes} returns (it has \`.events\`), or an array of them`,
      );
    }
    return events as Subscribable;
  });
}
