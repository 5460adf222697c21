/**
 * Prometheus metrics of an idempotency middleware, fed by its typed events. Nothing is built on
 * the request path until this subscribes: core builds an event's payload only when it has
 * listeners (`hasListeners`), and times store calls only when `storeCall` has one.
 */
import type { ExecuteOutcome, IdempotencyEventMap, IdempotencyEvents, StoreOperation } from '@idem/core';
import { Counter, Histogram } from 'prom-client';
import {
  UNKNOWN_ROUTE,
  defaults,
  ensureFree,
  fail,
  resolve,
  unregister,
  type MetricsHandle,
  type MetricsOptions,
} from './shared.js';
import type { Subscribable, Subscriber } from './shared.js';

/** Anything with the events of an idempotency engine: `idempotent()` of Express and Koa, Fastify's `app.idempotency`. */
export interface WithIdempotencyEvents {
  readonly events: IdempotencyEvents;
}

/** Options of `idempotencyMetrics()`. */
export interface IdempotencyMetricsOptions extends MetricsOptions {
  /** Route patterns whose request series exist at 0 from the start; others appear on their first request. @default [] */
  routes?: readonly string[];
  /**
   * At most this many distinct `route` labels; requests on further routes are counted under
   * `other`. A guard against an adapter or a custom scope that hands over raw paths. @default 200
   */
  maxRoutes?: number;
}

/** The `outcome` label of `requests_total`: how each protected request was answered. */
export const REQUEST_OUTCOMES = [
  'replay',
  'execute',
  'conflict',
  'mismatch',
  'key_missing',
  'key_invalid',
  'body_not_parsed',
  'invalid_record',
  'store_unavailable',
  'fail_open',
] as const;
export type RequestOutcome = (typeof REQUEST_OUTCOMES)[number];

/** Every store operation the engine calls (the `operation` label). */
export const STORE_OPERATIONS = [
  'get',
  'claim',
  'getOrClaim',
  'waitFor',
  'extend',
  'complete',
  'release',
] as const satisfies readonly StoreOperation[];
// A compile error here means core added a store operation: add it to STORE_OPERATIONS.
const allOperations: Exclude<StoreOperation, (typeof STORE_OPERATIONS)[number]> extends never ? true : never = true;
void allOperations;

/** Store calls whose failure decides the request's answer (503 or fail-open); the others do not. */
const DECISION_OPERATIONS = new Set(['get', 'claim', 'getOrClaim', 'waitFor']);

/** Store calls take well under a millisecond in memory, about one on a LAN Redis. */
export const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
export const HANDLER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** A replay's stored response is seconds to a day old (the default ttl is 24 h). */
export const REPLAY_AGE_BUCKETS = [1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 7 * 86400];

/** The `outcome` label of `handler_duration_seconds`: what became of the handler's response. */
export const EXECUTE_OUTCOMES = [
  'stored',
  'not_cacheable',
  'too_large',
  'failed',
  'fenced',
  'max_hold',
  'store_error',
] as const satisfies readonly ExecuteOutcome[];
// A compile error here means core added an execute outcome: add it to EXECUTE_OUTCOMES.
const allExecuteOutcomes: Exclude<ExecuteOutcome, (typeof EXECUTE_OUTCOMES)[number]> extends never ? true : never =
  true;
void allExecuteOutcomes;

/** The `route` label of requests past `maxRoutes` distinct routes. */
export const OTHER_ROUTE = 'other';

const KNOWN = ['registry', 'prefix', 'routes', 'maxRoutes'];

/**
 * Registers idem's request metrics in `registry` and keeps them up to date from the middleware's
 * events. An app with several `idempotent()` instances (one app-wide, another with other options
 * on one route) passes them all: one set of series counts them together, by route.
 *
 * @example
 * const mw = idempotent({ store });
 * const metrics = idempotencyMetrics(mw, { registry });
 */
