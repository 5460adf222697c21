import type { ClaimResult, IdempotencyRecord, IdempotencyStore, Lease } from '@idem/core';
import type { Cluster, Redis } from 'ioredis';
import { scanKeys } from '@idem/redis-kit';
import { redlockLeaseLock } from './lock.js';
import { resolveRedisStoreOptions, type RedisStoreOptions } from './options.js';
import { randomUUID } from 'node:crypto';
import { RECORD_FIELDS, bodyBytes, decodeRecord, encodeMeta } from './record.js';
import { withStoreCommands } from './scripts.js';
import { withTimeout } from './timeout.js';
import { pubsubWakeups, type Watch } from './wakeups.js';

/**
 * The Redis store: an {@link IdempotencyStore} with admin helpers.
 *
 * @example
 * const store = redisStore({ client: redis });
 * console.log(await store.count(), 'idempotency records');
 */
export interface RedisStore extends IdempotencyStore {
  readonly name: 'redis';
  /** Records (completed and in flight) under the prefix, counted with SCAN on every master. */
  count(): Promise<number>;
  /**
   * Removes every key of this store (records and locks, on the lock masters too) with SCAN +
   * UNLINK and returns how many went. Running requests lose their locks: not for live traffic.
   */
  clear(): Promise<number>;
  /** Closes the store's own pub/sub connection and wakes its waiters; your clients stay open. */
  close(): Promise<void>;
}

interface RequestKeys {
  record: string;
  lock: string;
  channel: string;
}

/** A watch that no message ever wakes: waiting degrades to polling. */
const pollingOnly: Watch = {
  next: (ms) => new Promise((resolve) => setTimeout(resolve, ms, false)),
  stop() {},
};

const isOne = (reply: number): boolean => reply === 1;

function dbOf(client: Redis | Cluster): number {
  return client.isCluster ? 0 : ((client as Redis).options.db ?? 0);
}

