/**
 * `@idem/core/adapter`: what framework adapters and stores build on, apart from what users
 * import. An adapter translates its framework's request into a `NeutralRequest`, hands it to
 * `createIdempotency().handle()`, and writes the `Decision` back.
 */
export { brand } from './brand.js';
export { chunkBytes, readUpTo } from './body.js';
export type { ReadBody } from './body.js';
export { MAX_TIMER_MS, checkLogger, checkOptions, debugEnabled, parseDuration } from './config.js';
export type { ConfigErrorFactory } from './config.js';
export { createIdempotency } from './engine.js';
export type { Idempotency } from './engine.js';
export { attachExecution, executionOf } from './execution.js';
export { exposeReplayedHeader, replayMarks, replayableHeaders } from './headers.js';
export { sha256 } from './key.js';
export { KeyedWaiters } from './waiters.js';
export type { Watch } from './waiters.js';
export { resolveOptions } from './options.js';
export type { ResolvedOptions } from './options.js';
export { problemResponse } from './problem.js';
export { recordProblem } from './record.js';
export { hasRequestBody, headerValues, splitUrl, type DistinctHeaders } from './request.js';
export { CACHE_STATUS_HEADER, CacheStatus } from './cache-status.js';
export type { CacheStatusValue } from './cache-status.js';
export { NotCacheable, cachedAnswer, isCacheFailure } from './cached-answer.js';
export type { CacheOutcome, CachedAnswer, CachedResponse, OwnRun } from './cached-answer.js';
export { responseCaching } from './response-cache.js';
export type { CachedOptions, ResponseCache, ResponseCaching } from './response-cache.js';
export * from './index.js';
