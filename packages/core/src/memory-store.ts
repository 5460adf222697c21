import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { checkOptions } from './config.js';
import { IdempotencyConfigError } from './errors.js';
import type {
  ClaimResult,
  CompletedRecord,
  IdempotencyRecord,
  IdempotencyStore,
  InspectedRecord,
  Lease,
  StoredResponse,
} from './types.js';

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** Most completed records kept; the least recently used go first. @default 10_000 */
  maxEntries?: number;
  /** Clock in epoch ms, for tests that move time. @default Date.now */
  clock?: () => number;
}

const fail = (option: string, message: string): IdempotencyConfigError => new IdempotencyConfigError(option, message);

interface Lock {
  token: string;
  fingerprint: string | null;
  startedAt: number;
  expiresAt: number;
}

interface Entry {
  record: CompletedRecord;
  expiresAt: number;
}

/**
 * The embedded store: exact within one process, bounded, TTL-correct. Completed records live in
 * an LRU bounded by `maxEntries`; in-flight leases live apart from it so that memory pressure can
 * never evict a running request's lock and let a duplicate through.
 *
 * @example
 * app.use(idempotent({ store: memoryStore({ maxEntries: 50_000 }) }));
 */
export function memoryStore(
  options: MemoryStoreOptions = {},
): IdempotencyStore & Required<Pick<IdempotencyStore, 'inspect' | 'ping'>> & { readonly size: number } {
  checkOptions(options, ['maxEntries', 'clock'], fail);
  const maxEntries = options.maxEntries ?? 10_000;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
    throw fail('maxEntries', `expected a positive integer, got ${String(options.maxEntries)}`);
  if (options.clock !== undefined && typeof options.clock !== 'function')
    throw fail('clock', 'expected a function returning epoch milliseconds');
  const now = options.clock ?? Date.now;
  const records = new LRUCache<string, Entry>({ max: maxEntries });
  const locks = new Map<string, Lock>();
  const waiters = new Map<string, Set<() => void>>();

  function completed(key: string): CompletedRecord | undefined {
    const entry = records.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now()) {
      records.delete(key);
      return undefined;
    }
    return entry.record;
  }

  function liveLock(key: string): Lock | undefined {
    const lock = locks.get(key);
    if (lock === undefined) return undefined;
    if (lock.expiresAt <= now()) {
      locks.delete(key);
      wake(key);
      return undefined;
    }
    return lock;
  }

  function wake(key: string): void {
    const set = waiters.get(key);
    if (set === undefined) return;
    waiters.delete(key);
    for (const resolve of set) resolve();
  }

  function owns(lease: Lease): Lock | undefined {
    const lock = liveLock(lease.key);
    return lock !== undefined && lock.token === lease.token ? lock : undefined;
  }

  async function claim(
    key: string,
    { fingerprint, lockTtl }: { fingerprint: string | null; lockTtl: number },
  ): Promise<ClaimResult> {
    const record = completed(key);
    if (record !== undefined) return { acquired: false, record };
    const lock = liveLock(key);
    if (lock !== undefined) {
      return {
        acquired: false,
        record: { state: 'in_flight', fingerprint: lock.fingerprint, startedAt: lock.startedAt },
      };
    }
    const startedAt = now();
    const token = randomUUID();
    locks.set(key, { token, fingerprint, startedAt, expiresAt: startedAt + lockTtl });
    return { acquired: true, lease: { key, token } };
  }

  return {
    name: 'memory',

    get size() {
      return records.size;
    },

    async get(key): Promise<IdempotencyRecord | undefined> {
      const record = completed(key);
      if (record !== undefined) return record;
      const lock = liveLock(key);
      return lock && { state: 'in_flight', fingerprint: lock.fingerprint, startedAt: lock.startedAt };
    },

    claim,
    // A claim costs no more than a read here.
    getOrClaim: claim,

    async extend(lease, lockTtl) {
      const lock = owns(lease);
      if (lock === undefined) return false;
      lock.expiresAt = now() + lockTtl;
      return true;
    },

    async complete(lease, response: StoredResponse, { fingerprint, ttl }) {
      if (owns(lease) === undefined) return false;
      const completedAt = now();
      records.set(lease.key, {
        record: { state: 'completed', fingerprint, completedAt, response },
        expiresAt: completedAt + ttl,
      });
      locks.delete(lease.key);
      wake(lease.key);
      return true;
    },

    async release(lease) {
      if (owns(lease) === undefined) return;
      locks.delete(lease.key);
      wake(lease.key);
    },

    waitFor(key, timeoutMs) {
      if (liveLock(key) === undefined) return Promise.resolve();
      const deadline = now() + timeoutMs;
      return new Promise<void>((resolve) => {
        let set = waiters.get(key);
        if (set === undefined) waiters.set(key, (set = new Set()));
        let timer: NodeJS.Timeout | undefined;
        function done(): void {
          clearTimeout(timer);
          set?.delete(done);
          resolve();
        }
        // A lock that expires without being released wakes nobody by itself: wake at its expiry.
        // Timers may fire a millisecond early against the clock, so re-check before giving up.
        function arm(): void {
          const lock = liveLock(key);
          const left = deadline - now();
          if (lock === undefined || left <= 0) return done();
          timer = setTimeout(arm, Math.max(1, Math.min(left, lock.expiresAt - now())));
        }
        set.add(done);
        arm();
      });
    },

    async inspect(key): Promise<InspectedRecord | undefined> {
      // peek, not get: an operator's look must not make a record recently used.
      const entry = records.peek(key);
      if (entry !== undefined && entry.expiresAt > now())
        return { record: entry.record, expiresInMs: entry.expiresAt - now() };
      const lock = liveLock(key);
      if (lock === undefined) return undefined;
      return {
        record: { state: 'in_flight', fingerprint: lock.fingerprint, startedAt: lock.startedAt },
        expiresInMs: lock.expiresAt - now(),
      };
    },

    async ping() {},

    async delete(key) {
      const hadRecord = records.delete(key);
      const hadLock = locks.delete(key);
      const had = hadRecord || hadLock;
      wake(key);
      return had;
    },

    async close() {
      for (const key of [...waiters.keys()]) wake(key);
      records.clear();
      locks.clear();
    },
  };
}
