export { redisStore } from './redis-store.js';
export type { RedisStore } from './redis-store.js';
export { defaults } from './options.js';
export type { RedisStoreOptions } from './options.js';
export { LockUnavailableError, RedisTimeoutError } from './errors.js';
