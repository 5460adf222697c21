/**
 * Tracing of an idempotency middleware, fed by its typed events: the outcome of each protected
 * request on the active span (attributes and a span event), and a span per store call.
 *
 * Why events on the active span work: the engine emits every event synchronously, in the async
 * context of the request it is deciding or executing (a lease renewal's timer was started there
 * too), so with a context manager (AsyncLocalStorage) the active span is that request's span.
 *
 * Why store spans are made from `storeCall` after the call: core gives no hook before a call,
 * and `storeCall` carries the call's start (epoch ms) and its monotonic duration. A span started
 * and ended with those times, in the context the call ran in, is the span of that call: the same
 * parent, the same start and end. What it cannot do is be the parent of spans the store's client
 * makes during the call (an ioredis or pg instrumentation's): those are its siblings.
 */
import { SpanKind, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import type { IdempotencyEventMap, IdempotencyEvents } from '@idem/core';
import { checkOptions } from '@idem/core/adapter';
import { ATTR, activeSpan, eventsOf, fail, subscribe, type TracingHandle } from './shared.js';

/** Anything with the events of an idempotency engine: `idempotent()` of Express and Koa, Fastify's `app.idempotency`. */
export interface WithIdempotencyEvents {
  readonly events: IdempotencyEvents;
}

/** Options of `idempotencyTracing()`. */
export interface IdempotencyTracingOptions {
  /** The tracer store-call spans are made with. @default trace.getTracer('@idem/opentelemetry') */
  tracer?: Tracer;
  /** Whether to make a span per store call (`false`: attributes and events on the request's span only). @default true */
  storeSpans?: boolean;
}

/** The defaults of `idempotencyTracing()`, shaped like its options (the tracer comes from the global provider). */
export const defaults = Object.freeze({ storeSpans: true });

/** The name of the tracer used when none is given. */
export const TRACER_NAME = '@idem/opentelemetry';

/**
 * The `idem.outcome` attribute: how the request was answered (the vocabulary of
 * @idem/prometheus's `outcome` label).
 */
export type TracedOutcome =
  | 'replay'
  | 'execute'
  | 'conflict'
  | 'mismatch'
  | 'key_missing'
  | 'key_invalid'
  | 'body_not_parsed'
  | 'invalid_record'
  | 'store_unavailable'
  | 'fail_open';

/** Store calls whose failure decides the answer (503 or fail-open); the others come after it. */
const DECISION_OPERATIONS = new Set(['get', 'claim', 'getOrClaim', 'waitFor']);

const KNOWN = ['tracer', 'storeSpans'];

function keyAndRoute(key: string | undefined, route: string | undefined): Attributes {
  const attributes: Attributes = {};
  if (key !== undefined) attributes[ATTR.keyHash] = key;
  if (route !== undefined) attributes[ATTR.route] = route;
  return attributes;
}

/**
 * Puts what idem did on the active span of each request, and a span around each store call.
 *
 * @example
 * const mw = idempotent({ store });
 * idempotencyTracing(mw);
 */
export function idempotencyTracing(
  middleware: WithIdempotencyEvents | readonly WithIdempotencyEvents[],
  options: IdempotencyTracingOptions = {},
): TracingHandle {
  const targets = eventsOf(middleware, 'idempotencyTracing()', 'idempotent()');
  checkOptions(options, KNOWN, fail);
  const { tracer = trace.getTracer(TRACER_NAME), storeSpans = defaults.storeSpans } = options;
  if (typeof (tracer as Partial<Tracer> | null)?.startSpan !== 'function') {
    throw fail('tracer', 'expected an OpenTelemetry Tracer (trace.getTracer(name))');
  }
  if (typeof storeSpans !== 'boolean') throw fail('storeSpans', 'expected true or false');

  /** The outcome, with its details, as attributes and as one span event. */
  function outcome(
    what: TracedOutcome,
    key: string | undefined,
    route: string | undefined,
    details: Attributes = {},
  ): void {
    const span = activeSpan();
    if (span === undefined) return;
    const attributes: Attributes = { [ATTR.outcome]: what, ...keyAndRoute(key, route), ...details };
    if (what === 'replay' || what === 'execute') attributes[ATTR.replayed] = what === 'replay';
    span.setAttributes(attributes);
    span.addEvent(`idem.${what}`, details);
  }

  type Listeners = { [K in keyof IdempotencyEventMap]?: (event: IdempotencyEventMap[K]) => void };
  const listeners: Listeners = {
    replay: (e) => outcome('replay', e.key, e.route, { [ATTR.status]: e.status, [ATTR.replayAgeMs]: e.ageMs }),
    execute: (e) =>
      outcome('execute', e.key, e.route, {
        ...(e.status === undefined ? {} : { [ATTR.status]: e.status }),
        [ATTR.executeOutcome]: e.outcome,
        [ATTR.executeDurationMs]: e.durationMs,
      }),
    conflict: (e) => outcome('conflict', e.key, e.route, { [ATTR.waitedMs]: e.waitedMs }),
    mismatch: (e) => outcome('mismatch', e.key, e.route),
    invalidRecord: (e) => outcome('invalid_record', e.key, e.route, { [ATTR.reason]: e.reason }),
    rejected: (e) => outcome(e.code, undefined, e.route),
    storeError(e) {
      const span = activeSpan();
      if (span === undefined) return;
      const details: Attributes = {
        [ATTR.storeOperation]: e.operation,
        [ATTR.failOpen]: e.failOpen,
        'exception.type': e.error.name,
        'exception.message': e.error.message,
      };
      // Only a failure while deciding is the request's outcome; complete and release fail after it.
      if (DECISION_OPERATIONS.has(e.operation)) {
        outcome(e.failOpen ? 'fail_open' : 'store_unavailable', e.key, e.route, details);
      } else {
        span.addEvent('idem.store_error', details);
      }
    },
    leaseLost(e) {
      const span = activeSpan();
      if (span === undefined) return;
      span.addEvent('idem.lease_lost', { ...keyAndRoute(e.key, e.route), [ATTR.heldMs]: e.heldMs });
    },
    wait(e) {
      const span = activeSpan();
      if (span === undefined) return;
      span.setAttributes(keyAndRoute(e.key, e.route));
      span.addEvent('idem.wait');
    },
  };
  if (storeSpans) {
    listeners.storeCall = (e) => {
      const parent = activeSpan();
      // No recording request span: no orphan root span per store call either.
      if (parent === undefined) return;
      parent.setAttributes(keyAndRoute(e.key, e.route));
      // The event's startTime is performance.timeOrigin + performance.now(); the SDK times its own
      // spans by Date.now(), which drifts from that clock (2 ms seen within one test run). Move it
      // onto the SDK's clock as the SDK does its own, or a store span would start before its request.
      const startTime = e.startTime + (Date.now() - (performance.timeOrigin + performance.now()));
      const span = tracer.startSpan(`idem.store.${e.operation}`, {
        kind: SpanKind.CLIENT,
        startTime,
        attributes: { [ATTR.storeOperation]: e.operation, ...keyAndRoute(e.key, e.route) },
      });
      if (!e.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: `store ${e.operation} failed` });
      span.end(startTime + e.durationMs);
    };
  }
  return subscribe(targets, listeners);
}
