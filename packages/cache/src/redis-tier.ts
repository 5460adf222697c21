import { bounded, defineScripts, scanKeys, scriptName } from '@idem/redis-kit';
import type { Redis } from 'ioredis';
import { CircuitBreaker } from './breaker.js';
import { CacheError } from './errors.js';
import type { CacheEvents } from './events.js';
import type { ResolvedCacheOptions } from './options.js';
import { SCRIPTS } from './scripts.js';
import type { Entry } from './memory-tier.js';

/** The pipeline method of the getOrLock script, answering Buffers (the kit's registered name). */
const GET_OR_LOCK_BUFFER = `${scriptName('idemCacheGetOrLock', SCRIPTS.idemCacheGetOrLock)}Buffer`;

/** Keys per SCAN (its COUNT hint) and per UNLINK of the prefix and namespace walks. */
const SCAN_BATCH = 1000;

type Fields = [Buffer | null, Buffer | null, Buffer | null, Buffer | null, Buffer | null];

/** The scripts as the kit's `defineScripts` hands them back, bound to the client. */
interface Scripts {
  idemCacheGetOrLockBuffer(
    entry: string,
    lock: string,
    now: number,
    token: string,
    lockTtl: number,
    createdAfter: number,
  ): Promise<[number, ...Fields]>;
  idemCacheWrite(numKeys: number, ...args: (string | number | Buffer)[]): Promise<number>;
  idemCacheRelease(lock: string, token: string, channel: string, message: string): Promise<number>;
  idemCacheRemove(numKeys: number, ...args: string[]): Promise<number>;
  idemCacheRemoveTags(numKeys: number, ...args: string[]): Promise<number>;
  idemCacheLease(lock: string, token: string, ms: number): Promise<number>;
}

/** What `getOrLock` found. @internal */
export type LockResult =
  | { kind: 'fresh'; entry: Entry }
  | { kind: 'locked'; entry: Entry | undefined }
  | { kind: 'busy'; entry: Entry | undefined };

/** A message on the bus. `i`: sender's instance id. @internal */
export type BusMessage =
  | { i: string; t: 'set' | 'rel'; k: string }
  | { i: string; t: 'del'; k: string[] }
  | { i: string; t: 'tag'; g: string[] }
  | { i: string; t: 'pfx'; p: string }
  | { i: string; t: 'clr' };

/**
 * The Redis tier: entry reads and writes, the loader lock, invalidation. Every call is bounded
 * by `redisTimeout` and guarded by the circuit breaker, and fails fast while the connection is
 * not ready (so nothing piles up in ioredis' offline queue to be replayed late).
 * @internal
 */
export class RedisTier {
  readonly #client: Redis;
  readonly #scripted: Scripts;
  readonly #options: ResolvedCacheOptions;
  readonly #events: CacheEvents;
  readonly #breaker: CircuitBreaker;
  readonly #base: string;
  /** Bus channel of this namespace. */
  readonly channel: string;
  errors = 0;
  #seenReady: boolean;

  readonly #onReady: () => void;

