/**
 * The keyed waiter behind every "wait until another process is done" in idem: local callers
 * watch a key, whatever reads the pub/sub messages wakes the key, and a waiter that no message
 * wakes gives up after its polling interval, so the caller looks at its store again. Messages can
 * be lost (a subscriber reconnecting, a crashed holder that never publishes): the polling backstop
 * is what makes waiting correct, the notification (Redis pub/sub, PostgreSQL NOTIFY) only makes it
 * fast. Shared by the Redis store, the cache's bus and the PostgreSQL store.
 */

/** One caller's watch on a key. */
export interface Watch {
  /**
   * Resolves true when the key was woken since the watch began (at once if it already was), or
   * false when `ms` passes first: time to poll.
   */
  next(ms: number): Promise<boolean>;
  /** Ends the watch; when it was the key's last, `onIdle` of the waiters runs. */
  stop(): void;
}

/**
 * The callers waiting on keys of one subscription. Tied to no store: the owner feeds it the
 * wake-ups its connection delivers.
 *
 * @example
 * const waiters = new KeyedWaiters({ onIdle: (channel) => void subscriber.unsubscribe(channel) });
 * subscriber.on('message', (channel) => waiters.wake(channel));
 * const watch = waiters.watch(channel);
 * const woken = await watch.next(500); // false: nobody published, look again
 * watch.stop();
 */
export class KeyedWaiters<Key = string> {
  readonly #waiting = new Map<Key, Set<() => void>>();
  readonly #onIdle: ((key: Key) => void) | undefined;

  /** `onIdle` runs when the last watch of a key stops (e.g. to unsubscribe its channel). */
  constructor(options: { onIdle?: (key: Key) => void } = {}) {
    this.#onIdle = options.onIdle;
  }

  /** Whether anybody watches `key`. */
  watching(key: Key): boolean {
    return this.#waiting.has(key);
  }

  /** Starts a watch on `key`: a wake-up from now on is kept until {@link Watch.next} asks for it. */
  watch(key: Key): Watch {
    let listeners = this.#waiting.get(key);
    if (listeners === undefined) {
      listeners = new Set();
      this.#waiting.set(key, listeners);
    }
    const set = listeners;
    const waiting = this.#waiting;
    const onIdle = this.#onIdle;
    let woken = false;
    let wake: (() => void) | undefined;
    function listener(): void {
      woken = true;
      wake?.();
    }
    set.add(listener);
    return {
      next(ms) {
        if (woken) return Promise.resolve(true);
        return new Promise<boolean>((resolve) => {
          const timer = setTimeout(function pollBackstop() {
            wake = undefined;
            resolve(false);
          }, ms);
          wake = () => {
            clearTimeout(timer);
            wake = undefined;
            resolve(true);
          };
        });
      },
      stop() {
        if (!set.delete(listener) || set.size > 0 || waiting.get(key) !== set) return;
        waiting.delete(key);
        onIdle?.(key);
      },
    };
  }

  /** Wakes every watch of `key`. */
  wake(key: Key): void {
    const listeners = this.#waiting.get(key);
    if (listeners !== undefined) for (const listener of [...listeners]) listener();
  }

  /** Wakes every watch of every key (the owner is closing). */
  wakeAll(): void {
    for (const listeners of this.#waiting.values()) for (const listener of [...listeners]) listener();
  }
}
