import type { CacheEvents } from './events.js';
import type { PendingOp } from './invalidation-queue.js';
import type { Entry } from './memory-tier.js';
import type { ResolvedCacheOptions } from './options.js';
import type { DurableRecord, DurableTier } from './types.js';

const MAX_PENDING = 1_000;

/**
 * The entry L1 and L2 keep for a fresh durable record: no longer than the cache's own `ttl` and
 * `grace` from now, as if it had just been loaded, and never past the record's own times.
 * @internal
 */
export function fromDurable(record: Entry, ttl: number, grace: number, now: number): Entry {
  const expiresAt = Math.min(record.expiresAt, now + ttl);
  return { ...record, expiresAt, staleUntil: Math.min(record.staleUntil, expiresAt + grace), storedAt: 0, retryAt: 0 };
}
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * The cache's side of a durable tier (docs/design.md, "The read-through cache"): values turned
 * into records and back with the cache's serializer, the tier's own ttl and grace applied, and
 * its failures contained. A read that fails is a miss, a write that fails is followed by a
 * delete of the key (an older value there must not outlive the one just stored), and an
 * invalidation that fails is queued, in order, and retried on a backoff timer until it lands.
 * @internal
 */
export class DurableLayer {
  readonly #tier: DurableTier;
  readonly #options: ResolvedCacheOptions;
  readonly #events: CacheEvents;
  readonly #pending: PendingOp[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_FIRST_MS;
  #draining = false;
  #closed = false;
  /** Calls of the tier that failed. */
  errors = 0;

  constructor(tier: DurableTier, options: ResolvedCacheOptions, events: CacheEvents) {
    this.#tier = tier;
    this.#options = options;
    this.#events = events;
  }

  /** Invalidations waiting to reach the tier again. */
  get pending(): number {
    return this.#pending.length;
  }

  /**
   * The entries of `keys` (in order) that have not passed their grace at `now`; undefined for the
   * others, and for all of them when the tier cannot be read.
   */
  async readMany(keys: readonly string[], now: number): Promise<(Entry | undefined)[]> {
    let records: (DurableRecord | undefined)[];
    try {
      records = await this.#tier.getMany(this.#options.namespace, keys, now);
    } catch (error) {
      this.#failed('read', error);
      return keys.map(() => undefined);
    }
    return keys.map((key, i) => this.#toEntry(key, records[i], now));
  }

  /** Stores `entry` for the tier's own ttl and grace (never shorter than the entry's). Never throws. */
  async write(key: string, entry: Entry): Promise<void> {
    const { ttl, grace } = this.#tier;
    const expiresAt = Math.max(entry.expiresAt, entry.createdAt + ttl);
    let value: Buffer;
    try {
      const bytes = this.#options.serializer.serialize(entry.value);
      value =
        typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      // Already logged by the Redis tier when there is one; the user's to fix either way.
      this.#options.logger.error(
        { err: error, key },
        'idem cache: value not kept in the durable tier, it could not be serialized',
      );
      return;
    }
    const record: DurableRecord = {
      value,
      createdAt: entry.createdAt,
      expiresAt,
      staleUntil: Math.max(entry.staleUntil, expiresAt + grace),
      tags: entry.tags,
    };
    try {
      await this.#tier.set(this.#options.namespace, key, record);
    } catch (error) {
      this.#failed('write', error);
      // Whatever the tier held for the key before is older than this value: it must not be served.
      this.#enqueue({ op: 'delete', keys: [key] });
    }
  }

  /** Applies an invalidation; queued behind any that wait, so they land in order. Never throws. */
  async apply(op: PendingOp): Promise<void> {
    if (this.#pending.length > 0 || this.#draining) {
      this.#enqueue(op);
      return;
    }
    try {
      await this.#send(op);
    } catch (error) {
      this.#failed(op.op, error);
      this.#enqueue(op);
    }
  }

  /** Stops the retries and closes the tier's own timers (never the pool it was given). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    await this.#tier.close?.();
  }

  #toEntry(key: string, record: DurableRecord | undefined, now: number): Entry | undefined {
    if (record === undefined || now >= record.staleUntil) return undefined;
    let value: unknown;
    try {
      value = this.#options.serializer.deserialize(record.value);
    } catch (error) {
      this.#options.logger.warn(
        { err: error, key },
        'idem cache: could not deserialize a durable record; treating it as missing',
      );
      return undefined;
    }
    return {
      value,
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      staleUntil: record.staleUntil,
      tags: record.tags,
      storedAt: 0,
      retryAt: 0,
    };
  }

  #send(op: PendingOp): Promise<void> {
    const tier = this.#tier;
    const namespace = this.#options.namespace;
    if (op.op === 'delete') return tier.delete(namespace, op.keys);
    if (op.op === 'tags') return tier.deleteByTag(namespace, op.tags);
    if (op.op === 'prefix') return tier.deleteByPrefix(namespace, op.prefix);
    return tier.clear(op.namespace);
  }

  #enqueue(op: PendingOp): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.#pending.shift();
      this.#options.logger.warn(
        {},
        'idem cache: too many invalidations waiting for the durable tier; dropped the oldest',
      );
    }
    this.#pending.push(op);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#draining || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#drain();
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  /** Replays the queue in order; at the first failure, waits longer and tries again. */
  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        try {
          await this.#send(this.#pending[0] as PendingOp);
        } catch (error) {
          this.#failed('retry', error);
          this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
          return;
        }
        this.#pending.shift();
      }
      this.#retryDelay = RETRY_FIRST_MS;
      this.#options.logger.info(
        {},
        'idem cache: the durable tier took the invalidations that failed while it was away',
      );
    } finally {
      this.#draining = false;
      if (this.#pending.length > 0) this.#scheduleRetry();
    }
  }

  #failed(operation: string, error: unknown): void {
    this.errors++;
    // Invalidations matter to correctness and are few; reads and writes fail at the request rate.
    const level = operation === 'read' || operation === 'write' ? 'debug' : 'warn';
    this.#options.logger[level](
      { err: error, tier: this.#tier.name, operation },
      'idem cache: durable tier call failed',
    );
    this.#events.emit('durableError', { operation, error });
  }
}
