export { idempotent } from './plugin.js';
export type { FastifyIdempotencyOptions, IdempotencyDecorator, RouteIdempotencyOptions } from './plugin.js';
export type { IdempotencyOptions, IdempotencyStore } from '@idem/core/adapter';
export { memoryStore } from '@idem/core/adapter';
export { cached } from './cached.js';
export type { CachedOptions, ResponseCache, RouteCachedOptions } from './cached.js';
