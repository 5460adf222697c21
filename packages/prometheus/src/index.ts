/**
 * Prometheus metrics for idem: `idempotencyMetrics()` for the middleware of any adapter and
 * `cacheMetrics()` for @idem/cache, on the prom-client registry you give.
 */
export { idempotencyMetrics, REQUEST_OUTCOMES, STORE_OPERATIONS } from './idempotency.js';
export type { IdempotencyMetricsOptions, RequestOutcome, WithIdempotencyEvents } from './idempotency.js';
export { cacheMetrics, STALE_REASONS, BREAKER_STATES } from './cache.js';
export type { ObservedCache } from './cache.js';
export { UNKNOWN_ROUTE } from './shared.js';
export type { MetricsHandle, MetricsOptions } from './shared.js';