export function idempotencyMetrics(
  middleware: WithIdempotencyEvents | readonly WithIdempotencyEvents[],
  options: IdempotencyMetricsOptions,
): MetricsHandle {
  const list: readonly unknown[] = Array.isArray(middleware) ? middleware : [middleware];
  const targets = list.map((m) => {
    const events = (m as Partial<WithIdempotencyEvents> | null)?.events;
    if (events === undefined || typeof events.on !== 'function' || typeof events.off !== 'function') {
      throw new TypeError(
        '@idem/prometheus: idempotencyMetrics() takes what idempotent() returns (it has `.events`), or an array of them',
      );
    }
    return events as unknown as Subscribable;
  });
  if (targets.length === 0) throw new TypeError('@idem/prometheus: idempotencyMetrics() needs at least one middleware');
  const { routes = defaults.idempotency.routes, maxRoutes = defaults.idempotency.maxRoutes } = options ?? {};
  if (!Array.isArray(routes) || !routes.every((r) => typeof r === 'string' && r !== '')) {
    throw fail('routes', "expected an array of route patterns, e.g. ['/orders', '/payments/:id']");
  }
  if (!Number.isInteger(maxRoutes) || maxRoutes < 1) throw fail('maxRoutes', 'expected a positive integer');
  const { registry, prefix } = resolve(options, KNOWN, defaults.idempotency.prefix);
  const name = (base: string): string => `${prefix}${base}`;
  const names = [
    'requests_total',
    'handler_duration_seconds',
    'replay_age_seconds',
    'store_call_duration_seconds',
    'store_errors_total',
    'leases_lost_total',
    'waits_total',
  ].map(name);
  ensureFree(registry, names, 'idempotencyMetrics()');
  const registers = [registry];

  const requests = new Counter({
    name: name('requests_total'),
    help: 'Protected requests by how idem answered them (see @idem/prometheus README, "Outcomes").',
    labelNames: ['route', 'outcome'],
    registers,
  });
  const handler = new Histogram({
    name: name('handler_duration_seconds'),
    help: 'Time from the lease to the end of the execution (handler and storing its response), by execute outcome.',
    labelNames: ['route', 'outcome'],
    buckets: HANDLER_BUCKETS,
    registers,
  });
  const replayAge = new Histogram({
    name: name('replay_age_seconds'),
    help: 'Age of the stored response when it was replayed.',
    labelNames: ['route'],
    buckets: REPLAY_AGE_BUCKETS,
    registers,
  });
  const storeCalls = new Histogram({
    name: name('store_call_duration_seconds'),
    help: 'Latency of each store call, by operation and result (ok or error).',
    labelNames: ['operation', 'result'],
    buckets: STORE_BUCKETS,
    registers,
  });
  const storeErrors = new Counter({
    name: name('store_errors_total'),
    help: 'Store calls that failed (threw or timed out), by operation.',
    labelNames: ['operation'],
    registers,
  });
  const leasesLost = new Counter({
    name: name('leases_lost_total'),
    help: 'Executions whose lease lapsed or was taken while the handler ran: their result was not stored.',
    labelNames: ['route'],
    registers,
  });
  const waits = new Counter({
    name: name('waits_total'),
    help: "Duplicates that waited for the key's holder (concurrent: 'wait').",
    labelNames: ['route'],
    registers,
  });

  for (const operation of STORE_OPERATIONS) {
    storeErrors.inc({ operation }, 0);
    for (const result of ['ok', 'error']) storeCalls.zero({ operation, result });
  }
  // Per route, every series starts at 0 so that rate() and increase() see the first event.
  const seen = new Set<string>();
  function start(label: string): void {
    seen.add(label);
    for (const outcome of REQUEST_OUTCOMES) requests.inc({ route: label, outcome }, 0);
    for (const outcome of EXECUTE_OUTCOMES) handler.zero({ route: label, outcome });
    replayAge.zero({ route: label });
    leasesLost.inc({ route: label }, 0);
    waits.inc({ route: label }, 0);
  }
  let named = 0;
  function routeLabel(route: string | undefined): string {
    const label = route === undefined || route === '' ? UNKNOWN_ROUTE : route;
    if (seen.has(label)) return label;
    // `unknown` and `other` do not count against maxRoutes: they are what keeps the set bounded.
    if (label === UNKNOWN_ROUTE) {
      start(label);
      return label;
    }
    if (named >= maxRoutes) {
      if (!seen.has(OTHER_ROUTE)) start(OTHER_ROUTE);
      return OTHER_ROUTE;
    }
    named++;
    start(label);
    return label;
  }
  for (const route of routes) routeLabel(route);
  const count = (route: string | undefined, outcome: RequestOutcome): void =>
    requests.inc({ route: routeLabel(route), outcome });

  type Listeners = { [K in keyof IdempotencyEventMap]?: (event: IdempotencyEventMap[K]) => void };
  const listeners: Listeners = {
    replay(e) {
      count(e.route, 'replay');
      replayAge.observe({ route: routeLabel(e.route) }, Math.max(0, e.ageMs) / 1000);
    },
    execute(e) {
      count(e.route, 'execute');
      handler.observe({ route: routeLabel(e.route), outcome: e.outcome }, e.durationMs / 1000);
    },
    conflict: (e) => count(e.route, 'conflict'),
    mismatch: (e) => count(e.route, 'mismatch'),
    invalidRecord: (e) => count(e.route, 'invalid_record'),
    rejected: (e) => count(e.route, e.code),
    storeError(e) {
      // complete, release (and extend, never reported here) fail after the answer is decided:
      // they are store errors, not request outcomes.
      if (!DECISION_OPERATIONS.has(e.operation)) return;
      count(e.route, e.failOpen ? 'fail_open' : 'store_unavailable');
    },
    leaseLost: (e) => leasesLost.inc({ route: routeLabel(e.route) }),
    wait: (e) => waits.inc({ route: routeLabel(e.route) }),
    storeCall(e) {
      storeCalls.observe({ operation: e.operation, result: e.ok ? 'ok' : 'error' }, e.durationMs / 1000);
      if (!e.ok) storeErrors.inc({ operation: e.operation });
    },
  };
  const entries = Object.entries(listeners) as [keyof IdempotencyEventMap & string, Subscriber][];
  for (const target of targets) for (const [event, listener] of entries) target.on(event, listener);

  let closed = false;
  return {
    names,
    close() {
      if (closed) return;
      closed = true;
      for (const target of targets) for (const [event, listener] of entries) target.off(event, listener);
      unregister(registry, names);
    },
  };
}
