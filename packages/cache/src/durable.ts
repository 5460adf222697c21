import { CircuitBreaker } from './breaker.js';
import type { CacheEvents } from './events.js';
import type { PendingOp } from './invalidation-queue.js';
import type { Entry } from './memory-tier.js';
import type { ResolvedCacheOptions } from './options.js';
import type { BreakerState, DurableRecord, DurableTier } from './types.js';

const MAX_PENDING = 1_000;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * The entry L1 and L2 keep for a fresh durable record: no longer than the cache's own `ttl` and
 * `grace` from now, and never past the record's own times. It keeps the record's `createdAt`: the
 * value is as old as its load, so an `eagerRefresh` judges it by that age.
 * @internal
 */
export function fromDurable(record: Entry, ttl: number, grace: number, now: number): Entry {
  const expiresAt = Math.min(record.expiresAt, now + ttl);
  return { ...record, expiresAt, staleUntil: Math.min(record.staleUntil, expiresAt + grace), storedAt: 0, retryAt: 0 };
}

/** A queued invalidation; `repeat`: Redis got it before the tier did, so it is repeated there once it lands. */
interface Pending {
  op: PendingOp;
  repeat: boolean;
  /** Wakes the `apply()` that waits for this op: it landed, or failed and is queued. */
  settle?: () => void;
}

/** Whether `op` removes the record of `key` carrying `tags`. */
function covers(op: PendingOp, key: string, tags: readonly string[]): boolean {
  if (op.op === 'delete') return op.keys.includes(key);
  if (op.op === 'tags') return op.tags.some((tag) => tags.includes(tag));
  if (op.op === 'prefix') return key.startsWith(op.prefix);
  return true;
}

/**
 * The cache's side of a durable tier (docs/design.md, "The read-through cache"): values turned
 * into records and back with the cache's serializer, the tier's own ttl and grace applied, and
 * its failures contained. A read that fails is a miss; reads and writes go through a circuit
 * breaker of their own (the cache's `breaker` settings), so a database that hangs costs one
 * `queryTimeout`, not one per request. A write that fails is followed by a delete of the key (an
 * older value there must not outlive the one just stored). An invalidation waits for this
 * instance's writes still on their way, and one that fails is queued, in order, and retried on a
 * backoff timer until it lands; meanwhile reads of what it covers are misses, and once it lands
 * `onLanded` repeats it on Redis and the bus (another instance may have copied the old value back
 * there in between).
 * @internal
 */
export class DurableLayer {
  readonly #tier: DurableTier;
  readonly #options: ResolvedCacheOptions;
  readonly #events: CacheEvents;
  readonly #breaker: CircuitBreaker;
  /** Invalidations not yet applied: the one being sent first, then those queued after it. */
  readonly #pending: Pending[] = [];
  readonly #writes = new Set<Promise<void>>();
  #onLanded: (op: PendingOp) => void = () => {};
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_FIRST_MS;
  #sending = false;
  #closed = false;
  /** Calls of the tier that failed. */
  errors = 0;

