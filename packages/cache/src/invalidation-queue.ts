import { busMessage, type CacheContext } from './context.js';
import type { BusMessage } from './redis-tier.js';
import type { SingleFlight } from './single-flight.js';

/** An invalidation on its way to Redis (and the durable tier); queued when it cannot be reached. @internal */
export type PendingOp =
  | { op: 'delete'; keys: string[] }
  | { op: 'tags'; tags: string[] }
  | { op: 'prefix'; prefix: string }
  | { op: 'clear'; namespace: string };

/** Where an invalidation came from: this instance, or another one over the bus. */
type Origin = 'local' | 'remote';

const MAX_PENDING = 1_000;

/**
 * The invalidations (`delete`, `deleteByTag`, `deleteByPrefix`, `clear`, and another instance's `set`): applied to
 * this instance's L1 and running loads at once, sent to Redis and from there to every instance,
 * and, while Redis cannot be reached, queued (bounded, oldest dropped first) and replayed in order
 * when it is back, so the old value does not resurface there (docs/design.md, "The read-through
 * cache").
 * @internal
 */
export class InvalidationQueue {
  readonly #context: CacheContext;
  readonly #flights: SingleFlight;
  readonly #pending: PendingOp[] = [];
  #draining = false;

  constructor(context: CacheContext, flights: SingleFlight) {
    this.#context = context;
    this.#flights = flights;
    // An invalidation that reached the durable tier late: another instance may have copied the old
    // value back into Redis (and memory) from it meanwhile, so it is applied there once more.
    context.durable?.onLanded((op) => {
      this.#dropLocal(op);
      void this.#toRedis(op);
    });
  }

  /**
   * Sends `op` to the durable tier (if any), then to Redis; queues it for whichever cannot take
   * it now. The durable tier goes first: cleared before it, Redis could be refilled from it by
   * another instance's miss. L1 is expected clean already.
   */
  async apply(op: PendingOp): Promise<void> {
    await this.#context.durable?.apply(op);
    return this.#toRedis(op);
  }

  /** Applies `op` to this instance's L1 and running loads. */
  #dropLocal(op: PendingOp): void {
    if (op.op === 'delete') this.dropKeys(op.keys, 'local');
    else if (op.op === 'tags') this.dropTags(op.tags, 'local');
    else if (op.op === 'prefix') this.dropPrefix(op.prefix, 'local');
    else if (op.namespace === this.#context.options.namespace) this.dropAll('local');
  }

  async #toRedis(op: PendingOp): Promise<void> {
    if (this.#context.l2 === undefined) return;
    try {
      await this.#send(op);
      this.#context.counters.published++;
    } catch {
      // Reported through `l2Error`. L1 is already clean here; Redis and the other instances get
      // the invalidation when Redis is back.
      this.enqueue(op);
    }
  }

  /** Queues `op` for when Redis is back. */
  enqueue(op: PendingOp): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.#pending.shift();
      this.#context.options.logger.warn({}, 'idem cache: too many invalidations waiting for Redis; dropped the oldest');
    }
    this.#pending.push(op);
  }

  /** Replays the queue in order; stops at the first failure, to go on when Redis is usable again. */
  async drain(): Promise<void> {
    if (this.#draining || this.#pending.length === 0) return;
    this.#draining = true;
    try {
      while (this.#pending.length > 0) {
        try {
          await this.#send(this.#pending[0] as PendingOp);
        } catch {
          return;
        }
        this.#context.counters.published++;
        this.#pending.shift();
      }
      this.#context.options.logger.info({}, 'idem cache: replayed the invalidations that failed while Redis was away');
    } finally {
      this.#draining = false;
    }
  }

  /** Applies another instance's change, heard on the bus, to this instance's L1. */
  onRemote(message: BusMessage): void {
    if (message.t === 'set') {
      this.#context.l1.delete(message.k);
      this.#context.events.emit('invalidate', { kind: 'set', keys: [message.k], origin: 'remote' });
    } else if (message.t === 'del') {
      this.dropKeys(message.k, 'remote');
    } else if (message.t === 'tag') {
      this.dropTags(message.g, 'remote');
    } else if (message.t === 'pfx') {
      this.dropPrefix(message.p, 'remote');
    } else if (message.t === 'clr') {
      this.dropAll('remote');
    }
  }

  /** Drops keys from L1; their running loads answer their callers but keep nothing. */
  dropKeys(keys: readonly string[], origin: Origin): void {
    for (const key of keys) this.#context.l1.delete(key);
    this.#flights.invalidateKeys(keys);
    this.#context.events.emit('invalidate', { kind: 'delete', keys, origin });
  }

  /** Drops every L1 entry and running load carrying any of `tags`. */
  dropTags(tags: readonly string[], origin: Origin): void {
    this.#context.l1.deleteTags(tags);
    this.#flights.invalidateTags(tags);
    this.#context.events.emit('invalidate', { kind: 'tags', tags, origin });
  }

  /** Drops every L1 entry and running load whose key starts with `prefix`. */
  dropPrefix(prefix: string, origin: Origin): void {
    this.#context.l1.deletePrefix(prefix);
    this.#flights.invalidatePrefix(prefix);
    this.#context.events.emit('invalidate', { kind: 'prefix', prefix, origin });
  }

  /** Drops all of L1 and every running load. */
  dropAll(origin: Origin): void {
    this.#context.l1.clear();
    this.#flights.invalidateAll();
    this.#context.events.emit('invalidate', { kind: 'clear', origin });
  }

  #send(op: PendingOp): Promise<void> {
    const l2 = this.#context.l2;
    if (l2 === undefined) return Promise.resolve();
    if (op.op === 'delete') return l2.remove(op.keys, busMessage(this.#context, { t: 'del', k: op.keys }));
    if (op.op === 'tags') return l2.removeTags(op.tags, busMessage(this.#context, { t: 'tag', g: op.tags }));
    if (op.op === 'prefix') return l2.removePrefix(op.prefix, busMessage(this.#context, { t: 'pfx', p: op.prefix }));
    return l2.clear(op.namespace, busMessage(this.#context, { t: 'clr' }));
  }
}
