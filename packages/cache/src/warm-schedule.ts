import type { CacheContext } from './context.js';
import { CacheConfigError } from './errors.js';
import { timerDuration } from './options.js';
import type { Duration, WarmEntry, WarmEveryOptions, WarmSchedule, WarmSource } from './types.js';

const KNOWN = new Set(['name', 'immediate']);

/**
 * The `warmEvery` schedules of one cache. Each turn of a schedule runs in one process: the one
 * that takes the schedule's lock in Redis, held for one interval from the start of its run (and
 * renewed while a run outlasts it), so however many processes tick, a schedule runs about once per
 * interval, and never twice at once. In a process, a turn that comes while the previous run still
 * runs is skipped. Without Redis (or while it is unreachable) each process runs its own turns:
 * warmed rather than not.
 * @internal
 */
export class WarmSchedules {
  readonly #context: CacheContext;
  readonly #store: (entries: Iterable<WarmEntry>) => Promise<number>;
  readonly #running = new Set<Schedule>();
  #seq = 0;

  constructor(context: CacheContext, store: (entries: Iterable<WarmEntry>) => Promise<number>) {
    this.#context = context;
    this.#store = store;
  }

  start<T>(interval: Duration, entries: WarmSource<T>, options: WarmEveryOptions = {}): WarmSchedule {
    const ms = timerDuration('interval', interval);
    if (
      entries === null ||
      (typeof entries !== 'function' && typeof (entries as Iterable<T>)?.[Symbol.iterator] !== 'function')
    ) {
      throw new CacheConfigError('entries', 'expected a list of { key, value } entries or a function returning one');
    }
    if (options === null || typeof options !== 'object')
      throw new CacheConfigError('options', 'expected { name, immediate }');
    for (const option of Object.keys(options)) {
      if (!KNOWN.has(option)) throw new CacheConfigError(option, 'unknown option of warmEvery()');
    }
    const name = options.name ?? 'default';
    if (typeof name !== 'string' || name === '') throw new CacheConfigError('name', 'expected a non-empty string');
    const immediate = options.immediate ?? true;
    if (typeof immediate !== 'boolean') throw new CacheConfigError('immediate', 'expected true or false');
    const token = `${this.#context.id}:w${++this.#seq}`;
    const schedule = new Schedule(this.#context, this.#store, name, ms, entries as WarmSource, token);
    this.#running.add(schedule);
    schedule.start(immediate, () => this.#running.delete(schedule));
    return { stop: () => schedule.stop() };
  }

  /** Stops every schedule (at `close()`). */
  stopAll(): void {
    for (const schedule of this.#running) schedule.stop();
  }
}

class Schedule {
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stopped = false;
  #onStop: () => void = () => {};

  constructor(
    private readonly context: CacheContext,
    private readonly store: (entries: Iterable<WarmEntry>) => Promise<number>,
    private readonly name: string,
    private readonly interval: number,
    private readonly entries: WarmSource,
    private readonly token: string,
  ) {}

  start(immediate: boolean, onStop: () => void): void {
    this.#onStop = onStop;
    // Unref'd: a schedule alone does not keep the process alive.
    this.#timer = setInterval(() => void this.#turn(), this.interval).unref();
    if (immediate) void this.#turn();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#onStop();
  }

  async #turn(): Promise<void> {
    if (this.#stopped) return;
    if (this.#running) return this.#skipped('overlap');
    this.#running = true;
    try {
      const { l2 } = this.context;
      let locked = false;
      if (l2 !== undefined) {
        try {
          locked = await l2.tryScheduleLock(this.name, this.token, this.interval);
          if (!locked) return this.#skipped('elsewhere');
        } catch {
          // Redis unreachable (reported through `l2Error`): this process runs its own turn.
        }
      }
      if (this.#stopped) return;
      await this.#run(locked);
    } finally {
      this.#running = false;
    }
  }

  async #run(locked: boolean): Promise<void> {
    const { l2, events, options } = this.context;
    const started = performance.now();
    // A run that outlasts the interval keeps the lock, so that no other process starts meanwhile.
    const renew = locked
      ? setInterval(
          () => {
            l2?.leaseScheduleLock(this.name, this.token, this.interval).catch(() => {});
          },
          Math.max(1, Math.floor(this.interval / 3)),
        ).unref()
      : undefined;
    try {
      const source = typeof this.entries === 'function' ? await this.entries() : this.entries;
      const stored = await this.store(source);
      events.emit('warm', {
        name: this.name,
        outcome: 'stored',
        entries: stored,
        durationMs: performance.now() - started,
      });
    } catch (error) {
      if (!this.#stopped)
        options.logger.warn({ err: error, schedule: this.name }, 'idem cache: a warmEvery run failed');
      events.emit('warm', {
        name: this.name,
        outcome: 'failed',
        entries: 0,
        durationMs: performance.now() - started,
        error,
      });
    } finally {
      clearInterval(renew);
      if (locked) {
        // The lock lasts until one interval after the run began: the next turn, wherever it ticks.
        const left = Math.ceil(this.interval - (performance.now() - started));
        l2?.leaseScheduleLock(this.name, this.token, Math.max(0, left)).catch(() => {});
      }
    }
  }

  #skipped(reason: 'overlap' | 'elsewhere'): void {
    this.context.events.emit('warm', { name: this.name, outcome: 'skipped', entries: 0, durationMs: 0, reason });
  }
}
