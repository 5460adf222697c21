import { randomUUID } from 'node:crypto';
import { Bus } from './bus.js';
import { joinFlight } from './caller-timeouts.js';
import type { CacheContext } from './context.js';
import { CacheCounters } from './counters.js';
import { DurableLayer, fromDurable } from './durable.js';
import { createEntry, toResult } from './entry.js';
import { CacheConfigError, CacheError } from './errors.js';
import { CacheEvents } from './events.js';
import { InvalidationQueue } from './invalidation-queue.js';
import { MemoryTier, type Entry } from './memory-tier.js';
import {
  resolveCacheOptions,
  resolveCallOptions,
  tagList,
  type ResolvedCacheOptions,
  type ResolvedCallOptions,
} from './options.js';
import { RedisTier, type BusMessage } from './redis-tier.js';
import { SingleFlight } from './single-flight.js';
import type {
  BatchLoader,
  Cache,
  CacheOptions,
  CacheResult,
  CacheStats,
  Duration,
  GetOrSetOptions,
  Loader,
  SetOptions,
  WarmEntry,
  WarmEveryOptions,
  WarmSchedule,
  WarmSource,
  WrapOptions,
  Wrapped,
} from './types.js';
import { WarmSchedules } from './warm-schedule.js';
import { writeThrough } from './write-through.js';

const WARM_CONCURRENCY = 16;

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new CacheConfigError('key', `expected a string, got ${typeof key}`);
}

/**
 * @internal The cache behind `createCache()`: the public methods, wired to the jobs they hand
 * work to: loading and single-flight (`single-flight.ts`), each caller's timeouts
 * (`caller-timeouts.ts`) and the invalidations (`invalidation-queue.ts`).
 */
class TieredCache implements Cache {
  readonly events = new CacheEvents();
  readonly #context: CacheContext;
  readonly #flights: SingleFlight;
  readonly #invalidations: InvalidationQueue;
  readonly #schedules: WarmSchedules;
  #closed = false;

  constructor(options: ResolvedCacheOptions) {
    const events = this.events;
    const id = randomUUID();
    const l1 = new MemoryTier(options);
    let l2: RedisTier | undefined;
    let bus: Bus | undefined;
    if (options.redis !== undefined) {
      // Both call back only later, from Redis events, when the queue below exists.
      l2 = new RedisTier(options.redis, options, events, () => void this.#invalidations.drain());
      const handlers = {
        onMessage: (message: BusMessage) => this.#invalidations.onRemote(message),
        onRecovered: () => {
          l1.expireAll();
          void this.#invalidations.drain();
        },
      };
      bus = new Bus(options.redis, l2.channel, id, handlers, events, options.logger);
    }
    const counters = new CacheCounters(events, options.logger, () => options.clock());
    const durable = options.durable === undefined ? undefined : new DurableLayer(options.durable, options, events);
    this.#context = { options, events, counters, l1, l2, bus, durable, id };
    this.#flights = new SingleFlight(this.#context);
    this.#invalidations = new InvalidationQueue(this.#context, this.#flights);
    this.#schedules = new WarmSchedules(this.#context, (entries) => this.warm(entries));
  }

  async getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    return (await this.getOrSetEntry(key, loader, options)).value;
  }

  async getOrSetEntry<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<CacheResult<T>> {
    this.#assertOpen();
    checkKey(key);
    if (typeof loader !== 'function') {
      throw new CacheConfigError('loader', 'expected a function ({ key, stale }) => value');
    }
    return this.#entry(key, loader, resolveCallOptions(this.#context.options, options));
  }

  /** `getOrSetEntry` with its arguments checked and its options resolved. */
  #entry<T>(key: string, loader: Loader<T>, call: ResolvedCallOptions): Promise<CacheResult<T>> {
    const { options: base, l1, counters } = this.#context;
    const now = base.clock();
    const cached = l1.get(key, now);
    if (cached !== undefined) {
      if (l1.isFresh(cached, now)) {
        counters.hit(key, 'l1');
        this.#refreshIfDue(key, cached, now, loader as Loader<unknown>, call);
        return Promise.resolve(toResult(cached, false, 'l1'));
      }
      if (cached.retryAt > now && now >= cached.expiresAt) {
        // Grace backoff: the loader failed a moment ago; do not hammer a failing upstream.
        counters.miss(key, 'l1');
        counters.staleServed(key, cached, 'backoff');
        return Promise.resolve(toResult(cached, true, 'l1'));
      }
    }
    counters.miss(key, 'l1');
    let flight = this.#flights.get(key);
    if (flight === undefined) flight = this.#flights.start(key, loader as Loader<unknown>, call, cached, -1);
    else if (cached !== undefined) flight.offer(cached, 'l1');
    return joinFlight<T>(this.#context, key, flight, call);
  }

