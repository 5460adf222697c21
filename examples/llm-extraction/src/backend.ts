/**
 * Where idempotency records live, chosen at start from the environment:
 *
 * - `DATABASE_URL`: PostgreSQL in lease mode — durable records, shared by every instance;
 * - else `REDIS_URL`: Redis — shared by every instance, in-flight locks via Redlock;
 * - else the in-process memory store.
 *
 * With both URLs, records go to PostgreSQL and Redis carries the customer cache's shared tier
 * (`@idem/cache` has no PostgreSQL tier). A store unreachable at start is reported loudly and the
 * service falls back to memory rather than not starting.
 */
import { memoryStore, type IdempotencyStore } from '@idem/core';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { connectPostgres } from './postgres-backend.js';
import { closeRedis, connectRedis, redisBackend } from './redis-backend.js';

/** The store and, when Redis is reachable, the client the customer cache shares. */
export interface Backend {
  kind: 'memory' | 'redis' | 'postgres';
  store: IdempotencyStore;
  /** The Redis client of the customer cache's shared tier; undefined without a reachable `REDIS_URL`. */
  redis: Redis | undefined;
  /** Why the service runs on memory although `DATABASE_URL` or `REDIS_URL` was set; undefined otherwise. */
  fallbackReason: string | undefined;
  /** True when the store answers (always, for memory). */
  ping(): Promise<boolean>;
  /** A line for the start-up banner. */
  describe(): string;
  /** Closes the store and the connections this module opened (pool, Redis client). */
  close(): Promise<void>;
}

/** Which store the service wanted when it fell back to memory, and why it could not have it. */
export interface Fallback {
  from: 'Redis' | 'PostgreSQL';
  reason: string;
}

/** The embedded store: exactly-once within this process only, records gone on restart. */
export function memoryBackend(fallback?: Fallback): Backend {
  const store = memoryStore();
  return {
    kind: 'memory',
    store,
    redis: undefined,
    fallbackReason: fallback?.reason,
    ping: async () => true,
    describe: () =>
      fallback === undefined
        ? 'memory (this process only; set DATABASE_URL for durable records, or REDIS_URL to share across instances)'
        : `memory — FALLBACK, ${fallback.from} unreachable: ${fallback.reason}`,
    close: async () => {
      await store.close?.();
    },
  };
}

/** Options of {@link connectBackend}. */
export interface ConnectOptions {
  /** Longest wait for Redis and PostgreSQL to answer at start. @default 3000 */
  connectTimeoutMs?: number;
}

const FALLING_BACK =
  'FALLING BACK TO THE IN-MEMORY STORE: duplicates are caught only within this one process, and records vanish on restart.';

/**
 * Connects what `urls` name and returns the backend: PostgreSQL records when `databaseUrl` is set,
 * else Redis records when `redisUrl` is set, else memory — or memory, logged at error level, when
 * the chosen store does not answer within `connectTimeoutMs`.
 */
export async function connectBackend(
  urls: Pick<Config, 'redisUrl' | 'databaseUrl'>,
  logger: Logger,
  options: ConnectOptions = {},
): Promise<Backend> {
  const timeoutMs = options.connectTimeoutMs ?? 3_000;
  const redis = urls.redisUrl === undefined ? undefined : await connectRedis(urls.redisUrl, logger, timeoutMs);

  if (urls.databaseUrl === undefined) {
    if (redis === undefined) return memoryBackend();
    if (redis.ok) return redisBackend(redis, logger);
    logger.error(
      { err: redis.error, redis: redis.where },
      `REDIS_URL is set but Redis is unreachable (${redis.reason}). ${FALLING_BACK} Start Redis or fix REDIS_URL, then restart.`,
    );
    return memoryBackend({ from: 'Redis', reason: redis.reason });
  }

  if (redis !== undefined && !redis.ok)
    logger.error(
      { err: redis.error, redis: redis.where },
      `REDIS_URL is set but Redis is unreachable (${redis.reason}). The customer cache stays in this process's memory; records are on PostgreSQL. Start Redis or fix REDIS_URL, then restart.`,
    );
  const postgres = await connectPostgres(urls.databaseUrl, logger, timeoutMs);
  let records: Backend;
  if (postgres.ok) {
    records = postgres.backend;
  } else {
    logger.error(
      { err: postgres.error, postgres: postgres.where },
      `DATABASE_URL is set but PostgreSQL is unreachable (${postgres.reason}). ${FALLING_BACK} Start PostgreSQL or fix DATABASE_URL, then restart.`,
    );
    records = memoryBackend({ from: 'PostgreSQL', reason: postgres.reason });
  }
  if (redis === undefined || !redis.ok) return records;
  return {
    ...records,
    redis: redis.client,
    describe: () => `${records.describe()}; customer cache shared on Redis at ${redis.where}`,
    close: async () => {
      await records.close();
      await closeRedis(redis.client);
    },
  };
}