  constructor(tier: DurableTier, options: ResolvedCacheOptions, events: CacheEvents) {
    this.#tier = tier;
    this.#options = options;
    this.#events = events;
    this.#breaker = new CircuitBreaker(
      options.breaker,
      () => performance.now(),
      (state, previous) => {
        options.logger.warn({ tier: tier.name, state, previous }, 'idem cache: durable tier circuit breaker');
      },
    );
  }

  /** Called with each queued invalidation once it has landed (the cache repeats it on Redis). */
  onLanded(listener: (op: PendingOp) => void): void {
    this.#onLanded = listener;
  }

  /** Invalidations not yet applied to the tier. */
  get pending(): number {
    return this.#pending.length;
  }

  get breakerState(): BreakerState {
    return this.#breaker.state;
  }

  /**
   * The entries of `keys` (in order) that have not passed their grace at `now`; undefined for the
   * others, for those a pending invalidation covers, and for all of them when the tier cannot be
   * read. Never throws.
   */
  async readMany(keys: readonly string[], now: number): Promise<(Entry | undefined)[]> {
    if (!this.#breaker.allow()) return keys.map(() => undefined);
    let records: (DurableRecord | undefined)[];
    try {
      records = await this.#tier.getMany(this.#options.namespace, keys, now);
      if (!Array.isArray(records) || records.length !== keys.length) {
        throw new TypeError(`${this.#tier.name}: getMany() must return one record or undefined per key`);
      }
      this.#breaker.success();
    } catch (error) {
      this.#breaker.failure();
      this.#failed('read', error);
      return keys.map(() => undefined);
    }
    return keys.map((key, i) => this.#toEntry(key, records[i], now));
  }

  /**
   * Stores `entry` for the tier's own ttl and grace (never shorter than the entry's). Never
   * throws. Resolves when the tier has answered; a caller that need not wait may leave it running
   * (invalidations and `close()` wait for it). `value`: the entry's value serialized.
   * `replaces`: the value replaces what the key held (`set`), so when it cannot be stored the key
   * is deleted there instead. A load's value that cannot be stored leaves the older record to its
   * own ttl, which is all a load promised it.
   */
  write(key: string, entry: Entry, value: Buffer, replaces: boolean): Promise<void> {
    const write = this.#write(key, entry, value, replaces).finally(() => this.#writes.delete(write));
    this.#writes.add(write);
    return write;
  }

  /** Applies an invalidation after this instance's writes on their way; queued if the tier cannot take it. Never throws. */
  async apply(op: PendingOp): Promise<void> {
    const idle = !this.#sending && this.#pending.length === 0 && this.#retryTimer === undefined;
    // Not sent now: the cache goes on to Redis before the tier has it, so it is repeated there.
    const item = this.#enqueue(op, !idle);
    if (!idle) return;
    const settled = new Promise<void>((resolve) => (item.settle = resolve));
    void this.#drain();
    await settled;
  }

  /** One last, bounded, attempt at the queued invalidations; then stops the retries and closes the tier's own timers (never the pool it was given). */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await Promise.allSettled([...this.#writes]);
    if (!this.#sending) await this.#drain();
    this.#closed = true;
    if (this.#pending.length > 0) {
      this.#options.logger.warn(
        { tier: this.#tier.name, lost: this.#pending.length },
        'idem cache: closed with invalidations the durable tier never took; its records expire by its own ttl',
      );
    }
    await this.#tier.close?.();
  }

  async #write(key: string, entry: Entry, value: Buffer, replaces: boolean): Promise<void> {
    const { ttl, grace } = this.#tier;
    const expiresAt = Math.max(entry.expiresAt, entry.createdAt + ttl);
    const record: DurableRecord = {
      value,
      createdAt: entry.createdAt,
      expiresAt,
      staleUntil: Math.max(entry.staleUntil, expiresAt + grace),
      tags: entry.tags,
    };
    if (this.#breaker.allow()) {
      try {
        await this.#tier.set(this.#options.namespace, key, record);
        this.#breaker.success();
        return;
      } catch (error) {
        this.#breaker.failure();
        this.#failed('write', error);
      }
    }
    if (!replaces) return;
    // What the tier held for the key was replaced by this value: it must not be served (reads of
    // the key are misses until the delete lands). Redis has the new value: no repeat there.
    this.#enqueue({ op: 'delete', keys: [key] }, false);
    if (!this.#sending) this.#scheduleRetry();
  }

  #toEntry(key: string, record: DurableRecord | undefined, now: number): Entry | undefined {
    if (record === undefined || record === null || now >= record.staleUntil) return undefined;
    const tags = Array.isArray(record.tags) ? record.tags : [];
    if (this.#pending.some(({ op }) => covers(op, key, tags))) return undefined;
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
      tags,
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

  #enqueue(op: PendingOp, repeat: boolean): Pending {
    if (this.#pending.length >= MAX_PENDING) {
      // Dropping one would let its old values come back: one clear of the namespace covers them all.
      for (const dropped of this.#pending.splice(this.#sending ? 1 : 0)) dropped.settle?.();
      const clear: Pending = { op: { op: 'clear', namespace: this.#options.namespace }, repeat: true };
      this.#pending.push(clear);
      this.#options.logger.warn(
        { tier: this.#tier.name },
        'idem cache: too many invalidations waiting for the durable tier; they became one clear of the namespace',
      );
      return clear;
    }
    const item: Pending = { op, repeat };
    this.#pending.push(item);
    return item;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#sending || this.#closed || this.#pending.length === 0) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#drain();
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  /**
   * Sends the queue in order, each op after the writes on their way; an op that Redis got first
   * is repeated there once it lands. At the first failure the rest waits for the retry timer,
   * which backs off while the tier stays away.
   */
  async #drain(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    let failed = false;
    let landedLate = false;
    try {
      while (this.#pending.length > 0) {
        const item = this.#pending[0] as Pending;
        await Promise.allSettled([...this.#writes]);
        try {
          await this.#send(item.op);
        } catch (error) {
          this.#failed(item.op.op, error);
          // Its caller goes on to Redis now, before the tier has it: repeat it there once it lands.
          item.repeat = true;
          item.settle?.();
          item.settle = undefined;
          failed = true;
          return;
        }
        this.#pending.shift();
        item.settle?.();
        if (item.repeat) {
          landedLate = true;
          this.#onLanded(item.op);
        }
      }
    } finally {
      this.#sending = false;
      if (failed) {
        this.#scheduleRetry();
        this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
      } else {
        this.#retryDelay = RETRY_FIRST_MS;
        if (landedLate) {
          this.#options.logger.info(
            { tier: this.#tier.name },
            'idem cache: the durable tier took the invalidations that waited for it',
          );
        }
      }
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
