import { IdempotencyConfigError, type Duration, type Logger } from '@idem/core';
import { parseDuration } from '@idem/core/adapter';
import type { Cluster, Redis } from 'ioredis';

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
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function isClient(value: unknown): value is Redis | Cluster {
  const candidate = value as Record<string, unknown> | null;
  return typeof candidate === 'object' && candidate !== null
    && typeof candidate.defineCommand === 'function' && typeof candidate.duplicate === 'function' && typeof candidate.hgetallBuffer === 'function';
}

/** Validates the options once, at creation; a bad one throws a TypeError naming it. */
export function resolveRedisStoreOptions(options: RedisStoreOptions): ResolvedRedisStoreOptions {
  if (options === null || typeof options !== 'object') throw new IdempotencyConfigError('options', 'expected an object such as { client: new Redis(url) }');
  for (const name of Object.keys(options)) {
    if (!KNOWN.includes(name)) throw new IdempotencyConfigError(name, `unknown option (known: ${KNOWN.join(', ')})`);
  }
  const { client } = options;
  if (!isClient(client)) throw new IdempotencyConfigError('client', 'expected an ioredis Redis or Cluster instance, e.g. new Redis(url)');

  const prefix = options.prefix ?? 'idem:';
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new IdempotencyConfigError('prefix', `expected a string without { or } (the store adds the Cluster hash tag itself), got ${JSON.stringify(prefix)}`);
  }

  const lockClients = options.lockClients ?? [client];
  if (!Array.isArray(lockClients) || lockClients.length === 0 || !lockClients.every(isClient)) {
    throw new IdempotencyConfigError('lockClients', 'expected a non-empty array of ioredis Redis or Cluster instances (the Redlock masters)');
  }
  if (new Set(lockClients).size !== lockClients.length) throw new IdempotencyConfigError('lockClients', 'the same client is listed twice; each master counts once in the quorum');

  const logger = options.logger ?? silent;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') throw new IdempotencyConfigError('logger', `expected a pino-like logger (missing ${level}())`);
  }

  return {
    client,
    prefix,
    lockClients,
    lockOnClient: lockClients.length === 1 && lockClients[0] === client,
    commandTimeout: parseDuration('commandTimeout', options.commandTimeout ?? '1s', { fail }),
    pollInterval: parseDuration('pollInterval', options.pollInterval ?? '500ms', { fail }),
    logger,
  };
}
