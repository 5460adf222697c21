import { busMessage, type CacheContext } from './context.js';
import type { CacheError } from './errors.js';
import { encodeValue } from './serializer.js';
import type { Entry } from './memory-tier.js';

/**
 * How a write treats the durable tier: `wait` for it (`set`), leave it running (`background`: a
 * load's callers are not held up by the database), or `skip` it (the entry came from there).
 * @internal
 */
export type DurableWrite = 'wait' | 'background' | 'skip';

/**
 * Stores `entry` in L1, then in Redis, where the same script frees the loader lock `token` holds
 * (if any) and tells the other instances to drop their copy, and in the durable tier (as `durable`
 * says). Resolves false when Redis could not be written: the value then lives in this instance's
 * L1 (and the durable tier) only, and the caller decides what that leaves to undo. A failure is
 * never thrown: the tiers have reported it (`l2Error`, `durableError`), and a value that cannot be
 * serialized is logged here, being the user's to fix.
 * @internal
 */
export async function writeThrough(
  context: CacheContext,
  key: string,
  entry: Entry,
  now: number,
  token: string,
  durable: DurableWrite,
): Promise<boolean> {
  context.l1.set(key, entry);
  const { l2 } = context;
  const tier = durable === 'skip' ? undefined : context.durable;
  if (l2 === undefined && tier === undefined) return true;
  let bytes: Buffer;
  try {
    // Once for both tiers.
    bytes = encodeValue(context.options.serializer, key, entry.value);
  } catch (error) {
    context.options.logger.error({ err: error, key }, 'idem cache: value kept in L1 only, it could not be serialized');
    if (l2 === undefined) return true;
    context.events.emit('l2Error', { operation: 'write', error: error as CacheError });
    return false;
  }
  const written = tier?.write(key, entry, bytes, durable === 'wait');
  if (durable !== 'wait' || written === undefined) return toRedis(context, key, entry, bytes, now, token);
  const [stored] = await Promise.all([toRedis(context, key, entry, bytes, now, token), written]);
  return stored;
}

async function toRedis(
  context: CacheContext,
  key: string,
  entry: Entry,
  bytes: Buffer,
  now: number,
  token: string,
): Promise<boolean> {
  if (context.l2 === undefined) return true;
  try {
    await context.l2.write(key, entry, bytes, now, token, busMessage(context, { t: 'set', k: key }));
    context.counters.published++;
    return true;
  } catch {
    // Reported by the Redis tier (`l2Error`).
    return false;
  }
}
