/**
 * OpenTelemetry tracing for idem: `idempotencyTracing()` puts each protected request's outcome and
 * the key's hash on its span and makes a span per store call; `cacheTracing()` adds the cache's
 * events. Fed by the typed events: nothing is done until one of them is called.
 */
export { idempotencyTracing, defaults, TRACER_NAME } from './idempotency.js';
export type { IdempotencyTracingOptions, TracedOutcome, WithIdempotencyEvents } from './idempotency.js';
export { cacheTracing } from './cache.js';
export type { TracedCacheEvents, WithCacheEvents } from './cache.js';
export { ATTR } from './shared.js';
export type { TracingHandle } from './shared.js';
