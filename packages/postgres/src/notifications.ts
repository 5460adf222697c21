/**
 * Wake-ups for `waitFor` through LISTEN/NOTIFY: one connection per store, a `pg.Client` of its
 * own made with the pool's settings (not a pooled client: a LISTEN connection is held for the
 * store's whole life and would shrink the pool, and pg-pool may recycle it), opened on the first
 * wait. It listens on the table's channel; complete, release and delete send the key as payload
 * in the same statement, so the message leaves with the commit. When the connection fails (the
 * database restarted), it is made again with a backoff; messages lost meanwhile are covered by
 * the waiters' polling.
 */
import type { Logger } from '@idem/core';
import { KeyedWaiters, type Watch } from '@idem/core/adapter';
import type { Client, ClientConfig, Notification, Pool } from 'pg';

export type { Watch };

/** The LISTEN connection of one store. */
export interface Notifications {
  /** Resolves once the store is listening, so that no later notification can be missed. */
  watch(key: string): Promise<Watch>;
  /** Wakes every waiter, stops reconnecting and closes the connection. */
  close(): Promise<void>;
}

type ClientClass = new (config: ClientConfig) => Client;

/** LISTEN on `channel` over a client made from `pool`'s config. */
export function listenNotifications(
  pool: Pool,
  channel: string,
  options: { timeoutMs: number; logger: Logger },
): Notifications {
  const { timeoutMs, logger } = options;
  const waiters = new KeyedWaiters();
  let listening: Promise<Client> | undefined;
  let current: Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let backoff = 100;
  let closed = false;
  let down = false;

  function lost(client: Client, error?: unknown): void {
    // 'error' and 'end' both come; and a late one of an old connection must not drop the new one.
    if (client !== current) return;
    current = undefined;
    listening = undefined;
    client.removeAllListeners('notification');
    client.end().catch(() => {});
    if (closed) return;
    if (!down) logger.warn({ err: error }, 'idem: the LISTEN connection failed; waiters poll until it is back');
    down = true;
    // Reconnect in the background even with nobody waiting, so that the next waiter finds it up.
    retry = setTimeout(() => {
      retry = undefined;
      connection().catch(() => {});
    }, backoff);
    retry.unref();
    backoff = Math.min(backoff * 2, 2_000);
  }

  function connection(): Promise<Client> {
    if (listening !== undefined) return listening;
    const Make = (pool as unknown as { Client: ClientClass }).Client;
    const client = new Make({ ...pool.options, connectionTimeoutMillis: timeoutMs, keepAlive: true });
    current = client;
    client.on('error', (error) => lost(client, error));
    client.on('end', () => lost(client));
    client.on('notification', (message: Notification) => {
      waiters.wake(message.payload ?? '');
    });
    const opening = (async () => {
      await client.connect();
      // The channel is a fixed identifier of our own making (see channelOf), safe to quote as is.
      await client.query(`LISTEN "${channel}"`);
      if (down) logger.info({}, 'idem: the LISTEN connection is back');
      down = false;
      backoff = 100;
      return client;
    })();
    listening = opening;
    opening.catch((error: unknown) => lost(client, error));
    return opening;
  }

  function bounded(promise: Promise<Client>): Promise<Client> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`idem: LISTEN not ready within ${timeoutMs} ms`)), timeoutMs);
      promise.then(
        (c) => (clearTimeout(timer), resolve(c)),
        (e: unknown) => (clearTimeout(timer), reject(e)),
      );
    });
  }

  return {
    async watch(key) {
      if (closed) throw new Error('idem: the PostgreSQL store is closed');
      // Watch first, then wait for LISTEN: a notification in between is kept for the first next().
      const watch = waiters.watch(key);
      try {
        await bounded(connection());
      } catch (error) {
        watch.stop();
        throw error;
      }
      return watch;
    },

    async close() {
      closed = true;
      clearTimeout(retry);
      waiters.wakeAll();
      const opening = listening;
      const client = current;
      listening = undefined;
      current = undefined;
      if (opening === undefined || client === undefined) return;
      await opening.catch(() => undefined);
      client.removeAllListeners('end');
      const ended = await Promise.race([
        client.end().then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => setTimeout(resolve, timeoutMs, false).unref()),
      ]);
      // A paused server never confirms the end: drop the socket so it cannot keep the process alive.
      if (!ended)
        (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    },
  };
}
