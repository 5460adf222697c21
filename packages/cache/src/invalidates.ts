/**
 * What `invalidates()` of `@idem/cache/express` and `@idem/cache/koa` share: the options, checked
 * once, and the deletion itself. A write route names the tags and keys its success makes stale;
 * they are deleted from both tiers and every instance's memory tier before the response ends, so a
 * client that reads right after its write does not get the old value.
 */
import { checkOptions } from '@idem/core/adapter';
import { CacheConfigError } from './errors.js';
import type { Cache } from './types.js';

/** Names, or a function of the request that returns them. */
export type Names<Req> = readonly string[] | ((req: Req) => readonly string[] | undefined);

/** Options of `invalidates()`. */
export interface InvalidatesOptions<Req> {
  /** The cache to delete from. */
  cache: Pick<Cache, 'delete' | 'deleteByTag'>;
  /** Tags to delete (`deleteByTag`) after a 2xx. */
  tags?: Names<Req>;
  /** Keys to delete after a 2xx. */
  keys?: Names<Req>;
}

/** The deletion of one route, ready to run per request. @internal */
export interface Invalidation<Req> {
  /** Whether an answer with this status and `Idempotent-Replayed` value invalidates. */
  applies(status: number, replayed: unknown): boolean;
  /**
   * Deletes what `req` names. Never rejects: the write it follows has happened and its response
   * must go out (a throwing tags or keys function becomes a process warning); a deletion Redis could not take is queued and reported by the cache itself
   * (`l2Error`, its log), like every invalidation while Redis is away.
   */
  run(req: Req): Promise<void>;
}

const KNOWN = ['cache', 'tags', 'keys'] as const;
const fail = (option: string, message: string): CacheConfigError => new CacheConfigError(option, message);

function names<Req>(option: 'tags' | 'keys', value: Names<Req> | undefined): (req: Req) => readonly string[] {
  if (value === undefined) return () => [];
  if (typeof value === 'function') {
    return (req) => {
      const got = value(req);
      if (got === undefined) return [];
      if (!Array.isArray(got) || got.some((n) => typeof n !== 'string' || n === ''))
        throw fail(option, `the ${option} function must return an array of non-empty strings`);
      return got;
    };
  }
  if (!Array.isArray(value) || value.some((n) => typeof n !== 'string' || n === ''))
    throw fail(option, 'expected an array of non-empty strings, or a function (req) => string[]');
  const fixed = [...value];
  return () => fixed;
}

/** Validates the options once; throws {@link CacheConfigError} naming the bad one. @internal */
export function invalidation<Req>(options: InvalidatesOptions<Req>): Invalidation<Req> {
  checkOptions(options, KNOWN, fail);
  const { cache } = options;
  if (typeof cache?.delete !== 'function' || typeof cache.deleteByTag !== 'function')
    throw fail('cache', 'expected a cache from createCache()');
  if (options.tags === undefined && options.keys === undefined)
    throw fail('tags', 'give tags, keys or both: an invalidation that names nothing deletes nothing');
  const tagsOf = names('tags', options.tags);
  const keysOf = names('keys', options.keys);
  return {
    // A replay answers a write that already invalidated when it first ran.
    applies: (status, replayed) => status >= 200 && status < 300 && String(replayed) !== 'true',
    async run(req) {
      let tags: readonly string[];
      let keys: readonly string[];
      try {
        tags = tagsOf(req);
        keys = keysOf(req);
      } catch (error) {
        // A tags or keys function that throws is the application's bug; the write happened and its
        // response still goes out. Node prints the warning (stderr) unless the app listens for it.
        process.emitWarning(error instanceof Error ? error : new Error(String(error)), 'IdemCacheInvalidation');
        return;
      }
      await Promise.allSettled([
        tags.length > 0 ? cache.deleteByTag(tags) : undefined,
        keys.length > 0 ? cache.delete(keys) : undefined,
      ]);
    },
  };
}
