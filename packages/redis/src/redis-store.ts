import { StoreError } from '@idem/core';
import type {
  ClaimResult,
  IdempotencyRecord,
  IdempotencyStore,
  InspectedRecord,
  Lease,
  StoredResponse,
} from '@idem/core';
import { scanKeys } from '@idem/redis-kit';
import type { LeaseContext, LeaseStrategy, RequestKeys } from './lease-strategy.js';
import { resolveRedisStoreOptions, type RedisStoreOptions } from './options.js';
import { quorumLease } from './quorum-lease.js';
import { HASH_FIELDS, decodeHashRecord, decodeRecord } from './record.js';
import { isWrongType, withStoreCommands } from './scripts.js';
import { singleNodeLease } from './single-node-lease.js';
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
  /** The record with its PTTL, in one script that writes nothing (for `@idem/admin`). */
  inspect(key: string): Promise<InspectedRecord | undefined>;
  /**
   * PING on the records' node and, with independent lock masters, on each of them: resolves when
   * the records' node and a quorum of the lock masters answer within `commandTimeout`.
   */
  ping(): Promise<void>;
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

type ClaimOptions = { fingerprint: string | null; lockTtl: number };

/** A watch that no message ever wakes: waiting degrades to polling. */
const pollingOnly: Watch = {
  next: (ms) => new Promise((resolve) => setTimeout(resolve, ms, false)),
  stop() {},
};

/** Turns a synchronous throw of a store call into a rejection, as the store interface says. */
function settled<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * A store that keeps exactly-once across processes and machines on Redis: a single node, a
 * Cluster, or records on one node with the in-flight lock on a Redlock quorum of independent
 * masters. On one node (or a Cluster) a claim is one command (`SET … NX PX … GET`) that writes the
 * in-flight record, which is the lease, or hands back the record that stands; with independent
 * masters a Redlock lock (`retryCount: 0`) on them comes first (the two lease strategies,
 * lease-strategy.ts). The completed record is written by one Lua script only while the lease's
 * token still owns the key; waiters are woken by pub/sub.
 * Every Redis call is bounded by `commandTimeout` and throws on failure (503 or fail-open).
 *
 * @example
 * import { Redis } from 'ioredis';
 * app.use(idempotent({ store: redisStore({ client: new Redis(process.env.REDIS_URL) }) }));
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const resolved = resolveRedisStoreOptions(options);
  const { client, prefix, lockClients, lockOnClient, commandTimeout, pollInterval, logger } = resolved;
  const wakeups = pubsubWakeups(client, { timeoutMs: commandTimeout, logger });

  function keysOf(key: string): RequestKeys {
    // One hash tag per request key: record, lock and channel share a Cluster slot.
    const tag = `${prefix}{${key}}`;
    return { key, record: `${tag}:rec`, lock: `${tag}:lock`, channel: `${tag}:done` };
  }

  function bounded<T>(operation: string, promise: Promise<T>, ms = commandTimeout): Promise<T> {
    return withTimeout(promise, ms, operation);
  }

  /** Each SCAN call bounded like every other call of the store. */
  function scan<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return bounded(operation, call());
  }

  /** A previous version's hash record (a rolling deploy): one HMGET of its fields, by position. */
  function readHash(keys: RequestKeys): Promise<IdempotencyRecord | undefined> {
    return client.hmgetBuffer(keys.record, ...HASH_FIELDS).then(decodeHashRecord);
  }

  function read(keys: RequestKeys): Promise<IdempotencyRecord | undefined> {
    // One plain GET; WRONGTYPE means a hash of the previous version under the same key.
    const reading = client.getBuffer(keys.record).then(decodeRecord, (error: unknown) => {
      if (isWrongType(error)) return readHash(keys);
      throw error;
    });
    return bounded('get', reading);
  }

  const context: LeaseContext = { client, commands: withStoreCommands(client), commandTimeout, logger, bounded, read };
  // Chosen once: the lock on the records' node itself, or on independent masters.
  const lease: LeaseStrategy = lockOnClient ? singleNodeLease(context) : quorumLease(context, lockClients);
  const { getOrClaim } = lease;

  // Not async (one promise less per request): a throw becomes a rejection in `settled`.
  function claim(key: string, { fingerprint, lockTtl }: ClaimOptions): Promise<ClaimResult> {
    return settled(() => lease.claim(keysOf(key), fingerprint, lockTtl));
  }

  return {
    name: 'redis',

    get: (key) => read(keysOf(key)),

    claim,

    // Only where a claim reads too: the replay and the first claim in one command.
    ...(getOrClaim === undefined
      ? {}
      : {
          getOrClaim: (key: string, { fingerprint, lockTtl }: ClaimOptions) =>
            settled(() => getOrClaim(keysOf(key), fingerprint, lockTtl)),
        }),

    async extend(held: Lease, lockTtl: number) {
      return lease.extend(keysOf(held.key), held.token, lockTtl);
    },

    complete(held: Lease, response: StoredResponse, options: { fingerprint: string | null; ttl: number }) {
      // e.g. a body that is not bytes: a rejection, as the interface says
      return settled(() => lease.complete(keysOf(held.key), held.token, response, options));
    },

    async release(held: Lease) {
      await lease.release(keysOf(held.key), held.token);
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
          const peek = await bounded('waitFor', context.commands.idemPeek(keys.record));
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
      return (await lease.delete(keysOf(key))) > 0;
    },

    async inspect(key) {
      const reply = await bounded('inspect', context.commands.idemInspectBuffer(keysOf(key).record));
      if (reply === null) return undefined;
      // [value, pttl], or a previous version's hash fields and pttl.
      const record =
        reply.length === 2
          ? decodeRecord(reply[0] as Buffer)
          : decodeHashRecord(reply.slice(0, HASH_FIELDS.length) as (Buffer | null)[]);
      if (record === undefined) return undefined;
      const pttl = Number(reply[reply.length - 1]);
      // -1: no expiry (never written so by this store); -2: gone between the two reads (cannot
      // happen within one script, kept for safety).
      return { record, expiresInMs: pttl >= 0 ? pttl : null };
    },

    async ping() {
      await bounded('ping', client.ping());
      if (lockOnClient) return;
      const answers = await Promise.allSettled(lockClients.map((master) => bounded('ping', master.ping())));
      const up = answers.filter((answer) => answer.status === 'fulfilled').length;
      const quorum = Math.floor(lockClients.length / 2) + 1;
      if (up < quorum) {
        const failed = answers.find((answer) => answer.status === 'rejected');
        throw new StoreError(
          'ping',
          failed?.reason,
          `idem: store ping failed: ${up} of ${lockClients.length} lock masters answered, ${quorum} needed`,
        );
      }
    },

    async count() {
      let total = 0;
      await scanKeys(
        client,
        prefix,
        '{*}:rec',
        (_connection, keys) => {
          total += keys.length;
        },
        { run: scan },
      );
      return total;
    },

    async clear() {
      let removed = 0;
      for (const target of new Set([client, ...lockClients])) {
        await scanKeys(
          target,
          prefix,
          '{*',
          async (connection, keys) => {
            // On a Cluster node the keys of one batch span slots, so one UNLINK per key (pipelined).
            if (target.isCluster) {
              const results = await bounded('clear', connection.pipeline(keys.map((k) => ['unlink', k])).exec());
              for (const [error, count] of results ?? []) if (error === null) removed += Number(count);
            } else {
              removed += await bounded('clear', connection.unlink(...keys));
            }
          },
          { run: scan },
        );
      }
      return removed;
    },

    async close() {
      await wakeups.close();
    },
  };
}
