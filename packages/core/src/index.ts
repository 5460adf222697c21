/**
 * What users of idem import: the memory store, the errors, the events, the types and the
 * defaults. What adapters and stores need besides is in `@idem/core/adapter`; the store
 * conformance suite is `@idem/core/conformance`.
 */
export { ConfigError, silentLogger } from './config.js';
export type { Duration, Logger } from './config.js';
export { IdempotencyConfigError, IdempotencyError, StoreError, problemType } from './errors.js';
export type { ProblemBody, ProblemCode } from './errors.js';
export { IdempotencyEvents, TypedEvents } from './events.js';
export type { IdempotencyEventMap, StoreOperation } from './events.js';
export { executionOf } from './execution.js';
export { defaultFingerprint } from './fingerprint.js';
export { REPLAYED_HEADER, isReplayableHeader } from './headers.js';
export { MAX_KEY_LENGTH, parseKeyHeader, storageKey } from './key.js';
export { memoryStore } from './memory-store.js';
export type { FormattedProblem, ProblemDetails } from './problem.js';
export type { MemoryStoreOptions } from './memory-store.js';
export { defaultCacheable, defaults } from './options.js';
export type * from './types.js';
