import type { Redis } from 'ioredis';
import type { Duration, Logger } from '@idem/core';
import type { CacheEvents } from './events.js';

/** The duration and logger types every idem package shares; re-exported so cache users need not import core. */
export type { Duration, Logger } from '@idem/core';

/**
 * Turns values into bytes for Redis and back. The default keeps JSON values and Buffers
 * (top-level or nested) exact; supply your own for Dates, Maps, msgpack, compression…
 *
 * @example
 * const serializer = { serialize: (v) => v8.serialize(v), deserialize: (b) => v8.deserialize(b) };
 */
export interface Serializer {
  serialize(value: unknown): string | Uint8Array;
  deserialize(data: Buffer): unknown;
}

/** What a loader is given. */
export interface LoaderContext<T> {
  /** The key being loaded. */
  key: string;
  /** The expired value still within grace, if any (e.g. to send a conditional request upstream). */
  stale: T | undefined;
}

/** Produces the value for a missing or expired key. Its errors reach the callers and are never cached. */
export type Loader<T> = (context: LoaderContext<T>) => T | Promise<T>;

/** Options of one `getOrSet` call; unset ones fall back to the cache's. */
export interface GetOrSetOptions {
  /** How long the value is fresh. @default the cache's `ttl` */
  ttl?: Duration;
  /** How long after `ttl` an expired value may still be served when the loader fails or is slow. @default the cache's `grace` */
  grace?: Duration;
  /** Tags for `deleteByTag`. @default [] */
  tags?: readonly string[];
  /** Soft timeout: with a stale value at hand, serve it after this long; the refresh goes on. @default the cache's `timeout` */
  timeout?: Duration;
  /** Hard timeout: with nothing stale to serve, give up after this long with `cache_hard_timeout`. @default the cache's `hardTimeout` */
  hardTimeout?: Duration;
  /** Refresh in the background once this fraction of `ttl` has passed (0–1); `false` for never on this call. @default the cache's `eagerRefresh` */
  eagerRefresh?: number | false;
}

/** Options of `set` and of each `warm` entry. */
export interface SetOptions {
  /** @default the cache's `ttl` */
  ttl?: Duration;
  /** @default the cache's `grace` */
  grace?: Duration;
  /** @default [] */
  tags?: readonly string[];
}

/**
 * Options of `wrap()`: how a call's arguments become its cache key (and, optionally, its tags),
 * plus the options of the `getOrSet` each call makes.
 */
export interface WrapOptions<A extends readonly unknown[]> extends Omit<GetOrSetOptions, 'tags'> {
  /** The cache key of a call; two calls with the same key share one value. Include the function's name in it. */
  key: (...args: A) => string;
  /** Tags of the cached value, or a function of the call's arguments returning them. @default [] */
  tags?: readonly string[] | ((...args: A) => readonly string[]);
}

/** The function `wrap()` returns: `fn`'s parameters (and `this`), answering through the cache. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Wrapped<F extends (...args: any[]) => unknown> = (
  this: ThisParameterType<F>,
  ...args: Parameters<F>
) => Promise<Awaited<ReturnType<F>>>;

/**
 * The loader of `getOrSetMany()`: given only the keys that are missing, their values, as a Map or
 * a plain object by key. A key it leaves out fails that call with `cache_missing_value` (return
 * `null` for "not found": null is cached like any value).
 */
export type BatchLoader<T> = (
  keys: string[],
) => ReadonlyMap<string, T> | Record<string, T> | Promise<ReadonlyMap<string, T> | Record<string, T>>;

/**
 * What `warmEvery()` refreshes on each run: the entries to store, as a list or a function
 * returning them (called once per run, in the one process that runs it).
 */
export type WarmSource<T = unknown> =
  Iterable<WarmEntry<T>> | (() => Iterable<WarmEntry<T>> | Promise<Iterable<WarmEntry<T>>>);

/** Options of `warmEvery()`. */
export interface WarmEveryOptions {
  /**
   * The schedule's name: its lock across processes. Every process running the same schedule
   * must give the same name, and two different schedules different ones. @default 'default'
   */
  name?: string;
  /** Run once at once, rather than first after one interval. @default true */
  immediate?: boolean;
}

/** A running schedule of `warmEvery()`. */
export interface WarmSchedule {
  /** Stops the schedule; a run in progress finishes, nothing starts after. */
  stop(): void;
}

/** One entry for `warm()`. */
export interface WarmEntry<T = unknown> extends SetOptions {
  key: string;
  value: T;
}

/** Where an answer came from. */
export type Source = 'l1' | 'l2' | 'durable' | 'loader';

/**
 * A value as the durable tier keeps it: serialized by the cache's serializer, with its times
 * (epoch milliseconds of the cache clock) and tags. The tier's own ttl and grace are in its
 * `expiresAt` and `staleUntil`, which outlast the ones of L1 and L2.
 */
