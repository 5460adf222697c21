/**
 * Redis at start: one connection, shared by the Redis store (when Redis holds the records) and the
 * customer cache's shared tier. Outages after start are logged once each, and ioredis reconnects.
 */
import { redisStore } from '@idem/redis';
import { Redis } from 'ioredis';
import type { Backend } from './backend.js';
import type { Logger } from './logger.js';
import { redactUrl } from './redact-url.js';
import { withTimeout } from './with-timeout.js';

/** A connected client, or why there is none. `where` is the URL without its password. */
export type RedisConnection =
  { ok: true; client: Redis; where: string } | { ok: false; reason: string; error: unknown; where: string };

/** Connects to `url` and PINGs it within `timeoutMs`; never throws. */
export async function connectRedis(url: string, logger: Logger, timeoutMs: number): Promise<RedisConnection> {
  const where = redactUrl(url);
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 1 });

  // ioredis reports every failed reconnect attempt; one line per outage is enough. Failures of
  // the first connection are the caller's to report.
  let connected = false;
  let down = false;
  let connectError: Error | undefined;
  client.on('error', (error: Error) => {
    if (!connected) connectError ??= error;
    if (!connected || down) return;
    down = true;
    logger.warn({ err: error, redis: where }, 'Redis connection lost; reconnecting');
  });
  client.on('ready', () => {
    if (down) logger.info({ redis: where }, 'Redis connection restored');
    down = false;
  });

  try {
    await withTimeout(
      client.connect().then(() => client.ping()),
      timeoutMs,
      'connecting to Redis',
    );
  } catch (error) {
    client.disconnect();
    // connect() itself rejects with "Connection is closed."; the socket's error says why.
    const cause = connectError ?? (error as Error);
    return { ok: false, reason: `${where}: ${cause.message}`, error: cause, where };
  }
  connected = true;
  return { ok: true, client, where };
}

/** Quits `client`, or drops it when it does not answer. */
export async function closeRedis(client: Redis): Promise<void> {
  await client.quit().catch(() => client.disconnect());
}

/** Records on Redis (requests get 503 while it is down), the customer cache on the same client. */
export function redisBackend({ client, where }: { client: Redis; where: string }, logger: Logger): Backend {
  const store = redisStore({ client, logger });
  return {
    kind: 'redis',
    store,
    redis: client,
    fallbackReason: undefined,
    ping: () =>
      withTimeout(client.ping(), 500, 'Redis PING').then(
        () => true,
        () => false,
      ),
    describe: () => `redis at ${where} (locks via Redlock, shared by every instance)`,
    close: async () => {
      await store.close();
      await closeRedis(client);
    },
  };
}