  /** `onAvailable` runs whenever Redis is usable again (connection ready, breaker closed). */
  constructor(client: Redis, options: ResolvedCacheOptions, events: CacheEvents, onAvailable: () => void) {
    this.#client = client;
    this.#options = options;
    this.#events = events;
    // Hash-tagging the namespace keeps an entry, its lock and its tag sets in one Cluster slot.
    this.#base = `${options.prefix}{${options.namespace}}:`;
    this.channel = RedisTier.channelOf(options.prefix, options.namespace);
    // Registered once per client, shared by every cache built on it.
    this.#scripted = defineScripts<Scripts>(client, SCRIPTS);
    this.#seenReady = client.status === 'ready';
    this.#onReady = () => {
      this.#seenReady = true;
      onAvailable();
    };
    client.on('ready', this.#onReady);
    this.#breaker = new CircuitBreaker(
      options.breaker,
      () => performance.now(),
      (state, previous) => {
        options.logger[state === 'open' ? 'warn' : 'info'](
          { state, previous },
          'idem cache: Redis circuit breaker changed state',
        );
        events.emit('breaker', { state, previous });
        if (state === 'closed') onAvailable();
      },
    );
  }

  /** Stops listening to the user's client. */
  detach(): void {
    this.#client.off('ready', this.#onReady);
  }

  /** The bus channel of a namespace. */
  static channelOf(prefix: string, namespace: string): string {
    return `${prefix}${namespace}:bus`;
  }

  get breakerState(): CircuitBreaker['state'] {
    return this.#breaker.state;
  }

  entryKey(key: string): string {
    return `${this.#base}v:${key}`;
  }

  #lockKey(key: string): string {
    return `${this.#base}l:${key}`;
  }

  #tagKey(tag: string): string {
    return `${this.#base}t:${tag}`;
  }

  /** Runs one Redis call under the timeout, the breaker and the readiness check. */
  async #run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (!this.#breaker.allow()) {
      throw this.#fail(
        new CacheError('cache_breaker_open', `circuit breaker open, ${operation} not sent to Redis`, { operation }),
        false,
      );
    }
    const status = this.#client.status;
    if (
      status !== 'ready' &&
      status !== 'wait' &&
      (this.#seenReady || (status !== 'connecting' && status !== 'connect'))
    ) {
      // Connection known to be down: answer at once, so nothing piles up in ioredis' offline queue
      // to be replayed late. (Before the first connection, commands may queue: bounded below.)
      // The breaker is for a server that hangs or errors, not for one we know is unreachable, so
      // this does not count against it.
      this.#breaker.abandon();
      throw this.#fail(
        new CacheError('cache_l2_unavailable', `Redis connection is ${status}, ${operation} not sent`, { operation }),
        false,
      );
    }
    const ms = this.#options.redisTimeout;
    const pending = call();
    try {
      // A command that timed out may still settle later; the kit's bounded call drops its outcome.
      const timeout = (): CacheError =>
        new CacheError('cache_l2_timeout', `${operation} took longer than ${ms}ms`, { operation });
      const result = await bounded(pending, ms, timeout);
      this.#breaker.success();
      return result;
    } catch (error) {
      const message = `${operation} failed: ${(error as Error)?.message ?? String(error)}`;
      const wrapped =
        error instanceof CacheError
          ? error
          : new CacheError('cache_l2_unavailable', message, { operation, cause: error });
      throw this.#fail(wrapped, true);
    }
  }

  #fail(error: CacheError, countsAgainstBreaker: boolean): CacheError {
    if (countsAgainstBreaker) this.#breaker.failure();
    this.errors++;
    this.#options.logger.debug({ err: error, operation: error.operation }, 'idem cache: Redis call failed');
    this.#events.emit('l2Error', { operation: error.operation ?? 'unknown', error });
    return error;
  }

  #decode(key: string, fields: Fields | (Buffer | null)[]): Entry | undefined {
    const [v, e, s, c, t] = fields;
    if (v == null || e == null || s == null || c == null) return undefined;
    let value: unknown;
    let tags: string[];
    try {
      value = this.#options.serializer.deserialize(v);
      tags = t == null ? [] : (JSON.parse(t.toString()) as string[]);
    } catch (error) {
      // A value we cannot read is a miss, not an outage: the loader will overwrite it.
      this.#options.logger.warn(
        { err: error, key },
        'idem cache: could not deserialize a Redis entry; treating it as missing',
      );
      return undefined;
    }
    return {
      value,
      expiresAt: Number(e.toString()),
      staleUntil: Number(s.toString()),
      createdAt: Number(c.toString()),
      tags,
      storedAt: 0,
      retryAt: 0,
    };
  }

  /** Reads an entry (fresh or not) as stored. */
  async read(key: string): Promise<Entry | undefined> {
    const fields = await this.#run('read', () => this.#client.hmgetBuffer(this.entryKey(key), 'v', 'e', 's', 'c', 't'));
    return this.#decode(key, fields);
  }

  /** One round trip: the fresh entry, or the lock (with whatever expired entry there is). */
  async getOrLock(key: string, now: number, token: string, createdAfter: number): Promise<LockResult> {
    const [status, ...fields] = await this.#run('getOrLock', () =>
      this.#scripted.idemCacheGetOrLockBuffer(
        this.entryKey(key),
        this.#lockKey(key),
        now,
        token,
        this.#options.lockTtl,
        createdAfter,
      ),
    );
    const entry = this.#decode(key, fields);
    if (status === 0 && entry !== undefined) return { kind: 'fresh', entry };
    return { kind: status === 1 ? 'locked' : 'busy', entry };
  }

  /**
   * `getOrLock` for many keys in one round trip (a pipeline: the keys of a namespace share one
   * hash tag, so one Cluster node takes all of it). `tokens[i]` is the lock token of `keys[i]`.
   */
  async getOrLockMany(keys: readonly string[], now: number, tokens: readonly string[]): Promise<LockResult[]> {
    const replies = await this.#run('getOrLockMany', async () => {
      const pipeline = this.#client.pipeline() as unknown as Record<string, (...args: unknown[]) => unknown> & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      const command = pipeline[GET_OR_LOCK_BUFFER] as (...args: unknown[]) => unknown;
      for (const [i, key] of keys.entries()) {
        command.call(pipeline, this.entryKey(key), this.#lockKey(key), now, tokens[i], this.#options.lockTtl, -1);
      }
      const results = (await pipeline.exec()) ?? [];
      for (const [error] of results) if (error) throw error;
      return results.map(([, reply]) => reply as [number, ...Fields]);
    });
    return replies.map(([status, ...fields], i) => {
      const entry = this.#decode(keys[i] as string, fields);
      if (status === 0 && entry !== undefined) return { kind: 'fresh', entry };
      return { kind: status === 1 ? 'locked' : 'busy', entry };
    });
  }

  /** Writes an entry (its value serialized: `bytes`), releases our lock (if `token`), and publishes `message`. */
  async write(
    key: string,
    entry: Entry,
    bytes: Buffer,
    now: number,
    token: string,
    message: BusMessage,
  ): Promise<void> {
    const life = Math.max(1, Math.ceil(entry.staleUntil - now));
    const keys = [this.entryKey(key), this.#lockKey(key), ...entry.tags.map((tag) => this.#tagKey(tag))];
    await this.#run('write', () =>
      this.#scripted.idemCacheWrite(
        keys.length,
        ...keys,
        bytes,
        entry.expiresAt,
        entry.staleUntil,
        entry.createdAt,
        JSON.stringify(entry.tags),
        life,
        token,
        this.channel,
        JSON.stringify(message),
      ),
    );
  }

  /** Frees our lock after a failed load and wakes the waiters. */
  async release(key: string, token: string, message: BusMessage): Promise<void> {
    await this.#run('release', () =>
      this.#scripted.idemCacheRelease(this.#lockKey(key), token, this.channel, JSON.stringify(message)),
    );
  }

  /** Takes the lock of warm schedule `name` for `ms` if nobody holds it. */
  async tryScheduleLock(name: string, token: string, ms: number): Promise<boolean> {
    const set = await this.#run('warmLock', () => this.#client.set(`${this.#base}w:${name}`, token, 'PX', ms, 'NX'));
    return set === 'OK';
  }

  /** Keeps our lock of schedule `name` for `ms` more (0: frees it). */
  async leaseScheduleLock(name: string, token: string, ms: number): Promise<void> {
    await this.#run('warmLock', () => this.#scripted.idemCacheLease(`${this.#base}w:${name}`, token, ms));
  }

  /** Deletes entries and tells every instance. */
  async remove(keys: readonly string[], message: BusMessage): Promise<void> {
    const entryKeys = keys.map((k) => this.entryKey(k));
    await this.#run('delete', () =>
      this.#scripted.idemCacheRemove(entryKeys.length, ...entryKeys, this.channel, JSON.stringify(message)),
    );
  }

  /** Deletes every entry of these tags and tells every instance. */
  async removeTags(tags: readonly string[], message: BusMessage): Promise<void> {
    const tagKeys = tags.map((t) => this.#tagKey(t));
    await this.#run('deleteByTag', () =>
      this.#scripted.idemCacheRemoveTags(tagKeys.length, ...tagKeys, this.channel, JSON.stringify(message)),
    );
  }

  /**
   * Deletes every entry whose key starts with `prefix` and tells every instance: SCAN (never
   * KEYS) in batches of about {@link SCAN_BATCH}, on every master of a Cluster, each batch unlinked
   * on the node that holds it. A key written while the walk runs may be missed, as with `clear()`.
   */
  async removePrefix(prefix: string, message: BusMessage): Promise<void> {
    const run = <T>(operation: string, call: () => Promise<T>): Promise<T> => this.#run(operation, call);
    await scanKeys(
      this.#client,
      this.entryKey(prefix),
      '*',
      async (connection, found) => {
        for (let i = 0; i < found.length; i += SCAN_BATCH) {
          const batch = found.slice(i, i + SCAN_BATCH);
          await this.#run('deleteByPrefix', () => connection.unlink(...batch));
        }
      },
      { run, operation: 'deleteByPrefix', count: SCAN_BATCH },
    );
    await this.#run('deleteByPrefix', () => this.#client.publish(this.channel, JSON.stringify(message)));
  }

  /**
   * Deletes every key of a namespace and tells its instances: SCAN (never KEYS) on every master of
   * a Cluster, each batch unlinked on the node that holds it. An ioredis `keyPrefix` is honoured
   * by the kit's SCAN. Each call goes through the timeout and the breaker like any other.
   */
  async clear(namespace: string, message: BusMessage): Promise<void> {
    const run = <T>(operation: string, call: () => Promise<T>): Promise<T> => this.#run(operation, call);
    // One namespace is one hash tag: a batch from one node lies in one slot, so one UNLINK takes it.
    await scanKeys(
      this.#client,
      `${this.#options.prefix}{${namespace}}:`,
      '*',
      async (connection, found) => {
        await this.#run('clear', () => connection.unlink(...found));
      },
      { run, operation: 'clear', count: SCAN_BATCH },
    );
    await this.#run('clear', () =>
      this.#client.publish(RedisTier.channelOf(this.#options.prefix, namespace), JSON.stringify(message)),
    );
  }
}
