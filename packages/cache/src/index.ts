export { createCache } from './cache.js';
export { CacheConfigError, CacheError } from './errors.js';
export type { CacheErrorCode } from './errors.js';
export { CacheEvents } from './events.js';
export type { CacheEventMap, CacheLayer } from './events.js';
export { defaults } from './options.js';
export { jsonSerializer } from './serializer.js';
export type * from './types.js';
