import { busMessage, type CacheContext } from './context.js';
import { fromDurable } from './durable.js';
import { createEntry } from './entry.js';
import type { Entry } from './memory-tier.js';
import type { ResolvedCallOptions } from './options.js';
import { CacheError } from './errors.js';
import type { LockResult } from './redis-tier.js';
import type { BatchLoader, Loader, Source } from './types.js';
import { writeThrough } from './write-through.js';

/** What a flight settles with: the entry and where it came from. @internal */
export interface Landed {
  entry: Entry;
  source: Source;
}

/**
 * One load of one key in this process: every concurrent caller of the key shares it.
 * @internal
 */
export class Flight {
  /** The best expired-but-within-grace entry known, to serve if the load fails or is slow. */
  stale: Entry | undefined;
  staleSource: Source = 'l1';
  /** Set when the key was invalidated meanwhile: the result goes to the callers, not the cache. */
  invalidated = false;
  promise!: Promise<Landed>;
  readonly #listeners = new Set<() => void>();

  constructor(readonly tags: readonly string[]) {}

  /** Offers a stale entry; kept if newer than the one held, and the listeners are told. */
  offer(entry: Entry, source: Source): void {
    if (this.stale !== undefined && this.stale.createdAt >= entry.createdAt) return;
    this.stale = entry;
    this.staleSource = source;
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` whenever a stale entry is offered; returns the unsubscribe. */
  onStale(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** The two ends of a batch key's flight promise. */
interface Settler {
  resolve: (landed: Landed) => void;
  reject: (error: unknown) => void;
}

/** A batch loader's answer (a Map or a plain object) as a Map. */
function toMap(values: ReadonlyMap<string, unknown> | Record<string, unknown>): Map<string, unknown> {
  if (values instanceof Map) return values as Map<string, unknown>;
  if (values === null || typeof values !== 'object') {
    throw new TypeError("getOrSetMany's loader must return a Map or an object of values by key");
  }
  return new Map(Object.entries(values));
}

/** The value of `key` in a batch answer; a key left out is a failure of that key. */
function pick(key: string, values: Map<string, unknown>): unknown {
  if (!values.has(key)) {
    throw new CacheError('cache_missing_value', `getOrSetMany's loader returned no value for ${JSON.stringify(key)}`, {
      key,
    });
  }
  return values.get(key);
}

/** How a load begins: with a fresh entry another process stored, or with the loader to run. */
type Start = { kind: 'found'; landed: Landed } | { kind: 'run'; token: string };

const WITHOUT_LOCK: Start = { kind: 'run', token: '' };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Loading with single-flight: one flight per key in this process, and across processes one
 * loader at a time, by a lock in Redis (docs/design.md, "The read-through cache"). The others
 * wait for the value, woken by the bus or by polling.
 * @internal
 */
export class SingleFlight {
  readonly #context: CacheContext;
  readonly #flights = new Map<string, Flight>();
  #lockSeq = 0;

  constructor(context: CacheContext) {
    this.#context = context;
  }

  /** The flight of `key` in this process, if one is running. */
  get(key: string): Flight | undefined {
    return this.#flights.get(key);
  }

  /** Starts the flight of `key`, known to have none. `stale`: the L1 entry to fall back on. */
  start(
    key: string,
    loader: Loader<unknown>,
    call: ResolvedCallOptions,
    stale: Entry | undefined,
    createdAfter: number,
  ): Flight {
    const flight = new Flight(call.tags);
    if (stale !== undefined) flight.offer(stale, 'l1');
    this.#flights.set(key, flight);
    flight.promise = this.#load(key, loader, call, flight, createdAfter).finally(() => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    });
    // Background refreshes have no caller; their failure is reported through events only.
    flight.promise.catch(() => {});
    return flight;
  }

