import { busMessage, type CacheContext } from './context.js';
import { createEntry } from './entry.js';
import type { Entry } from './memory-tier.js';
import type { ResolvedCallOptions } from './options.js';
import type { Loader, Source } from './types.js';
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
  ): Promise<Landed> {
    // Without Redis the loader is called at once, in the caller's own tick, as it always was.
    const start = this.#context.l2 === undefined ? WITHOUT_LOCK : await this.#begin(key, flight, createdAfter);
    if (start.kind === 'found') return start.landed;
    const { token } = start;
    // Whether our lock in Redis still stands: every way out of here that has not freed it (a
    // successful write does) frees it in `finally`, so the waiting processes go on at once.
    let locked = token !== '';
    try {
      const { counters, options } = this.#context;
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
      if (await writeThrough(this.#context, key, entry, now, token)) locked = false;
      return { entry, source: 'loader' };
    } finally {
      if (locked) this.#release(key, token);
    }
  }

  /**
   * Before loading: a fresh value in Redis, or Redis's lock on the key (`token`; '' when there is
   * no Redis, or it cannot be reached), waiting while another process holds it.
   */
  async #begin(key: string, flight: Flight, createdAfter: number): Promise<Start> {
    const { l2, bus, counters, options } = this.#context;
    if (l2 === undefined) return WITHOUT_LOCK;
    const mine = `${this.#context.id}:${++this.#lockSeq}`;
    let delay = options.pollInterval;
    let counted = false;
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
