/**
 * Wake-ups for `waitFor` through Redis pub/sub: one subscriber connection per store, made with
 * `client.duplicate()` on first use, subscribed to a key's channel only while a local waiter
 * waits on it. The scripts PUBLISH on completion, release and delete. Regular (not sharded)
 * pub/sub: on a Cluster a PUBLISH reaches subscribers on every node, so the subscriber may sit
 * on any of them and survives resharding; ioredis resubscribes after a reconnect. Messages lost
 * while disconnected are covered by the waiter's polling.
 */
import type { Logger } from '@idem/core';
import type { Cluster, Redis } from 'ioredis';
import { withTimeout } from './timeout.js';

/** One waiter's subscription to a channel. */
export interface Watch {
  /** Resolves true when a message arrives within `ms`, false when `ms` passes first. */
  next(ms: number): Promise<boolean>;
  /** Ends the watch; the channel is unsubscribed when its last watcher stops. */
  stop(): void;
}

/** Subscriptions shared by the waiters of one store. */
export interface Wakeups {
  /** Resolves once Redis confirmed the subscription, so that no later message can be missed. */
  watch(channel: string): Promise<Watch>;
  /** Wakes every waiter and closes the subscriber connection. */
  close(): Promise<void>;
}

interface Channel {
  listeners: Set<() => void>;
  subscribed: Promise<unknown>;
}

/**
 * Pub/sub wake-ups over a duplicate of `client`.
 *
 * @example
 * const watch = await wakeups.watch('idem:{k}:done');
 * const woken = await watch.next(500);
 * watch.stop();
 */
export function pubsubWakeups(client: Redis | Cluster, options: { timeoutMs: number; logger: Logger }): Wakeups {
  const { timeoutMs, logger } = options;
  const channels = new Map<string, Channel>();
  let subscriber: Redis | Cluster | undefined;
  let closed = false;

  function connection(): Redis | Cluster {
    if (subscriber !== undefined) return subscriber;
    const created = client.duplicate();
    created.on('message', function onMessage(channel: string) {
      const entry = channels.get(channel);
      if (entry !== undefined) for (const wake of [...entry.listeners]) wake();
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

  function unsubscribe(channel: string, entry: Channel): void {
    if (channels.get(channel) !== entry) return;
    channels.delete(channel);
    subscriber?.unsubscribe(channel).catch(() => {
      // The connection is down; ioredis only resubscribes channels still subscribed, so nothing leaks.
    });
  }

  return {
    async watch(channel) {
      if (closed) throw new Error('idem: the Redis store is closed');
      let entry = channels.get(channel);
      if (entry === undefined) {
        entry = { listeners: new Set(), subscribed: connection().subscribe(channel) };
        channels.set(channel, entry);
      }
      const current = entry;
      let woken = false;
      let wake: (() => void) | undefined;
      function listener(): void {
        woken = true;
        wake?.();
      }
      current.listeners.add(listener);
      function stop(): void {
        current.listeners.delete(listener);
        if (current.listeners.size === 0) unsubscribe(channel, current);
      }
      try {
        await withTimeout(current.subscribed, timeoutMs, 'subscribe');
      } catch (error) {
        stop();
        // A failed subscription must not be reused by the next waiter.
        unsubscribe(channel, current);
        throw error;
      }
      return {
        stop,
        next(ms) {
          if (woken) return Promise.resolve(true);
          return new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => {
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
      };
    },

    async close() {
      closed = true;
      for (const entry of channels.values()) for (const wake of entry.listeners) wake();
      channels.clear();
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
