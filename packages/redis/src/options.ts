import { IdempotencyConfigError, type Duration, type Logger } from '@idem/core';
import { MAX_TIMER_MS, checkLogger, checkOptions, parseDuration } from '@idem/core/adapter';
import { isRedisClient } from '@idem/redis-kit';
import type { Cluster, Redis } from 'ioredis';

/** The defaults of `redisStore()`, declared once. */
export const defaults = Object.freeze({
  prefix: 'idem:',
  commandTimeout: '1s',
  pollInterval: '500ms',
} as const);

/**
 * Options of `redisStore()`.
 *
 * @example
 * redisStore({ client: records, lockClients: [records, lockB, lockC], commandTimeout: '500ms' });
 */
export interface RedisStoreOptions {
  /** The ioredis `Redis` or `Cluster` the records live on. You own it: the store never closes it. */
  client: Redis | Cluster;
  /** Prefix of every key the store writes; must not contain `{` or `}` (the store adds the hash tag). @default 'idem:' */
  prefix?: string;
  /**
   * The independent masters of the Redlock quorum that guards in-flight keys (an odd number,
   * e.g. three). The lock on a majority of them is what makes a claim exclusive.
   * @default [client]
   */
  lockClients?: readonly (Redis | Cluster)[];
  /** Longest wait for any one Redis answer; past it the operation throws and the engine answers 503 (or runs fail-open). @default '1s' */
  commandTimeout?: Duration;
  /** How often a `concurrent: 'wait'` waiter re-checks the key when no pub/sub message came. @default '500ms' */
  pollInterval?: Duration;
  /** A pino logger for what the store handles itself (a lock release after a stored response failing, pub/sub reconnects). @default silent */
  logger?: Logger;
}

/** Options after validation, with defaults applied. */
export interface ResolvedRedisStoreOptions {
  client: Redis | Cluster;
  prefix: string;
  lockClients: readonly (Redis | Cluster)[];
  /** The lock lives on `client` itself, so scripts can check and drop it in the same step. */
  lockOnClient: boolean;
  commandTimeout: number;
  pollInterval: number;
  logger: Logger;
}

const KNOWN = ['client', 'prefix', 'lockClients', 'commandTimeout', 'pollInterval', 'logger'];
const fail = (option: string, message: string): IdempotencyConfigError => new IdempotencyConfigError(option, message);

/** Validates the options once, at creation; a bad one throws an {@link IdempotencyConfigError} naming it. */
export function resolveRedisStoreOptions(options: RedisStoreOptions): ResolvedRedisStoreOptions {
  if (options === null || typeof options !== 'object') {
    throw fail('options', 'expected an object such as { client: new Redis(url) }');
  }
  checkOptions(options, KNOWN, fail);
  const { client } = options;
  if (!isRedisClient(client)) {
    throw fail('client', 'expected an ioredis Redis or Cluster instance, e.g. new Redis(url)');
  }

  const prefix = options.prefix ?? defaults.prefix;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    const why = 'the store adds the Cluster hash tag itself';
    throw fail('prefix', `expected a string without { or } (${why}), got ${JSON.stringify(prefix)}`);
  }

  const lockClients = options.lockClients ?? [client];
  if (!Array.isArray(lockClients) || lockClients.length === 0 || !lockClients.every(isRedisClient)) {
    throw fail('lockClients', 'expected a non-empty array of ioredis Redis or Cluster instances (the Redlock masters)');
  }
  if (new Set(lockClients).size !== lockClients.length) {
    throw fail('lockClients', 'the same client is listed twice; each master counts once in the quorum');
  }

  return {
    client,
    prefix,
    lockClients,
    lockOnClient: lockClients.length === 1 && lockClients[0] === client,
    commandTimeout: parseDuration('commandTimeout', options.commandTimeout ?? defaults.commandTimeout, {
      fail,
      max: MAX_TIMER_MS,
    }),
    pollInterval: parseDuration('pollInterval', options.pollInterval ?? defaults.pollInterval, {
      fail,
      max: MAX_TIMER_MS,
    }),
    logger: checkLogger(options.logger, fail),
  };
}
