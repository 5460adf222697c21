/**
 * Leases on independent masters: a Redlock lock on a quorum of `lockClients` (lock.ts) comes
 * first, then the in-flight record on the records' node marks the key and fences later writes.
 * Two steps, so every path that ends a lease ends both.
 */
import type { Cluster, Redis } from 'ioredis';
import { claimResult, boundedClaim, claimed, isOne, releaseQuietly, storeResponse } from './lease-strategy.js';
import type { LeaseContext, LeaseStrategy, RequestKeys } from './lease-strategy.js';
import { redlockLeaseLock } from './lock.js';
import { encodeInFlight } from './record.js';

const LAPSES = 'it lapses after lockTtl';

/** Acquires tried when a quorum refuses a key that no record marks (split votes). */
const SPLIT_VOTE_ATTEMPTS = 3;

/** A random pause before acquire number `attempt + 1`: 5–25 ms, growing with the attempt. */
function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, attempt * (5 + Math.random() * 20)));
}

function dbOf(client: Redis | Cluster): number {
  return client.isCluster ? 0 : ((client as Redis).options.db ?? 0);
}

/**
 * The Redlock-then-mark strategy over `lockClients`. Its claim takes the lock before it reads the
 * record, so it offers no `getOrClaim`.
 *
 * @example
 * const lease = quorumLease(context, [lockA, lockB, lockC]);
 */
export function quorumLease(context: LeaseContext, lockClients: readonly (Redis | Cluster)[]): LeaseStrategy {
  const { commands, bounded, commandTimeout, logger } = context;
  const db = dbOf(lockClients[0] as Redis | Cluster);
  const lock = redlockLeaseLock(lockClients, { timeoutMs: commandTimeout, db });
  // Each master's answer is already bounded by commandTimeout; this bounds a whole lock operation
  // (Redlock undoes a failed acquire in a second round) as a backstop.
  const lockTimeout = 2 * commandTimeout;

  /** One Redlock acquire, bounded; a lock taken after we gave up is given back. */
  async function acquire(keys: RequestKeys, lockTtl: number): Promise<string | undefined> {
    const acquiring = lock.acquire(keys.lock, lockTtl);
    try {
      return await bounded('claim', acquiring, lockTimeout);
    } catch (error) {
      // A lock taken after we gave up would block the key for a whole lease: give it back.
      const giveBack = (late: string | undefined): Promise<void> | undefined =>
        late === undefined ? undefined : releaseQuietly(strategy, logger, keys, late, 'taken after a timeout');
      acquiring.then(giveBack, () => {});
      throw error;
    }
  }

  const strategy: LeaseStrategy = {
    async claim(keys, fingerprint, lockTtl) {
      let token: string | undefined;
      for (let attempt = 1; ; attempt++) {
        token = await acquire(keys, lockTtl);
        if (token !== undefined) break;
        // Refused by a quorum. With a record standing, somebody holds the key: contention. With
        // none, the votes may have split between simultaneous claims (each holding a minority,
        // every one of them refused; likelier with a master down), so nobody would run: try
        // again after a random pause, which splits them apart, a few times.
        const record = await context.read(keys);
        if (record !== undefined || attempt >= SPLIT_VOTE_ATTEMPTS) return { acquired: false, record };
        await pause(attempt);
      }

      const value = encodeInFlight(token, fingerprint, Date.now());
      const marking = commands.idemMarkBuffer(keys.record, token, value, lockTtl);
      const marked = await boundedClaim(context, strategy, keys, token, marking, 'of a claim that failed');
      if (claimed(marked)) return claimResult(keys, token, marked);
      // Completed or owned by another lease meanwhile: our lock goes back, the standing record answers.
      await releaseQuietly(strategy, logger, keys, token, 'of a claim that lost the race');
      return claimResult(keys, token, marked);
    },

    async extend(keys, token, lockTtl) {
      if (!(await bounded('extend', lock.extend(keys.lock, token, lockTtl), lockTimeout))) return false;
      return isOne(await bounded('extend', commands.idemExtend(keys.record, token, lockTtl)));
    },

    complete(keys, token, response, options) {
      // The lock is released apart. A failure there must not turn a stored response into an error:
      // the record is completed, so a lock left behind delays nobody (claims read the record first)
      // and lapses by itself.
      return storeResponse(context, keys, token, response, options).then(async (stored) => {
        await bounded('release', lock.release(keys.lock, token), lockTimeout).catch((error: unknown) => {
          logger.warn(
            { err: error, key: keys.record },
            `idem: releasing the lock after storing the response failed; ${LAPSES}`,
          );
        });
        return isOne(stored);
      });
    },

    async release(keys, token) {
      await bounded('release', commands.idemRelease(keys.record, token, keys.channel));
      await bounded('release', lock.release(keys.lock, token), lockTimeout);
    },

    async delete(keys) {
      let removed = await bounded('delete', commands.idemDelete(keys.record, keys.lock, keys.channel));
      const results = await Promise.allSettled(lockClients.map((master) => bounded('delete', master.del(keys.lock))));
      for (const result of results) {
        if (result.status === 'fulfilled') removed += result.value;
        else
          logger.warn(
            { err: result.reason, key: keys.lock },
            `idem: deleting the lock on a lock master failed; ${LAPSES}`,
          );
      }
      return removed;
    },
  };
  return strategy;
}