/**
 * A store that keeps exactly-once across processes and machines on Redis: a single node, a
 * Cluster, or records on one node with the in-flight lock on a Redlock quorum of independent
 * masters. On one node (or a Cluster) a claim is one script that writes the in-flight record, which
 * is the lease; with independent masters a Redlock lock (`retryCount: 0`) on them comes first. The
 * completed record is written by one Lua script only while the lease's token still owns the key;
 * waiters are woken by pub/sub.
 * Every Redis call is bounded by `commandTimeout` and throws on failure (503 or fail-open).
 *
 * @example
 * import { Redis } from 'ioredis';
 * app.use(idempotent({ store: redisStore({ client: new Redis(process.env.REDIS_URL) }) }));
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const { client, prefix, lockClients, lockOnClient, commandTimeout, pollInterval, logger } = resolveRedisStoreOptions(options);
  const commands = withStoreCommands(client);
  const lock = redlockLeaseLock(lockClients, { timeoutMs: commandTimeout, db: dbOf(lockClients[0] as Redis | Cluster) });
  // Each master's answer is already bounded by commandTimeout; this bounds a whole lock operation
  // (Redlock undoes a failed acquire in a second round) as a backstop.
  const lockTimeout = 2 * commandTimeout;
  const wakeups = pubsubWakeups(client, { timeoutMs: commandTimeout, logger });

  function keysOf(key: string): RequestKeys {
    // One hash tag per request key: record, lock and channel share a Cluster slot.
    const tag = `${prefix}{${key}}`;
    return { record: `${tag}:rec`, lock: `${tag}:lock`, channel: `${tag}:done` };
  }

  function bounded<T>(operation: string, promise: Promise<T>, ms = commandTimeout): Promise<T> {
    return withTimeout(promise, ms, operation);
  }

  /** Each SCAN call bounded like every other call of the store. */
  function scan<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return bounded(operation, call());
  }

  async function get(key: string): Promise<IdempotencyRecord | undefined> {
    // One HMGET of the fields a reader needs, by position.
    return decodeRecord(await bounded('get', client.hmgetBuffer(keysOf(key).record, ...RECORD_FIELDS)));
  }

  /** Drops our in-flight record for `token`, and our lock on the lock masters. */
  async function release(keys: RequestKeys, token: string): Promise<void> {
    await bounded('release', commands.idemRelease(keys.record, token, keys.channel));
    if (!lockOnClient) await bounded('release', lock.release(keys.lock, token), lockTimeout);
  }

  /** Best effort, for paths that already answer: the lease lapses by itself if this fails. */
  function releaseQuietly(keys: RequestKeys, token: string, why: string): Promise<void> {
    return release(keys, token).catch((error: unknown) => {
      logger.warn({ err: error, key: keys.record }, `idem: releasing the lock ${why} failed; it lapses after lockTtl`);
    });
  }

  /**
   * The answer of a script that writes our in-flight record for `token`. When the call fails, a
   * release is queued behind it on the same connection, so it undoes the write even if it runs late.
   */
  function claimScript<T>(keys: RequestKeys, token: string, call: Promise<T>, why: string): Promise<T> {
    return withTimeout(call, commandTimeout, 'claim', () => void releaseQuietly(keys, token, why));
  }

  /** Redlock on independent masters, then the mark on the records' node: two steps. */
  async function claimOnMasters(key: string, keys: RequestKeys, fingerprint: string | null, lockTtl: number): Promise<ClaimResult> {
    const acquiring = lock.acquire(keys.lock, lockTtl);
    let token: string | undefined;
    try {
      token = await bounded('claim', acquiring, lockTimeout);
    } catch (error) {
      // A lock taken after we gave up would block the key for a whole lease: give it back.
      acquiring.then((late) => (late === undefined ? undefined : releaseQuietly(keys, late, 'taken after a timeout')), () => {});
      throw error;
    }
    if (token === undefined) return { acquired: false, record: await get(key) };

    const marked = await claimScript(keys, token, commands.idemMarkBuffer(keys.record, token, lockTtl, fingerprint ?? ''), 'of a claim that failed');
    if (marked === 1) return { acquired: true, lease: { key, token } };
    // Completed or owned by another lease meanwhile: our lock goes back, the standing record answers.
    await releaseQuietly(keys, token, 'of a claim that lost the race');
    return { acquired: false, record: decodeRecord(marked as (Buffer | null)[]) };
  }

  function claim(key: string, options: { fingerprint: string | null; lockTtl: number }): Promise<ClaimResult> {
    // Not async (one promise less per request), so a throw is turned into a rejection here.
    try {
      return claimOnce(key, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function claimOnce(key: string, { fingerprint, lockTtl }: { fingerprint: string | null; lockTtl: number }): Promise<ClaimResult> {
    const keys = keysOf(key);
    if (!lockOnClient) return claimOnMasters(key, keys, fingerprint, lockTtl);
    // The lease lives on the records' node: one script reads, and claims when nothing stands, by
    // writing the in-flight record that is the lock (DESIGN.md §4: "fewer where scripts merge them").
    const token = randomUUID();
    return claimScript(keys, token, commands.idemClaimBuffer(keys.record, token, lockTtl, fingerprint ?? ''), 'of a claim that timed out').then(
      (claimed): ClaimResult => (claimed === 1 ? { acquired: true, lease: { key, token } } : { acquired: false, record: decodeRecord(claimed as (Buffer | null)[]) }),
    );
  }

  return {
    name: 'redis',

    get,

    claim,

    // Only where the lock lives on the records' node: the replay and the first claim in one script.
    ...(lockOnClient ? { getOrClaim: claim } : {}),

    async extend(lease: Lease, lockTtl: number) {
      const keys = keysOf(lease.key);
      if (!lockOnClient && !(await bounded('extend', lock.extend(keys.lock, lease.token, lockTtl), lockTimeout))) return false;
      return (await bounded('extend', commands.idemExtend(keys.record, lease.token, lockTtl))) === 1;
    },

    complete(lease, response, { fingerprint, ttl }) {
      const keys = keysOf(lease.key);
      let storing: Promise<number>;
      try {
        storing = bounded('complete', commands.idemComplete(keys.record, lease.token, ttl, encodeMeta(response), bodyBytes(response), fingerprint ?? '', keys.channel));
      } catch (error) {
        return Promise.reject(error); // e.g. a body that is not bytes: a rejection, as the interface says
      }
      if (lockOnClient) return storing.then(isOne);
      // With the lock on independent masters it is released apart. A failure there must not turn
      // a stored response into an error: the record is completed, so a lock left behind delays
      // nobody (claims read the record first) and lapses by itself.
      return storing.then(async (stored) => {
        await bounded('release', lock.release(keys.lock, lease.token), lockTimeout).catch((error: unknown) => {
          logger.warn({ err: error, key: keys.record }, 'idem: releasing the lock after storing the response failed; it lapses after lockTtl');
        });
        return isOne(stored);
      });
    },

    async release(lease) {
      await release(keysOf(lease.key), lease.token);
    },

    async waitFor(key, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      const keys = keysOf(key);
      // Subscribe first, then check: a completion between the two is caught by one or the other.
      const watch = await wakeups.watch(keys.channel).catch((error: unknown) => {
        // The subscriber's node may be down while the key's node is fine (a Cluster): the checks
        // below still see every change, only later. Fail only if the key itself is unreachable.
        logger.warn({ err: error, key: keys.record }, 'idem: pub/sub subscription failed; waiting by polling');
        return pollingOnly;
      });
      try {
        for (;;) {
          const peek = await bounded('waitFor', commands.idemPeek(keys.record));
          if (peek === null || peek[0] === 'c') return;
          const remaining = deadline - Date.now();
          if (remaining <= 0) return;
          // A crashed holder wakes nobody: look again when its lease would lapse, and poll as a
          // backstop for messages lost while the subscriber reconnected.
          const lapse = peek[1] > 0 ? peek[1] + 1 : pollInterval;
          if (await watch.next(Math.min(remaining, pollInterval, lapse))) return;
        }
      } finally {
        watch.stop();
      }
    },

    async delete(key) {
      const keys = keysOf(key);
      let removed = await bounded('delete', commands.idemDelete(keys.record, keys.lock, keys.channel));
      if (!lockOnClient) {
        const results = await Promise.allSettled(lockClients.map((master) => bounded('delete', master.del(keys.lock))));
        for (const result of results) {
          if (result.status === 'fulfilled') removed += result.value;
          else logger.warn({ err: result.reason, key: keys.lock }, 'idem: deleting the lock on a lock master failed; it lapses after lockTtl');
        }
      }
      return removed > 0;
    },

    async count() {
      let total = 0;
      await scanKeys(client, prefix, '{*}:rec', (_connection, keys) => {
        total += keys.length;
      }, { run: scan });
      return total;
    },

    async clear() {
      let removed = 0;
      for (const target of new Set([client, ...lockClients])) {
        await scanKeys(target, prefix, '{*', async (connection, keys) => {
          // On a Cluster node the keys of one batch span slots, so one UNLINK per key (pipelined).
          if (target.isCluster) {
            const results = await bounded('clear', connection.pipeline(keys.map((k) => ['unlink', k])).exec());
            for (const [error, count] of results ?? []) if (error === null) removed += Number(count);
          } else {
            removed += await bounded('clear', connection.unlink(...keys));
          }
        }, { run: scan });
      }
      return removed;
    },

    async close() {
      await wakeups.close();
    },
  };
}