export interface DurableRecord {
  value: Buffer;
  createdAt: number;
  /** End of freshness in the durable tier. */
  expiresAt: number;
  /** End of its grace: past it the record counts as absent. */
  staleUntil: number;
  tags: readonly string[];
}

/**
 * A third tier behind L1 and L2 that outlives both (a Redis flush, the restart of every process):
 * read after a miss of both, written when a value is loaded or set, served stale within its own
 * (long) grace when the loader fails, and reached by every invalidation. `postgresTier()` of
 * `@idem/postgres` is one; any object with these methods is another. Every method must settle
 * within a bound of its own (the cache never waits on it without one), and rejects on failure.
 *
 * @example
 * import { postgresTier } from '@idem/postgres';
 * const cache = createCache({ redis, ttl: '1h', durable: postgresTier({ pool, ttl: '24h', grace: '7d' }) });
 */
export interface DurableTier {
  /** For logs and events, e.g. 'postgres'. */
  readonly name: string;
  /** How long a record stays fresh in this tier, in milliseconds (at least the value's own ttl is kept). */
  readonly ttl: number;
  /** How long past its ttl a record may still be served when the loader fails, in milliseconds. */
  readonly grace: number;
  /** The records of `keys` (in their order) that have not passed `staleUntil` at `now`; undefined for the others. */
  getMany(namespace: string, keys: readonly string[], now: number): Promise<(DurableRecord | undefined)[]>;
  /** Stores a record, unless one created later is already there. */
  set(namespace: string, key: string, record: DurableRecord): Promise<void>;
  delete(namespace: string, keys: readonly string[]): Promise<void>;
  /** Removes every record carrying any of `tags`. */
  deleteByTag(namespace: string, tags: readonly string[]): Promise<void>;
  /** Removes every record whose key starts with `prefix`. */
  deleteByPrefix(namespace: string, prefix: string): Promise<void>;
  /** Removes every record of the namespace. */
  clear(namespace: string): Promise<void>;
  /** Called by the cache's `close()`: stops what the tier runs (timers), never what you own (the pool). */
  close?(): Promise<void>;
}

/** A value with what the cache knows about it. Times are epoch milliseconds of the cache clock. */
export interface CacheResult<T> {
  value: T;
  /** True when served past its `ttl` (grace): the loader failed or was too slow. */
  stale: boolean;
  source: Source;
  createdAt: number;
  /** End of freshness. */
  expiresAt: number;
  /** End of grace: after this the value is gone. */
  staleUntil: number;
  tags: readonly string[];
}

/** Circuit-breaker state of the Redis tier. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Options of `createCache()`. Durations are milliseconds or strings such as `'5m'`. */
export interface CacheOptions {
  /**
   * In-memory tier: bounded by entries, and optionally by bytes (`maxBytes`, each entry sized by
   * `sizeOf`, by default an estimate of its value's size in memory). @default { maxEntries: 10_000 }
   */
  l1?: { maxEntries?: number; maxBytes?: number; sizeOf?: (value: unknown, key: string) => number };
  /**
   * Your ioredis client, for the shared L2 tier and the invalidation bus. The cache duplicates it
   * once for pub/sub and closes only that duplicate. Without it the cache is memory-only.
   */
  redis?: Redis;
  /** How long a value is fresh. @default '1m' */
  ttl?: Duration;
  /** How long past `ttl` a value may be served when the loader fails or is slow. @default 0 */
  grace?: Duration;
  /** After a loader failure served stale, serve stale without calling the loader for this long. @default 0 */
  graceBackoff?: Duration;
  /** Soft loader timeout (see {@link GetOrSetOptions.timeout}). @default none */
  timeout?: Duration;
  /** Hard timeout (see {@link GetOrSetOptions.hardTimeout}). @default none */
  hardTimeout?: Duration;
  /** Shortens each ttl by a random fraction up to this (0–1), so keys written together do not expire together. @default 0 */
  jitter?: number;
  /** Refresh in the background once this fraction of `ttl` has passed (0–1). @default none */
  eagerRefresh?: number;
  /** Keys, locks and the bus channel live under `prefix + namespace`. @default 'default' */
  namespace?: string;
  /** @default 'idem:cache:' */
  prefix?: string;
  /** Lease of the cross-process loader lock; a loader slower than this may run in a second process. @default '10s' */
  lockTtl?: Duration;
  /** Polling backstop while another process loads (doubling up to 4×). @default '50ms' */
  pollInterval?: Duration;
  /** Bound on every Redis call. @default '200ms' */
  redisTimeout?: Duration;
  /** Circuit breaker: open after `threshold` consecutive failures, probe again after `cooldown`. `false` disables it. @default { threshold: 5, cooldown: '2s' } */
  breaker?: { threshold?: number; cooldown?: Duration } | false;
  /**
   * A durable tier behind Redis (`postgresTier({ pool })` of `@idem/postgres`): read after an L1
   * and L2 miss, written on every load and `set`, served stale within its own grace when the
   * loader fails, reached by every invalidation. Without it nothing changes. @default none
   */
  durable?: DurableTier;
  /** @default JSON with exact Buffers */
  serializer?: Serializer;
  /** @default silent */
  logger?: Logger;
  /** Epoch-milliseconds clock, injectable for tests. @default Date.now */
  clock?: () => number;
}

