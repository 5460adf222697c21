/**
 * Prometheus metrics for idem: `idempotencyMetrics()` for the middleware of any adapter and
 * `cacheMetrics()` for @idem/cache, on the prom-client registry you give.
 */
export {
  idempotencyMetrics,
  REQUEST_OUTCOMES,
  EXECUTE_OUTCOMES,
  STORE_OPERATIONS,
  OTHER_ROUTE,
  STORE_BUCKETS,
  HANDLER_BUCKETS,
  REPLAY_AGE_BUCKETS,
} from './idempotency.js';
export type { IdempotencyMetricsOptions, RequestOutcome, WithIdempotencyEvents } from './idempotency.js';
export { cacheMetrics, STALE_REASONS, BREAKER_STATES, LOADER_BUCKETS } from './cache.js';
export type { ObservedCache } from './cache.js';
export { UNKNOWN_ROUTE, defaults } from './shared.js';
export type { MetricsHandle, MetricsOptions } from './shared.js';
