/**
 * What both collectors share: option checks, the registry guard and the label for a request whose
 * route the framework did not know.
 */
import { ConfigError } from '@idem/core';
import { checkOptions } from '@idem/core/adapter';
import type { Registry } from 'prom-client';

/** Options of `idempotencyMetrics()` and `cacheMetrics()`. */
export interface MetricsOptions {
  /** The prom-client registry the metrics are registered in. Required: idem never touches the global one. */
  registry: Registry;
  /** Prefix of every metric name. @default 'idem_' (cache metrics: 'idem_cache_') */
  prefix?: string;
}

/** What `idempotencyMetrics()` and `cacheMetrics()` return. */
export interface MetricsHandle {
  /** The metric names registered, for tests and dashboards. */
  readonly names: readonly string[];
  /** Stops listening and removes every metric from the registry; attaching again is then allowed. */
  close(): void;
}

/**
 * The defaults of `idempotencyMetrics()` and `cacheMetrics()`, shaped like their options; the
 * README's option tables are checked against them (test/ops/prometheus.test.ts).
 */
export const defaults = Object.freeze({
  idempotency: Object.freeze({ prefix: 'idem_', routes: Object.freeze([] as string[]), maxRoutes: 200 }),
  cache: Object.freeze({ prefix: 'idem_cache_' }),
});

/** A route the framework did not know (middleware mounted app-wide, before routing). */
export const UNKNOWN_ROUTE = 'unknown';

export const fail = (option: string, message: string): ConfigError =>
  new ConfigError(option, message, { scope: '@idem/prometheus' });

// Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*, so a prefix may be empty but not start with a digit.
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/;

/** Checks the options and returns the registry and prefix. */
export function resolve(options: unknown, known: readonly string[], defaultPrefix: string): Required<MetricsOptions> {
  checkOptions(options, known, fail);
  const { registry, prefix = defaultPrefix } = options as MetricsOptions;
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.getSingleMetric !== 'function' ||
    typeof registry.registerMetric !== 'function'
  ) {
    throw fail('registry', 'expected a prom-client Registry (new Registry(), or register for the global one)');
  }
  if (typeof prefix !== 'string' || !NAME.test(prefix)) {
    throw fail('prefix', 'expected a string of letters, digits, _ and : that does not start with a digit');
  }
  return { registry, prefix };
}

/**
 * Throws before prom-client does, naming the way out: a second attach to the same registry would
 * otherwise fail deep inside prom-client on the first duplicate name, with half the metrics made.
 */
export function ensureFree(registry: Registry, names: readonly string[], what: string): void {
  const taken = names.filter((name) => registry.getSingleMetric(name) !== undefined);
  if (taken.length === 0) return;
  throw fail(
    'registry',
    `${taken.join(', ')} already registered: ${what} was attached twice to this registry. ` +
      'Call close() on the first handle, or give the second one another `prefix`.',
  );
}

/** Removes what was registered, ignoring names someone else already removed. */
export function unregister(registry: Registry, names: readonly string[]): void {
  for (const name of names) registry.removeSingleMetric(name);
}

/** A listener whose payload type was checked where it was written (in a mapped listeners object). */
export type Subscriber = (event: never) => void;
/** The events' on/off, seen through their names only: the typed map was checked by the caller. */
export interface Subscribable {
  on(event: string, listener: Subscriber): unknown;
  off(event: string, listener: Subscriber): unknown;
}