  /**
   * Starts one flight per key of a batch (none of which has one): one Redis round trip finds
   * their fresh values or takes their locks, then `loadMissing` runs once for the keys whose lock
   * we took. A key another process is loading is waited for as a single key would be (and loaded
   * alone, should that process fail).
   */
  startMany(
    items: readonly { key: string; stale: Entry | undefined }[],
    loadMissing: BatchLoader<unknown>,
    call: ResolvedCallOptions,
  ): Map<string, Flight> {
    const flights = new Map<string, Flight>();
    const settlers = new Map<string, Settler>();
    for (const { key, stale } of items) {
      const flight = new Flight(call.tags);
      if (stale !== undefined) flight.offer(stale, 'l1');
      this.#flights.set(key, flight);
      flight.promise = new Promise<Landed>((resolve, reject) => settlers.set(key, { resolve, reject })).finally(() => {
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      });
      flight.promise.catch(() => {});
      flights.set(key, flight);
    }
    this.#loadMany(flights, settlers, loadMissing, call).catch((error: unknown) => {
      // Nothing above throws on purpose; whatever did must not leave a caller waiting.
      for (const settler of settlers.values()) settler.reject(error);
    });
    return flights;
  }

  async #loadMany(
    flights: Map<string, Flight>,
    settlers: Map<string, Settler>,
    loadMissing: BatchLoader<unknown>,
    call: ResolvedCallOptions,
  ): Promise<void> {
    const { l1, l2, counters, options } = this.#context;
    const keys = [...flights.keys()];
    const tokens = keys.map(() => `${this.#context.id}:${++this.#lockSeq}`);
    let found: LockResult[] | undefined;
    if (l2 !== undefined) {
      try {
        found = await l2.getOrLockMany(keys, options.clock(), tokens);
      } catch {
        // Redis is unreachable: load without the cross-process lock rather than not at all.
      }
    }
    let run: { key: string; token: string }[] = [];
    for (const [i, key] of keys.entries()) {
      const flight = flights.get(key) as Flight;
      const settler = settlers.get(key) as Settler;
      const result = found?.[i];
      if (result === undefined) {
        run.push({ key, token: '' });
        continue;
      }
      if (result.kind === 'fresh') {
        counters.hit(key, 'l2');
        if (!flight.invalidated) l1.set(key, result.entry);
        settler.resolve({ entry: result.entry, source: 'l2' });
        continue;
      }
      counters.miss(key, 'l2');
      if (result.entry !== undefined && options.clock() < result.entry.staleUntil) flight.offer(result.entry, 'l2');
      if (result.kind === 'locked') {
        run.push({ key, token: tokens[i] as string });
        continue;
      }
      // Another process loads this key: wait for it as getOrSet would; load it alone if it fails.
      const alone: Loader<unknown> = async () => pick(key, toMap(await loadMissing([key])));
      this.#load(key, alone, call, flight, -1, true).then(settler.resolve, settler.reject);
    }
    if (this.#context.durable !== undefined && run.length > 0) {
      // What the durable tier has answers here; the loader gets only what is left.
      const records = await this.#context.durable.readMany(
        run.map((r) => r.key),
        options.clock(),
      );
      const hits = await Promise.all(
        run.map(({ key, token }, i) => this.#durableHit(key, records[i], call, flights.get(key) as Flight, -1, token)),
      );
      run = run.filter(({ key, token }, i) => {
        const hit = hits[i];
        if (hit === undefined) return true;
        if (!hit.stored && token !== '') this.#release(key, token);
        (settlers.get(key) as Settler).resolve(hit.landed);
        return false;
      });
    }
    if (run.length === 0) return;

    const started = performance.now();
    counters.loads += run.length;
    let values: Map<string, unknown>;
    try {
      values = toMap(await loadMissing(run.map((r) => r.key)));
    } catch (error) {
      for (const { key, token } of run) {
        counters.loaded(key, started, error);
        this.#backOff(key, flights.get(key) as Flight);
        if (token !== '') this.#release(key, token);
        (settlers.get(key) as Settler).reject(error);
      }
      return;
    }
    const now = options.clock();
    const writes: Promise<void>[] = [];
    for (const { key, token } of run) {
      const flight = flights.get(key) as Flight;
      const settler = settlers.get(key) as Settler;
      if (!values.has(key)) {
        const error = new CacheError(
          'cache_missing_value',
          `getOrSetMany's loader returned no value for ${JSON.stringify(key)}`,
          { key },
        );
        counters.loaded(key, started, error);
        if (token !== '') this.#release(key, token);
        settler.reject(error);
        continue;
      }
      counters.loaded(key, started, undefined);
      const entry = createEntry(values.get(key), call, now, options.jitter);
      if (flight.invalidated) {
        if (token !== '') this.#release(key, token);
        settler.resolve({ entry, source: 'loader' });
        continue;
      }
      writes.push(
        writeThrough(this.#context, key, entry, now, token, 'background').then((stored) => {
          if (!stored && token !== '') this.#release(key, token);
          settler.resolve({ entry, source: 'loader' });
        }),
      );
    }
    await Promise.all(writes);
  }

  /** Marks the flight of each key invalidated: its value reaches its callers but is not kept. */
  invalidateKeys(keys: readonly string[]): void {
    for (const key of keys) {
      const flight = this.#flights.get(key);
      if (flight !== undefined) flight.invalidated = true;
    }
  }

  /** Marks every flight carrying any of `tags` invalidated. */
  invalidateTags(tags: readonly string[]): void {
    for (const flight of this.#flights.values()) {
      if (flight.tags.some((t) => tags.includes(t))) flight.invalidated = true;
    }
  }

  /** Marks every flight whose key starts with `prefix` invalidated. */
  invalidatePrefix(prefix: string): void {
    for (const [key, flight] of this.#flights) if (key.startsWith(prefix)) flight.invalidated = true;
  }

  /** Marks every flight invalidated. */
  invalidateAll(): void {
    for (const flight of this.#flights.values()) flight.invalidated = true;
  }

  async #load(
    key: string,
    loader: Loader<unknown>,
    call: ResolvedCallOptions,
    flight: Flight,
    createdAfter: number,
    missCounted = false,
  ): Promise<Landed> {
    // Without Redis the loader is called at once, in the caller's own tick, as it always was.
    const start =
      this.#context.l2 === undefined ? WITHOUT_LOCK : await this.#begin(key, flight, createdAfter, missCounted);
    if (start.kind === 'found') return start.landed;
    const { token } = start;
    // Whether our lock in Redis still stands: every way out of here that has not freed it (a
    // successful write does) frees it in `finally`, so the waiting processes go on at once.
    let locked = token !== '';
    try {
      const { counters, options, durable } = this.#context;
      if (durable !== undefined) {
        const [record] = await durable.readMany([key], options.clock());
        const hit = await this.#durableHit(key, record, call, flight, createdAfter, token);
        if (hit !== undefined) {
          if (hit.stored) locked = false;
          return hit.landed;
        }
      }
      const started = performance.now();
      counters.loads++;
      let value: unknown;
      try {
        value = await loader({ key, stale: flight.stale?.value });
      } catch (error) {
        counters.loaded(key, started, error);
        this.#backOff(key, flight);
        throw error;
      }
      // From the `load` event to the L1 write below nothing is awaited: whoever hears the event
      // finds the value in L1.
      counters.loaded(key, started, undefined);
      const now = options.clock();
      const entry = createEntry(value, call, now, options.jitter);
      // delete()/set() raced this load: answer the callers, keep nothing, let the waiters retry.
      if (flight.invalidated) return { entry, source: 'loader' };
      if (await writeThrough(this.#context, key, entry, now, token, 'background')) locked = false;
      return { entry, source: 'loader' };
    } finally {
      if (locked) this.#release(key, token);
    }
  }

  /**
   * Before loading: a fresh value in Redis, or Redis's lock on the key (`token`; '' when there is
   * no Redis, or it cannot be reached), waiting while another process holds it.
   */
  async #begin(key: string, flight: Flight, createdAfter: number, missCounted: boolean): Promise<Start> {
    const { l2, bus, counters, options } = this.#context;
    if (l2 === undefined) return WITHOUT_LOCK;
    const mine = `${this.#context.id}:${++this.#lockSeq}`;
    let delay = options.pollInterval;
    let counted = missCounted;
    for (;;) {
      let found;
      try {
        found = await l2.getOrLock(key, options.clock(), mine, createdAfter);
      } catch {
        // Redis is unreachable: load without the cross-process lock rather than not at all.
        return WITHOUT_LOCK;
      }
      if (found.kind === 'fresh') {
        counters.hit(key, 'l2');
        if (!flight.invalidated) this.#context.l1.set(key, found.entry);
        return { kind: 'found', landed: { entry: found.entry, source: 'l2' } };
      }
      if (!counted) {
        counted = true;
        counters.miss(key, 'l2');
      }
      if (found.entry !== undefined && options.clock() < found.entry.staleUntil) flight.offer(found.entry, 'l2');
      if (found.kind === 'locked') return { kind: 'run', token: mine };
      // Another process is loading: wait until its value lands (pub/sub), or poll.
      if (delay === options.pollInterval) counters.waits++;
      await (bus !== undefined ? bus.waitFor(key, delay) : sleep(delay));
      delay = Math.min(delay * 2, options.pollInterval * 4);
    }
  }

  /**
   * After L1 and L2 missed: a fresh record of the durable tier (created after `createdAfter`, so
   * that an eager refresh still calls the loader) is the answer, and is written back to L1 and L2
   * (releasing our lock, like a load); an expired one within the durable tier's grace is offered
   * to the flight as its stale fallback. Undefined when the loader must run.
   */
  async #durableHit(
    key: string,
    record: Entry | undefined,
    call: ResolvedCallOptions,
    flight: Flight,
    createdAfter: number,
    token: string,
  ): Promise<{ landed: Landed; stored: boolean } | undefined> {
    const { options, counters } = this.#context;
    const now = options.clock();
    if (record !== undefined && now < record.expiresAt && record.createdAt > createdAfter) {
      counters.hit(key, 'durable');
      const entry = fromDurable(record, call.ttl, call.grace, now);
      const landed: Landed = { entry, source: 'durable' };
      if (flight.invalidated) return { landed, stored: false };
      return { landed, stored: await writeThrough(this.#context, key, entry, now, token, 'skip') };
    }
    counters.miss(key, 'durable');
    if (record !== undefined) flight.offer(record, 'durable');
    return undefined;
  }

  /** Grace backoff: after a failed load, serve the stale entry for a while without calling the loader. */
  #backOff(key: string, flight: Flight): void {
    const { options, l1 } = this.#context;
    const stale = flight.stale;
    if (options.graceBackoff > 0 && stale !== undefined && !flight.invalidated) {
      const now = options.clock();
      if (now < stale.staleUntil) l1.set(key, { ...stale, retryAt: now + options.graceBackoff });
    }
  }

  /** Frees our loader lock in Redis and wakes the processes waiting on it. */
  #release(key: string, token: string): void {
    // Fire and forget: a failure is reported by the Redis tier, and the lock lapses after lockTtl.
    this.#context.l2?.release(key, token, busMessage(this.#context, { t: 'rel', k: key })).catch(() => {});
  }
}