/** Latency summary in milliseconds. */
export interface LatencyStats {
  count: number;
  meanMs: number;
  maxMs: number;
}

/** Counters since the cache was created. */
export interface CacheStats {
  /** `bytes`: the estimated size held (0 unless `l1.maxBytes` is set); `maxBytes`: the bound, or undefined. */
  l1: { hits: number; misses: number; size: number; bytes: number; maxBytes: number | undefined };
  /** All zero without Redis. */
  l2: { hits: number; misses: number; errors: number; breaker: BreakerState };
  /**
   * All zero without a durable tier. `errors`: its calls that failed (reported by `durableError`);
   * `pending`: invalidations not yet applied to it; `breaker`: the circuit breaker of its reads
   * and writes (the cache's `breaker` settings).
   */
  durable: { hits: number; misses: number; errors: number; pending: number; breaker: BreakerState };
  /** Values served past their ttl, by reason. */
  stale: { served: number; error: number; timeout: number; backoff: number };
  loader: { runs: number; errors: number; latency: LatencyStats };
  /** Waits on another process's loader (cross-process stampede protection at work). */
  waits: number;
  bus: { published: number; received: number; connected: boolean };
}

/** The cache. Every method is safe to call concurrently; none hangs on a dead Redis. */
export interface Cache {
  /**
   * Returns the cached value, or runs `loader` once (per process and across processes) and caches
   * what it returns.
   */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>;
  /** Like `getOrSet`, with metadata: stale or fresh, source, times, tags. */
  getOrSetEntry<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<CacheResult<T>>;
  /** The fresh value, or undefined. Never calls a loader; a Redis failure reads as a miss. */
  get<T>(key: string): Promise<T | undefined>;
  /**
   * Like `getOrSet` for many keys at once: one L1 pass and one Redis round trip for all of them,
   * then `loadMissing` called once with only the keys no tier had (each still loaded once across
   * processes: a key another process is loading is waited for). Resolves to the values in the
   * order of `keys`.
   */
  getOrSetMany<T>(keys: readonly string[], loadMissing: BatchLoader<T>, options?: GetOrSetOptions): Promise<T[]>;
  /**
   * Wraps `fn` so that its calls go through `getOrSet`: the same parameters and `this`, one call
   * of `fn` per key at a time across processes, grace when it fails.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  wrap<F extends (...args: any[]) => unknown>(fn: F, options: WrapOptions<Parameters<F>>): Wrapped<F>;
  /** Stores a value in both tiers; other instances drop their L1 copy. */
  set<T>(key: string, value: T, options?: SetOptions): Promise<void>;
  /** Removes keys from both tiers and from every instance's L1. */
  delete(key: string | readonly string[]): Promise<void>;
  /** Removes every key written with any of these tags, everywhere. */
  deleteByTag(tag: string | readonly string[]): Promise<void>;
  /**
   * Removes every key starting with `prefix` (`'user:123:'`) from both tiers and from every
   * instance's L1. Redis is walked with SCAN in bounded batches (never KEYS), on every master of a
   * Cluster.
   */
  deleteByPrefix(prefix: string): Promise<void>;
  /** Empties a namespace (this cache's by default) in Redis and in every instance's L1. */
  clear(namespace?: string): Promise<void>;
  /** Stores many entries; resolves to how many were stored. */
  warm<T>(entries: Iterable<WarmEntry<T>>): Promise<number>;
  /**
   * Refreshes entries every `interval`, in one process at a time across all of them (a lock in
   * Redis), never two runs at once; stopped by the returned `stop()` or by `close()`.
   */
  warmEvery<T>(interval: Duration, entries: WarmSource<T>, options?: WarmEveryOptions): WarmSchedule;
  /** Counters and gauges. */
  stats(): CacheStats;
  /** Stops the `warmEvery` schedules and closes what the cache opened (the pub/sub duplicate); never your client. */
  close(): Promise<void>;
  /** Typed events: `hit`, `miss`, `load`, `stale`, `l2Error`, `durableError`, `breaker`, `invalidate`, `bus`, `warm`. */
  readonly events: CacheEvents;
}
