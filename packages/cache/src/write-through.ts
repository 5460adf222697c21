import { busMessage, type CacheContext } from './context.js';
import { CacheError } from './errors.js';
import type { Entry } from './memory-tier.js';

/**
 * Stores `entry` in L1, then in Redis, where the same script frees the loader lock `token` holds
 * (if any) and tells the other instances to drop their copy, and in the durable tier (unless
 * `durable` is false: the entry came from there). Resolves false when Redis could not be written:
 * the value then lives in this instance's L1 (and the durable tier) only, and the caller decides
 * what that leaves to undo. A failure is never thrown: the tiers have reported it (`l2Error`,
 * `durableError`), and a value that cannot be serialized is logged here, being the user's to fix.
 * @internal
 */
export async function writeThrough(
  context: CacheContext,
  key: string,
  entry: Entry,
  now: number,
  token: string,
  durable = true,
): Promise<boolean> {
  context.l1.set(key, entry);
  if (durable && context.durable !== undefined) {
    if (context.l2 === undefined) {
      await context.durable.write(key, entry);
      return true;
    }
    const [stored] = await Promise.all([toRedis(context, key, entry, now, token), context.durable.write(key, entry)]);
    return stored;
  }
  return toRedis(context, key, entry, now, token);
}

async function toRedis(context: CacheContext, key: string, entry: Entry, now: number, token: string): Promise<boolean> {
  if (context.l2 === undefined) return true;
  try {
    await context.l2.write(key, entry, now, token, busMessage(context, { t: 'set', k: key }));
    context.counters.published++;
    return true;
  } catch (error) {
    if (error instanceof CacheError && error.code === 'cache_serialization') {
      const message = 'idem cache: value kept in L1 only, it could not be serialized for Redis';
      context.options.logger.error({ err: error, key }, message);
      context.events.emit('l2Error', { operation: 'write', error });
    }
    return false;
  }
}
