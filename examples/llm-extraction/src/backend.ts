/**
 * Where idempotency records live: Redis (shared by every instance, in-flight locks via Redlock)
 * when `REDIS_URL` is set and reachable, otherwise the in-process memory store. An unreachable
 * Redis at start is reported loudly and the service falls back to memory rather than not starting.
 */
import { memoryStore, type IdempotencyStore } from '@idem/core';
import { redisStore } from '@idem/redis';
import { Redis } from 'ioredis';
import type { Logger } from './logger.js';

/** The store and, with Redis, the client it runs on (the customer cache shares it). */
export interface Backend {
  kind: 'memory' | 'redis';
  store: IdempotencyStore;
  redis: Redis | undefined;
  /** Why the service runs on memory although `REDIS_URL` was set; undefined otherwise. */
  fallbackReason: string | undefined;
  /** True when the store answers (always, for memory). */
  ping(): Promise<boolean>;
  /** A line for the start-up banner. */
  describe(): string;
  /** Closes the store and the Redis connection this module opened. */
  close(): Promise<void>;
}

/** `redis://user:secret@host` → `redis://user:***@host`, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The embedded store: exactly-once within this process only. */
export function memoryBackend(fallbackReason?: string): Backend {
  const store = memoryStore();
  return {
    kind: 'memory',
    store,
    redis: undefined,
    fallbackReason,
    ping: async () => true,
    describe: () =>
      fallbackReason === undefined
        ? 'memory (this process only; set REDIS_URL to share across instances)'
        : `memory — FALLBACK, Redis unreachable: ${fallbackReason}`,
    close: async () => {
      await store.close?.();
    },
  };
}

/** Options of {@link connectBackend}. */
export interface ConnectOptions {
  /** Longest wait for Redis to answer at start. @default 3000 */
  connectTimeoutMs?: number;
}

/**
 * Connects to `redisUrl` and returns the Redis store, or — when `redisUrl` is undefined or Redis
 * does not answer within `connectTimeoutMs` — the memory store (logged at error level when it is
 * a fallback).
 */
export async function connectBackend(
  redisUrl: string | undefined,
  logger: Logger,
  options: ConnectOptions = {},
): Promise<Backend> {
  if (redisUrl === undefined) return memoryBackend();
  const connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
  const where = redactUrl(redisUrl);
  const client = new Redis(redisUrl, { lazyConnect: true, connectTimeout: connectTimeoutMs, maxRetriesPerRequest: 1 });

  // ioredis reports every failed reconnect attempt; one line per outage is enough. Failures of
  // the first connection are reported below, as the fallback.
  let connected = false;
  let down = false;
  let connectError: Error | undefined;
  client.on('error', (error: Error) => {
    if (!connected) connectError ??= error;
    if (!connected || down) return;
    down = true;
    logger.warn({ err: error, redis: where }, 'Redis connection lost; reconnecting (requests get 503 meanwhile)');
  });
  client.on('ready', () => {
    if (down) logger.info({ redis: where }, 'Redis connection restored');
    down = false;
  });

  try {
    await withTimeout(
      client.connect().then(() => client.ping()),
      connectTimeoutMs,
      'connecting to Redis',
    );
  } catch (error) {
    client.disconnect();
    // connect() itself rejects with "Connection is closed."; the socket's error says why.
    const reason = `${where}: ${(connectError ?? (error as Error)).message}`;
    logger.error(
      { err: connectError ?? error, redis: where },
      `REDIS_URL is set but Redis is unreachable (${reason}). FALLING BACK TO THE IN-MEMORY STORE: duplicates are caught only within this one process, and records vanish on restart. Start Redis or fix REDIS_URL, then restart.`,
    );
    return memoryBackend(reason);
  }
  connected = true;

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
      await client.quit().catch(() => client.disconnect());
    },
  };
}