  /** Eager refresh: past its fraction of the ttl, reload a fresh L1 entry in the background. */
  #refreshIfDue(key: string, cached: Entry, now: number, loader: Loader<unknown>, call: ResolvedCallOptions): void {
    const eager = call.eagerRefresh;
    if (eager !== undefined && this.#flights.get(key) === undefined && now >= refreshAt(cached, eager)) {
      // Refresh before expiry, in the background; this caller is answered now.
      this.#flights.start(key, loader, call, cached, cached.createdAt);
    }
  }

  async getOrSetMany<T>(keys: readonly string[], loadMissing: BatchLoader<T>, options?: GetOrSetOptions): Promise<T[]> {
    this.#assertOpen();
    if (!Array.isArray(keys)) throw new CacheConfigError('keys', 'expected an array of string keys');
    keys.forEach((k) => checkKey(k));
    if (typeof loadMissing !== 'function') {
      throw new CacheConfigError('loadMissing', 'expected a function (missingKeys) => Map or object of values');
    }
    const { options: base, l1, counters } = this.#context;
    const call = resolveCallOptions(base, options);
    const now = base.clock();
    const answers = new Map<string, Promise<CacheResult<T>>>();
    const missing: { key: string; stale: Entry | undefined }[] = [];
    for (const key of new Set(keys)) {
      const cached = l1.get(key, now);
      if (cached !== undefined && l1.isFresh(cached, now)) {
        counters.hit(key, 'l1');
        if (call.eagerRefresh !== undefined) this.#refreshIfDue(key, cached, now, pickOne(key, loadMissing), call);
        answers.set(key, Promise.resolve(toResult<T>(cached, false, 'l1')));
        continue;
      }
      if (cached !== undefined && cached.retryAt > now && now >= cached.expiresAt) {
        counters.miss(key, 'l1');
        counters.staleServed(key, cached, 'backoff');
        answers.set(key, Promise.resolve(toResult<T>(cached, true, 'l1')));
        continue;
      }
      counters.miss(key, 'l1');
      const flight = this.#flights.get(key);
      if (flight !== undefined) {
        // Already loading in this process (a getOrSet, another batch): join it.
        if (cached !== undefined) flight.offer(cached, 'l1');
        answers.set(key, joinFlight<T>(this.#context, key, flight, call));
        continue;
      }
      missing.push({ key, stale: cached });
    }
    if (missing.length > 0) {
      const flights = this.#flights.startMany(missing, loadMissing as BatchLoader<unknown>, call);
      for (const [key, flight] of flights) answers.set(key, joinFlight<T>(this.#context, key, flight, call));
    }
    const unique = [...answers.keys()];
    const results = await Promise.all(unique.map((key) => answers.get(key) as Promise<CacheResult<T>>));
    const values = new Map(unique.map((key, i) => [key, (results[i] as CacheResult<T>).value]));
    return keys.map((key) => values.get(key) as T);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  wrap<F extends (...args: any[]) => unknown>(fn: F, options: WrapOptions<Parameters<F>>): Wrapped<F> {
    this.#assertOpen();
    if (typeof fn !== 'function') throw new CacheConfigError('fn', 'expected the function to wrap');
    if (options === null || typeof options !== 'object' || typeof options.key !== 'function') {
      throw new CacheConfigError('key', 'expected a function (...args) => string giving the cache key of a call');
    }
    const { key: keyOf, tags, ...rest } = options;
    const tagsOf = typeof tags === 'function' ? tags : undefined;
    // Resolved once here: a call costs the key function (and the tags function) only.
    const base = resolveCallOptions(
      this.#context.options,
      tagsOf === undefined ? { ...rest, tags: tags as readonly string[] | undefined } : rest,
    );
    const entry = <T>(key: string, loader: Loader<T>, call: ResolvedCallOptions): Promise<CacheResult<T>> => {
      this.#assertOpen();
      return this.#entry(key, loader, call);
    };
    return async function wrapped(this: ThisParameterType<F>, ...args: Parameters<F>): Promise<Awaited<ReturnType<F>>> {
      const key = keyOf(...args);
      checkKey(key);
      const call = tagsOf === undefined ? base : { ...base, tags: tagList('tags', tagsOf(...args)) };
      const result = await entry<Awaited<ReturnType<F>>>(
        key,
        () => fn.apply(this, args) as Awaited<ReturnType<F>>,
        call,
      );
      return result.value;
    };
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.#assertOpen();
    checkKey(key);
    const { options, l1, l2, durable, counters } = this.#context;
    const now = options.clock();
    const cached = l1.get(key, now);
    if (cached !== undefined && l1.isFresh(cached, now)) {
      counters.hit(key, 'l1');
      return cached.value as T;
    }
    counters.miss(key, 'l1');
    if (l2 !== undefined) {
      let entry: Entry | undefined;
      try {
        entry = await l2.read(key);
      } catch {
        // Reported through `l2Error`; a read that cannot reach Redis is a miss.
      }
      if (entry !== undefined && options.clock() < entry.expiresAt) {
        counters.hit(key, 'l2');
        l1.set(key, entry);
        return entry.value as T;
      }
      counters.miss(key, 'l2');
    }
    if (durable === undefined) return undefined;
    const [record] = await durable.readMany([key], options.clock());
    const at = options.clock();
    if (record !== undefined && at < record.expiresAt) {
      counters.hit(key, 'durable');
      // L1 keeps it for the cache's own ttl at most, as if Redis had answered.
      l1.set(key, fromDurable(record, options.ttl, options.grace, at));
      return record.value as T;
    }
    counters.miss(key, 'durable');
    return undefined;
  }

  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    this.#assertOpen();
    checkKey(key);
    const base = this.#context.options;
    const call = resolveCallOptions(base, options);
    const now = base.clock();
    const entry = createEntry(value, call, now, base.jitter);
    // A load already running for this key must not overwrite what was just set.
    this.#flights.invalidateKeys([key]);
    if (!(await writeThrough(this.#context, key, entry, now, '', 'wait'))) {
      // The old value must not resurface in Redis once it is back.
      this.#invalidations.enqueue({ op: 'delete', keys: [key] });
    }
  }

  async delete(key: string | readonly string[]): Promise<void> {
    this.#assertOpen();
    const keys = typeof key === 'string' ? [key] : [...key];
    keys.forEach((k) => checkKey(k));
    this.#invalidations.dropKeys(keys, 'local');
    await this.#invalidations.apply({ op: 'delete', keys });
  }

  async deleteByTag(tag: string | readonly string[]): Promise<void> {
    this.#assertOpen();
    const tags = typeof tag === 'string' ? [tag] : [...tag];
    if (tags.some((t) => typeof t !== 'string' || t === '')) {
      throw new CacheConfigError('tag', 'expected a non-empty string or an array of them');
    }
    this.#invalidations.dropTags(tags, 'local');
    await this.#invalidations.apply({ op: 'tags', tags });
  }

  async deleteByPrefix(prefix: string): Promise<void> {
    this.#assertOpen();
    if (typeof prefix !== 'string' || prefix === '') {
      throw new CacheConfigError('prefix', 'expected a non-empty string (clear() empties the whole namespace)');
    }
    this.#invalidations.dropPrefix(prefix, 'local');
    await this.#invalidations.apply({ op: 'prefix', prefix });
  }

  async clear(namespace: string = this.#context.options.namespace): Promise<void> {
    this.#assertOpen();
    if (typeof namespace !== 'string' || namespace === '' || /[{}]/.test(namespace)) {
      throw new CacheConfigError('namespace', 'expected a non-empty string without { or }');
    }
    if (namespace === this.#context.options.namespace) this.#invalidations.dropAll('local');
    await this.#invalidations.apply({ op: 'clear', namespace });
  }

  async warm<T>(entries: Iterable<WarmEntry<T>>): Promise<number> {
    this.#assertOpen();
    const list = [...entries];
    for (const [i, entry] of list.entries()) {
      if (entry === null || typeof entry !== 'object' || typeof entry.key !== 'string') {
        throw new CacheConfigError(`entries[${i}]`, 'expected { key, value, ttl?, grace?, tags? }');
      }
    }
    for (let i = 0; i < list.length; i += WARM_CONCURRENCY) {
      const batch = list.slice(i, i + WARM_CONCURRENCY);
      await Promise.all(batch.map(({ key, value, ...options }) => this.set(key, value, options)));
    }
    return list.length;
  }

  warmEvery<T>(interval: Duration, entries: WarmSource<T>, options?: WarmEveryOptions): WarmSchedule {
    this.#assertOpen();
    return this.#schedules.start(interval, entries, options);
  }

  stats(): CacheStats {
    const { counters, l1, l2, bus, durable } = this.#context;
    return counters.stats(l1, l2, bus, durable);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#schedules.stopAll();
    this.#context.l2?.detach();
    await Promise.all([this.#context.bus?.close(), this.#context.durable?.close()]);
  }

  #assertOpen(): void {
    if (this.#closed) throw new CacheError('cache_closed', 'the cache was closed');
  }
}

/** A single-key loader on a batch loader (for a key's eager refresh). */
function pickOne<T>(key: string, loadMissing: BatchLoader<T>): Loader<unknown> {
  return async () => {
    const values = await loadMissing([key]);
    return values instanceof Map ? values.get(key) : (values as Record<string, T>)[key];
  };
}

/** When an entry is due for its eager refresh: past `fraction` of its ttl. */
function refreshAt(entry: Entry, fraction: number): number {
  return entry.createdAt + (entry.expiresAt - entry.createdAt) * fraction;
}

/**
 * Creates a read-through cache: bounded memory (L1) in front of Redis (L2, optional), one loader
 * call per key across all callers and processes, stale values served within grace when the
 * loader fails or is slow, and invalidation that reaches every instance. Options are validated
 * here; a bad one throws a {@link CacheConfigError} (a `TypeError`) naming it.
 *
 * @example
 * const cache = createCache({ redis: new Redis(url), ttl: '5m', grace: '1h', namespace: 'records' });
 * const record = await cache.getOrSet(`record:${id}`, () => api.fetchRecord(id), { tags: [`customer:${customerId}`] });
 * await cache.deleteByTag(`customer:${customerId}`);
 */
export function createCache(options: CacheOptions = {}): Cache {
  return new TieredCache(resolveCacheOptions(options));
}
