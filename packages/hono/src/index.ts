export { idempotent } from './idempotent.js';
export type { HonoIdempotencyOptions, IdempotentMiddleware } from './idempotent.js';
export { cached } from './cached.js';
export type { CachedOptions, ResponseCache } from './cached.js';
export type { IdempotencyOptions, IdempotencyStore } from '@idem/core/adapter';
export { memoryStore } from '@idem/core/adapter';
