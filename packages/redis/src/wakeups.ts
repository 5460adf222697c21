/**
 * Wake-ups for `waitFor` through Redis pub/sub: one subscriber connection per store, made with
 * `client.duplicate()` on first use, subscribed to a key's channel only while a local waiter
 * waits on it. The scripts PUBLISH on completion, release and delete. Regular (not sharded)
 * pub/sub: on a Cluster a PUBLISH reaches subscribers on every node, so the subscriber may sit
 * on any of them and survives resharding; ioredis resubscribes after a reconnect. Messages lost
 * while disconnected are covered by the waiter's polling.
 */
import type { Logger } from '@idem/core';
import { KeyedWaiters, type Watch } from '@idem/core/adapter';
import type { Cluster, Redis } from 'ioredis';
import { withTimeout } from './timeout.js';

/** One waiter's subscription to a channel: `next(ms)` is true when a message came, false when `ms` passed first. */
export type { Watch };

/** Subscriptions shared by the waiters of one store. */
export interface Wakeups {
  /** Resolves once Redis confirmed the subscription, so that no later message can be missed. */
  watch(channel: string): Promise<Watch>;
  /** Wakes every waiter and closes the subscriber connection. */
  close(): Promise<void>;
}

/**
 * Pub/sub wake-ups over a duplicate of `client`: the kit's keyed waiters, keyed by channel.
 *
 * @example
 * const watch = await wakeups.watch('idem:{k}:done');
 * const woken = await watch.next(500);
 * watch.stop();
 */
export function pubsubWakeups(client: Redis | Cluster, options: { timeoutMs: number; logger: Logger }): Wakeups {
  const { timeoutMs, logger } = options;
  /** The SUBSCRIBE of each channel somebody watches, answered or not. */
  const subscriptions = new Map<string, Promise<unknown>>();
  const waiters = new KeyedWaiters<string>({ onIdle: unsubscribe });
  let subscriber: Redis | Cluster | undefined;
  let closed = false;

  function connection(): Redis | Cluster {
    if (subscriber !== undefined) return subscriber;
    const created = client.duplicate();
    created.on('message', function onMessage(channel: string) {
      waiters.wake(channel);
    });
    // ioredis emits an error on every reconnect attempt: say it once per outage, and say when it ends.
    let down = false;
    created.on('error', function onSubscriberError(error: unknown) {
      if (down) return;
      down = true;
      logger.warn({ err: error }, 'idem: pub/sub connection failed; waiters fall back to polling until it reconnects');
    });
    created.on('ready', function onSubscriberReady() {
      if (!down) return;
      down = false;
      logger.info({}, 'idem: pub/sub connection is back');
    });
    subscriber = created;
    return created;
  }

  function unsubscribe(channel: string): void {
    if (!subscriptions.delete(channel)) return;
    subscriber?.unsubscribe(channel).catch(() => {
      // The connection is down; ioredis only resubscribes channels still subscribed, so nothing leaks.
    });
  }

  return {
    async watch(channel) {
      if (closed) throw new Error('idem: the Redis store is closed');
      let subscribed = subscriptions.get(channel);
      if (subscribed === undefined) {
        subscribed = connection().subscribe(channel);
        subscriptions.set(channel, subscribed);
      }
      const watch = waiters.watch(channel);
      try {
        await withTimeout(subscribed, timeoutMs, 'subscribe');
      } catch (error) {
        watch.stop();
        // A failed subscription must not be reused by the next waiter.
        if (subscriptions.get(channel) === subscribed) unsubscribe(channel);
        throw error;
      }
      return watch;
    },

    async close() {
      closed = true;
      waiters.wakeAll();
      subscriptions.clear();
      const connection = subscriber;
      subscriber = undefined;
      if (connection === undefined) return;
      try {
        await withTimeout(connection.quit(), timeoutMs, 'close');
      } catch {
        connection.disconnect();
      }
    },
  };
}
