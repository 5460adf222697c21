/**
 * @idem/redis-kit: the Redis pieces that @idem/redis and @idem/cache share, written once. Private:
 * bundled into both packages at build time, never published, so none of its types may appear in
 * their public signatures.
 */
export { bounded } from './bounded.js';
export { isRedisClient, keyPrefixOf, mastersOf } from './client.js';
export { globEscape, scanKeys } from './scan.js';
export type { CallRunner, ScanOptions } from './scan.js';
export { defineScripts, scriptName } from './scripts.js';
export type { ScriptDefinition } from './scripts.js';
