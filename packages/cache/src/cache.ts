import { randomUUID } from 'node:crypto';
import { Bus } from './bus.js';
import { CacheConfigError, CacheError } from './errors.js';
import { CacheEvents } from './events.js';
import { MemoryTier, type Entry } from './memory-tier.js';
import { resolveCacheOptions, resolveCallOptions, type ResolvedCacheOptions, type ResolvedCallOptions } from './options.js';
import { RedisTier, type BusMessage } from './redis-tier.js';
import type { Cache, CacheOptions, CacheResult, CacheStats, GetOrSetOptions, Loader, SetOptions, Source, WarmEntry } from './types.js';

/** An invalidation that could not reach Redis, replayed when Redis is back. */
type PendingOp = { op: 'delete'; keys: string[] } | { op: 'tags'; tags: string[] } | { op: 'clear'; namespace: string };

const MAX_PENDING = 1_000;
const WARM_CONCURRENCY = 16;

/** One load of one key in this process: every concurrent caller of the key shares it. */
class Flight {
  /** The best expired-but-within-grace entry known, to serve if the load fails or is slow. */
  stale: Entry | undefined;
  staleSource: Source = 'l1';
  /** Set when the key was invalidated meanwhile: the result goes to the callers, not the cache. */
  invalidated = false;
  promise!: Promise<{ entry: Entry; source: Source }>;
  readonly #listeners = new Set<() => void>();

  constructor(readonly tags: readonly string[]) {}

