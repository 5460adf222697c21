/**
 * What the kit needs to know about a user's ioredis client: whether it is one at all, and the
 * `keyPrefix` ioredis adds to the keys it sends.
 *
 * The policy for `keyPrefix`, the same in every package: it is supported. ioredis prefixes every
 * argument a command declares a key, script `KEYS` included, so the records and entries land
 * under it; it prefixes neither SCAN's MATCH pattern nor pub/sub channels (SUBSCRIBE, PUBLISH and
 * the channel names the scripts get in ARGV), so the kit's SCAN adds the prefix to the pattern
 * and strips it from what it finds, and channels stay unprefixed on both ends.
 */
import type { Cluster, Redis } from 'ioredis';

/**
 * Whether `value` looks like an ioredis `Redis` or `Cluster`: it can register scripts, make the
 * duplicate a subscriber needs, and read hashes as bytes. Duck-typed, so that a second installed
 * copy of ioredis is accepted too.
 *
 * @example
 * if (!isRedisClient(options.client)) throw new TypeError('expected an ioredis client');
 */
export function isRedisClient(value: unknown): value is Redis | Cluster {
  const candidate = value as Record<string, unknown> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.defineCommand === 'function' &&
    typeof candidate.duplicate === 'function' &&
    typeof candidate.hgetallBuffer === 'function'
  );
}

/**
 * The ioredis `keyPrefix` a connection adds to every key it sends ('' when none). A Cluster takes
 * it from its own options or, failing those, from `redisOptions` (as ioredis does).
 *
 * @example
 * keyPrefixOf(new Redis({ keyPrefix: 'app:' })); // 'app:'
 */
export function keyPrefixOf(connection: Redis | Cluster): string {
  const options = connection.options as { keyPrefix?: string; redisOptions?: { keyPrefix?: string } };
  return options.keyPrefix ?? options.redisOptions?.keyPrefix ?? '';
}

/** The connections that together hold every key of `client`: each master of a Cluster, or the client itself. */
export function mastersOf(client: Redis | Cluster): Redis[] {
  return client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
}
