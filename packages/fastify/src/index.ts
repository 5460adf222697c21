export { idempotent } from './plugin.js';
export type { FastifyIdempotencyOptions, IdempotencyDecorator, RouteIdempotencyOptions } from './plugin.js';
export type { IdempotencyOptions, IdempotencyStore } from '@idem/core/adapter';
export { memoryStore } from '@idem/core/adapter';