  offer(entry: Entry, source: Source): void {
    if (this.stale !== undefined && this.stale.createdAt >= entry.createdAt) return;
    this.stale = entry;
    this.staleSource = source;
    for (const listener of this.#listeners) listener();
  }

  onStale(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function result<T>(entry: Entry, stale: boolean, source: Source): CacheResult<T> {
  return { value: entry.value as T, stale, source, createdAt: entry.createdAt, expiresAt: entry.expiresAt, staleUntil: entry.staleUntil, tags: entry.tags };
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new CacheConfigError('key', `expected a string, got ${typeof key}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** @internal The cache behind `createCache()`. */
class TieredCache implements Cache {
  readonly events = new CacheEvents();
  readonly #o: ResolvedCacheOptions;
  readonly #l1: MemoryTier;
  readonly #l2: RedisTier | undefined;
  readonly #bus: Bus | undefined;
  readonly #id = randomUUID();
  readonly #flights = new Map<string, Flight>();
  readonly #pending: PendingOp[] = [];
  #draining = false;
  #closed = false;
  #lockSeq = 0;
  readonly #counts = {
    l1Hits: 0, l1Misses: 0, l2Hits: 0, l2Misses: 0,
    staleError: 0, staleTimeout: 0, staleBackoff: 0,
    loads: 0, loadErrors: 0, loadMs: 0, loadMaxMs: 0, waits: 0, published: 0,
  };

  constructor(options: ResolvedCacheOptions) {
    this.#o = options;
    this.#l1 = new MemoryTier(options.maxEntries);
    if (options.redis !== undefined) {
      this.#l2 = new RedisTier(options.redis, options, this.events, () => void this.#drain());
      this.#bus = new Bus(
        options.redis,
        this.#l2.channel,
        this.#id,
        {
          onMessage: (message) => this.#onRemote(message),
          onRecovered: () => {
            this.#l1.expireAll();
            void this.#drain();
          },
        },
        this.events,
        options.logger,
      );
    }
  }

  async getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    return (await this.getOrSetEntry(key, loader, options)).value;
  }

  async getOrSetEntry<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<CacheResult<T>> {
    this.#assertOpen();
    checkKey(key);
    if (typeof loader !== 'function') throw new CacheConfigError('loader', 'expected a function ({ key, stale }) => value');
    const o = resolveCallOptions(this.#o, options);
    const now = this.#o.clock();
    const cached = this.#l1.get(key, now);
    if (cached !== undefined) {
      if (this.#l1.isFresh(cached, now)) {
        this.#hit(key, 'l1');
        if (o.eagerRefresh !== undefined && !this.#flights.has(key) && now >= cached.createdAt + (cached.expiresAt - cached.createdAt) * o.eagerRefresh) {
          // Refresh before expiry, in the background; this caller is answered now.
          this.#startFlight(key, loader as Loader<unknown>, o, cached, cached.createdAt);
        }
        return result(cached, false, 'l1');
      }
      if (cached.retryAt > now && now >= cached.expiresAt) {
        // Grace backoff: the loader failed a moment ago; do not hammer a failing upstream.
        this.#miss(key, 'l1');
        return this.#serveStale(key, cached, 'backoff', 'l1');
      }
    }
    this.#miss(key, 'l1');
    let flight = this.#flights.get(key);
    if (flight === undefined) flight = this.#startFlight(key, loader as Loader<unknown>, o, cached, -1);
    else if (cached !== undefined) flight.offer(cached, 'l1');
    return this.#join<T>(key, flight, o);
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.#assertOpen();
    checkKey(key);
    const now = this.#o.clock();
    const cached = this.#l1.get(key, now);
    if (cached !== undefined && this.#l1.isFresh(cached, now)) {
      this.#hit(key, 'l1');
      return cached.value as T;
    }
    this.#miss(key, 'l1');
    if (this.#l2 === undefined) return undefined;
    let entry: Entry | undefined;
    try {
      entry = await this.#l2.read(key);
    } catch {
      // Reported through `l2Error`; a read that cannot reach Redis is a miss.
    }
    if (entry !== undefined && this.#o.clock() < entry.expiresAt) {
      this.#hit(key, 'l2');
      this.#l1.set(key, entry);
      return entry.value as T;
    }
    this.#miss(key, 'l2');
    return undefined;
  }

  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    this.#assertOpen();
    checkKey(key);
    const o = resolveCallOptions(this.#o, options);
    const now = this.#o.clock();
    const entry = this.#entry(value, o, now);
    // A load already running for this key must not overwrite what was just set.
    const flight = this.#flights.get(key);
    if (flight !== undefined) flight.invalidated = true;
    this.#l1.set(key, entry);
    if (this.#l2 === undefined) return;
    try {
      await this.#l2.write(key, entry, now, '', this.#message({ t: 'set', k: key }));
      this.#counts.published++;
    } catch (error) {
      this.#writeFailed(key, error);
      // The old value must not resurface in Redis once it is back.
      this.#enqueue({ op: 'delete', keys: [key] });
    }
  }

  async delete(key: string | readonly string[]): Promise<void> {
    this.#assertOpen();
    const keys = typeof key === 'string' ? [key] : [...key];
    keys.forEach((k) => checkKey(k));
    this.#dropKeys(keys, 'local');
    await this.#apply({ op: 'delete', keys });
  }

  async deleteByTag(tag: string | readonly string[]): Promise<void> {
    this.#assertOpen();
    const tags = typeof tag === 'string' ? [tag] : [...tag];
    if (tags.some((t) => typeof t !== 'string' || t === '')) throw new CacheConfigError('tag', 'expected a non-empty string or an array of them');
    this.#dropTags(tags, 'local');
    await this.#apply({ op: 'tags', tags });
  }

  async clear(namespace: string = this.#o.namespace): Promise<void> {
    this.#assertOpen();
    if (typeof namespace !== 'string' || namespace === '' || /[{}]/.test(namespace)) {
      throw new CacheConfigError('namespace', 'expected a non-empty string without { or }');
    }
    if (namespace === this.#o.namespace) this.#dropAll('local');
    await this.#apply({ op: 'clear', namespace });
  }

  async warm<T>(entries: Iterable<WarmEntry<T>>): Promise<number> {
    this.#assertOpen();
    const list = [...entries];
    for (const [i, entry] of list.entries()) {
      if (entry === null || typeof entry !== 'object' || typeof entry.key !== 'string') throw new CacheConfigError(`entries[${i}]`, 'expected { key, value, ttl?, grace?, tags? }');
    }
    for (let i = 0; i < list.length; i += WARM_CONCURRENCY) {
      await Promise.all(list.slice(i, i + WARM_CONCURRENCY).map(({ key, value, ...options }) => this.set(key, value, options)));
    }
    return list.length;
  }

  stats(): CacheStats {
    const c = this.#counts;
    return {
      l1: { hits: c.l1Hits, misses: c.l1Misses, size: this.#l1.size },
      l2: { hits: c.l2Hits, misses: c.l2Misses, errors: this.#l2?.errors ?? 0, breaker: this.#l2?.breakerState ?? 'closed' },
      stale: { served: c.staleError + c.staleTimeout + c.staleBackoff, error: c.staleError, timeout: c.staleTimeout, backoff: c.staleBackoff },
      loader: { runs: c.loads, errors: c.loadErrors, latency: { count: c.loads, meanMs: c.loads === 0 ? 0 : c.loadMs / c.loads, maxMs: c.loadMaxMs } },
      waits: c.waits,
      bus: { published: c.published, received: this.#bus?.received ?? 0, connected: this.#bus?.connected ?? false },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#l2?.detach();
    await this.#bus?.close();
  }

  // ---- loading ----

  #startFlight(key: string, loader: Loader<unknown>, o: ResolvedCallOptions, stale: Entry | undefined, createdAfter: number): Flight {
    const flight = new Flight(o.tags);
    if (stale !== undefined) flight.offer(stale, 'l1');
    this.#flights.set(key, flight);
    flight.promise = this.#load(key, loader, o, flight, createdAfter).finally(() => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    });
    // Background refreshes have no caller; their failure is reported through events only.
    flight.promise.catch(() => {});
    return flight;
  }

  async #load(key: string, loader: Loader<unknown>, o: ResolvedCallOptions, flight: Flight, createdAfter: number): Promise<{ entry: Entry; source: Source }> {
    const l2 = this.#l2;
    let token = '';
    if (l2 !== undefined) {
      const mine = `${this.#id}:${++this.#lockSeq}`;
      let delay = this.#o.pollInterval;
      let counted = false;
      for (;;) {
        let found;
        try {
          found = await l2.getOrLock(key, this.#o.clock(), mine, createdAfter);
        } catch {
          // Redis is unreachable: load without the cross-process lock rather than not at all.
          break;
        }
        if (found.kind === 'fresh') {
          this.#hit(key, 'l2');
          if (!flight.invalidated) this.#l1.set(key, found.entry);
          return { entry: found.entry, source: 'l2' };
        }
        if (!counted) {
          counted = true;
          this.#miss(key, 'l2');
        }
        if (found.entry !== undefined && this.#o.clock() < found.entry.staleUntil) flight.offer(found.entry, 'l2');
        if (found.kind === 'locked') {
          token = mine;
          break;
        }
        // Another process is loading: wait until its value lands (pub/sub), or poll.
        if (delay === this.#o.pollInterval) this.#counts.waits++;
        await (this.#bus !== undefined ? this.#bus.waitFor(key, delay) : sleep(delay));
        delay = Math.min(delay * 2, this.#o.pollInterval * 4);
      }
    }

    const started = performance.now();
    this.#counts.loads++;
    let value: unknown;
    try {
      value = await loader({ key, stale: flight.stale?.value });
    } catch (error) {
      this.#loaded(key, started, error);
      if (token !== '') this.#l2?.release(key, token, this.#message({ t: 'rel', k: key })).catch(() => {});
      const stale = flight.stale;
      if (this.#o.graceBackoff > 0 && stale !== undefined && !flight.invalidated) {
        const now = this.#o.clock();
        if (now < stale.staleUntil) this.#l1.set(key, { ...stale, retryAt: now + this.#o.graceBackoff });
      }
      throw error;
    }
    this.#loaded(key, started, undefined);

    const now = this.#o.clock();
    const entry = this.#entry(value, o, now);
    if (flight.invalidated) {
      // delete()/set() raced this load: answer the callers, keep nothing, let the waiters retry.
      if (token !== '') this.#l2?.release(key, token, this.#message({ t: 'rel', k: key })).catch(() => {});
      return { entry, source: 'loader' };
    }
    this.#l1.set(key, entry);
    if (l2 !== undefined) {
      try {
        await l2.write(key, entry, now, token, this.#message({ t: 'set', k: key }));
        this.#counts.published++;
      } catch (error) {
        this.#writeFailed(key, error);
        if (token !== '') l2.release(key, token, this.#message({ t: 'rel', k: key })).catch(() => {});
      }
    }
    return { entry, source: 'loader' };
  }

  /** Waits for a flight on behalf of one caller, applying that caller's soft and hard timeouts. */
  #join<T>(key: string, flight: Flight, o: ResolvedCallOptions): Promise<CacheResult<T>> {
    return new Promise<CacheResult<T>>((resolve, reject) => {
      let settled = false;
      let softPassed = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (): void => {
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        unsubscribe();
      };
      const serveStale = (reason: 'error' | 'timeout'): boolean => {
        const stale = flight.stale;
        if (settled || stale === undefined || this.#o.clock() >= stale.staleUntil) return false;
        finish();
        resolve(this.#serveStale(key, stale, reason, flight.staleSource));
        return true;
      };
      // A stale value may turn up (from Redis) after the soft timeout has already passed.
      const unsubscribe = flight.onStale(() => {
        if (softPassed) serveStale('timeout');
      });
      if (o.timeout !== undefined) {
        timers.push(setTimeout(function softTimeout() {
          softPassed = true;
          serveStale('timeout');
        }, o.timeout));
      }
      if (o.hardTimeout !== undefined) {
        const hardTimeout = o.hardTimeout;
        timers.push(setTimeout(function hardTimeoutPassed() {
          if (settled || serveStale('timeout')) return;
          finish();
          reject(new CacheError('cache_hard_timeout', `no value for ${JSON.stringify(key)} within ${hardTimeout}ms and nothing stale to serve`, { key }));
        }, hardTimeout));
      }
      flight.promise.then(
        ({ entry, source }) => {
          if (settled) return;
          finish();
          resolve(result<T>(entry, false, source));
        },
        (error: unknown) => {
          if (settled || serveStale('error')) return;
          finish();
          reject(error);
        },
      );
    });
  }

  #serveStale<T>(key: string, entry: Entry, reason: 'error' | 'timeout' | 'backoff', source: Source): CacheResult<T> {
    if (reason === 'error') this.#counts.staleError++;
    else if (reason === 'timeout') this.#counts.staleTimeout++;
    else this.#counts.staleBackoff++;
    this.events.emit('stale', { key, reason, ageMs: Math.max(0, this.#o.clock() - entry.expiresAt) });
    return result<T>(entry, true, source);
  }

  #entry(value: unknown, o: ResolvedCallOptions, now: number): Entry {
    const jitter = this.#o.jitter;
    const ttl = jitter === 0 ? o.ttl : Math.max(1, Math.round(o.ttl * (1 - Math.random() * jitter)));
    return { value, createdAt: now, expiresAt: now + ttl, staleUntil: now + ttl + o.grace, tags: o.tags, storedAt: 0, retryAt: 0 };
  }

  #loaded(key: string, started: number, error: unknown): void {
    const durationMs = performance.now() - started;
    this.#counts.loadMs += durationMs;
    if (durationMs > this.#counts.loadMaxMs) this.#counts.loadMaxMs = durationMs;
    if (error !== undefined) {
      this.#counts.loadErrors++;
      this.#o.logger.debug({ err: error, key }, 'idem cache: loader failed');
      this.events.emit('load', { key, ok: false, durationMs, error });
    } else {
      this.events.emit('load', { key, ok: true, durationMs });
    }
  }

  #writeFailed(key: string, error: unknown): void {
    if (error instanceof CacheError && error.code === 'cache_serialization') {
      this.#o.logger.error({ err: error, key }, 'idem cache: value kept in L1 only, it could not be serialized for Redis');
      this.events.emit('l2Error', { operation: 'write', error });
    }
  }

  // ---- invalidation ----

  #message(body: { t: 'set' | 'rel'; k: string } | { t: 'del'; k: string[] } | { t: 'tag'; g: string[] } | { t: 'clr' }): BusMessage {
    return { i: this.#id, ...body } as BusMessage;
  }

  async #apply(op: PendingOp): Promise<void> {
    if (this.#l2 === undefined) return;
    try {
      await this.#send(op);
      this.#counts.published++;
    } catch {
      // Reported through `l2Error`. L1 is already clean here; Redis and the other instances get
      // the invalidation when Redis is back.
      this.#enqueue(op);
    }
  }

  #send(op: PendingOp): Promise<void> {
    const l2 = this.#l2 as RedisTier;
    if (op.op === 'delete') return l2.remove(op.keys, this.#message({ t: 'del', k: op.keys }));
    if (op.op === 'tags') return l2.removeTags(op.tags, this.#message({ t: 'tag', g: op.tags }));
    return l2.clear(op.namespace, this.#message({ t: 'clr' }));
  }

  #enqueue(op: PendingOp): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.#pending.shift();
      this.#o.logger.warn({}, 'idem cache: too many invalidations waiting for Redis; dropped the oldest');
    }
    this.#pending.push(op);
  }

  async #drain(): Promise<void> {
    if (this.#draining || this.#pending.length === 0) return;
    this.#draining = true;
    try {
      while (this.#pending.length > 0) {
        try {
          await this.#send(this.#pending[0] as PendingOp);
        } catch {
          return;
        }
        this.#counts.published++;
        this.#pending.shift();
      }
      this.#o.logger.info({}, 'idem cache: replayed the invalidations that failed while Redis was away');
    } finally {
      this.#draining = false;
    }
  }

  #onRemote(message: BusMessage): void {
    if (message.t === 'set') {
      this.#l1.delete(message.k);
      this.events.emit('invalidate', { kind: 'set', keys: [message.k], origin: 'remote' });
    } else if (message.t === 'del') {
      this.#dropKeys(message.k, 'remote');
    } else if (message.t === 'tag') {
      this.#dropTags(message.g, 'remote');
    } else if (message.t === 'clr') {
      this.#dropAll('remote');
    }
  }

  #dropKeys(keys: readonly string[], origin: 'local' | 'remote'): void {
    for (const key of keys) {
      this.#l1.delete(key);
      const flight = this.#flights.get(key);
      if (flight !== undefined) flight.invalidated = true;
    }
    this.events.emit('invalidate', { kind: 'delete', keys, origin });
  }

  #dropTags(tags: readonly string[], origin: 'local' | 'remote'): void {
    this.#l1.deleteTags(tags);
    for (const flight of this.#flights.values()) {
      if (flight.tags.some((t) => tags.includes(t))) flight.invalidated = true;
    }
    this.events.emit('invalidate', { kind: 'tags', tags, origin });
  }

  #dropAll(origin: 'local' | 'remote'): void {
    this.#l1.clear();
    for (const flight of this.#flights.values()) flight.invalidated = true;
    this.events.emit('invalidate', { kind: 'clear', origin });
  }

  // ---- bookkeeping ----

  #hit(key: string, layer: 'l1' | 'l2'): void {
    if (layer === 'l1') this.#counts.l1Hits++;
    else this.#counts.l2Hits++;
    this.events.emit('hit', { key, layer });
  }

  #miss(key: string, layer: 'l1' | 'l2'): void {
    if (layer === 'l1') this.#counts.l1Misses++;
    else this.#counts.l2Misses++;
    this.events.emit('miss', { key, layer });
  }

  #assertOpen(): void {
    if (this.#closed) throw new CacheError('cache_closed', 'the cache was closed');
  }
}

/**
 * Creates a read-through cache: bounded memory (L1) in front of Redis (L2, optional), one loader
 * call per key across all callers and processes, stale values served within grace when the
 * loader fails or is slow, and invalidation that reaches every instance. Options are validated
 * here; a bad one throws a `TypeError` naming it.
 *
 * @example
 * const cache = createCache({ redis: new Redis(url), ttl: '5m', grace: '1h', namespace: 'records' });
 * const record = await cache.getOrSet(`record:${id}`, () => api.fetchRecord(id), { tags: [`customer:${customerId}`] });
 * await cache.deleteByTag(`customer:${customerId}`);
 */
export function createCache(options: CacheOptions = {}): Cache {
  return new TieredCache(resolveCacheOptions(options));
}
