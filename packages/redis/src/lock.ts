/**
 * The in-flight lock: Redlock (`@sesamecare-oss/redlock`) behind three calls, so that another
 * implementation can replace it without touching the store. Whatever replaces it must keep the
 * Redlock layout the store's scripts rely on: the lock is the string key `resource` holding the
 * token, with a PX expiry, on every master.
 *
 * Redlock alone reports every failure as one `ExecutionError` whose votes are only readable once
 * *all* masters have answered, and a paused master never answers. So each operation runs on its
 * own Redlock over thin wrappers of the clients that (1) bound every call by `timeoutMs` and
 * (2) tally the votes as they arrive. That lets the store tell "somebody holds it" (contention,
 * an answer) from "too few masters answered" (a failure, thrown) at the moment Redlock gives up.
 */
import { ExecutionError, Lock, Redlock } from '@sesamecare-oss/redlock';
import type { Cluster, Redis } from 'ioredis';
import { LockUnavailableError, RedisTimeoutError } from './errors.js';
import { withTimeout } from './timeout.js';

/** A client Redlock can lock on: one ioredis connection or one Cluster. */
export type LockClient = Redis | Cluster;

/** A lease lock over one or more independent masters. */
export interface LeaseLock {
  /** The token when the lock was taken; undefined when somebody else holds it. Throws when too few masters answer. */
  acquire(resource: string, ttl: number): Promise<string | undefined>;
  /** True when the lock was still ours and now lives `ttl` more; false when it was lost. Throws when too few masters answer. */
  extend(resource: string, token: string, ttl: number): Promise<boolean>;
  /** Drops the lock if it is still ours. Throws when too few masters answer. */
  release(resource: string, token: string): Promise<void>;
}

type Script = 'acquireLock' | 'extendLock' | 'releaseLock';
const SCRIPTS: ReadonlySet<PropertyKey> = new Set<Script>(['acquireLock', 'extendLock', 'releaseLock']);

/** What the masters said to one operation so far. */
interface Tally {
  /** Applied (locked, extended, released). */
  applied: number;
  /** Answered, but refused: the key is held by another token (or, for extend/release, not by ours). */
  refused: number;
  /** Failed or timed out. */
  failed: number;
  lastError: Error | undefined;
}

export interface LeaseLockOptions {
  /** Longest wait for one master's answer. */
  timeoutMs: number;
  /** Database Redlock's scripts SELECT; must be the database of the store's records when they share a node. */
  db: number;
}

/**
 * A {@link LeaseLock} over `clients`, the independent masters of a Redlock quorum (one client
 * means a quorum of one).
 *
 * @example
 * const lock = redlockLeaseLock([redis], { timeoutMs: 1_000, db: 0 });
 * const token = await lock.acquire('idem:{k}:lock', 30_000); // undefined: held elsewhere
 */
export function redlockLeaseLock(clients: readonly LockClient[], options: LeaseLockOptions): LeaseLock {
  const { timeoutMs, db } = options;
  const quorum = Math.floor(clients.length / 2) + 1;

  /**
   * Runs one operation on a fresh Redlock whose clients count the votes of `script`. Redlock
   * instances hold no connections, so one per operation costs a few objects.
   */
  function session(script: Script): { redlock: Redlock; tally: Tally } {
    const tally: Tally = { applied: 0, refused: 0, failed: 0, lastError: undefined };
    const wrapped = clients.map((client) => countingClient(client, script, tally, timeoutMs));
    // retryCount 0: contention is an answer for the caller (409 or wait), not a reason to spin here.
    const redlock = new Redlock(wrapped, { retryCount: 0, db });
    return { redlock, tally };
  }

  /**
   * Redlock gave up on `error`: throws when too few masters answered to decide (a failure), and
   * returns when a quorum answered and refused (contention, or a lease that is not ours). Redlock
   * gives up as soon as a quorum is against; short of a quorum of answers, let the remaining votes
   * in first (each is bounded by `timeoutMs`): a healthy master's late "refused" is not silence.
   */
  async function judge(operation: string, error: unknown, tally: Tally): Promise<void> {
    if (!(error instanceof ExecutionError)) throw error;
    if (tally.applied + tally.refused < quorum) await Promise.all(error.attempts);
    const answered = tally.applied + tally.refused;
    if (answered < quorum) throw new LockUnavailableError(operation, answered, quorum, tally.lastError);
  }

  function held(resource: string, token: string, redlock: Redlock): Lock {
    // The server decides whether the token still owns the key; the local expiry must not pre-empt it.
    return new Lock(redlock, [resource], token, [], Number.POSITIVE_INFINITY);
  }

  return {
    async acquire(resource, ttl) {
      const { redlock, tally } = session('acquireLock');
      let lock: Lock;
      try {
        lock = await redlock.acquire([resource], ttl);
      } catch (error) {
        await judge('lock', error, tally);
        return undefined;
      }
      // Redlock's validity rule: a lock that took longer to take than it lives was never held.
      if (lock.expiration <= Date.now()) {
        await redlock.release(lock).catch(() => {});
        throw new LockUnavailableError(
          'lock',
          tally.applied,
          quorum,
          new Error('the lease expired while it was being taken'),
        );
      }
      return lock.value;
    },

    async extend(resource, token, ttl) {
      const { redlock, tally } = session('extendLock');
      try {
        await redlock.extend(held(resource, token, redlock), ttl);
        return true;
      } catch (error) {
        await judge('extend', error, tally);
        return false;
      }
    },

    async release(resource, token) {
      const { redlock, tally } = session('releaseLock');
      try {
        await redlock.release(held(resource, token, redlock));
      } catch (error) {
        // A quorum that answered "not ours" means there is nothing of ours left to release.
        await judge('release', error, tally);
      }
    },
  };
}

/**
 * `client` as Redlock sees it, except that the `script` calls are bounded by `timeoutMs` and their
 * outcome is counted into `tally`. Everything else (notably `defineCommand`, which Redlock uses to
 * register its scripts on the real client once) passes straight through.
 */
function countingClient(client: LockClient, script: Script, tally: Tally, timeoutMs: number): LockClient {
  // A master that timed out once in this operation is not waited for again (Redlock undoes a
  // failed acquire on every master): the undo is still sent, queued behind the command it
  // undoes, but the operation does not spend a second timeout on it.
  let silent = false;
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (!SCRIPTS.has(property)) return value.bind(target);
      const call = value as (...args: unknown[]) => Promise<unknown>;
      return async function boundedLockScript(...args: unknown[]): Promise<unknown> {
        try {
          const sent = call.apply(target, args);
          if (silent) {
            sent.catch(() => {});
            throw new RedisTimeoutError(String(property), timeoutMs);
          }
          const result = await withTimeout(sent, timeoutMs, String(property)).catch((error: unknown) => {
            if (error instanceof RedisTimeoutError) silent = true;
            throw error;
          });
          // Redlock's scripts answer with the number of keys they applied to; ours lock one key.
          if (property === script) {
            if (result === 1) tally.applied++;
            else tally.refused++;
          }
          return result;
        } catch (error) {
          if (property === script) {
            tally.failed++;
            tally.lastError = error instanceof Error ? error : new Error(String(error));
          }
          throw error;
        }
      };
    },
  });
}
