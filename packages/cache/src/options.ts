import { MAX_TIMER_MS, checkLogger, checkOptions, parseDuration } from '@idem/core/adapter';
import { isRedisClient } from '@idem/redis-kit';
import type { Redis } from 'ioredis';
import { CacheConfigError } from './errors.js';
import { jsonSerializer } from './serializer.js';
import type { CacheOptions, DurableTier, Duration, GetOrSetOptions, Logger, Serializer, SetOptions } from './types.js';

/**
 * The defaults of `createCache()`, declared once and shaped like its options; the README's option
 * table documents these values. Options without a plain default (`redis`, `timeout`, `hardTimeout`,
 * `eagerRefresh`: none; `serializer`, `logger`, `clock`) are resolved in {@link resolveCacheOptions}.
 */
export const defaults = Object.freeze({
  l1: Object.freeze({ maxEntries: 10_000 }),
  ttl: '1m',
  grace: 0,
  graceBackoff: 0,
  jitter: 0,
  namespace: 'default',
  prefix: 'idem:cache:',
  lockTtl: '10s',
  pollInterval: '50ms',
  redisTimeout: '200ms',
  breaker: Object.freeze({ threshold: 5, cooldown: '2s' }),
} as const);

/** Options after validation, durations in milliseconds. @internal */
export interface ResolvedCacheOptions {
  maxEntries: number;
  /** L1's bound in bytes, if any. */
  maxBytes: number | undefined;
  sizeOf: ((value: unknown, key: string) => number) | undefined;
  redis: Redis | undefined;
  durable: DurableTier | undefined;
  ttl: number;
  grace: number;
  graceBackoff: number;
  timeout: number | undefined;
  hardTimeout: number | undefined;
  jitter: number;
  eagerRefresh: number | undefined;
  namespace: string;
  prefix: string;
  lockTtl: number;
  pollInterval: number;
  redisTimeout: number;
  breaker: { threshold: number; cooldown: number } | undefined;
  serializer: Serializer;
  logger: Logger;
  clock: () => number;
}

/** Per-call options after validation. @internal */
export interface ResolvedCallOptions {
  ttl: number;
  grace: number;
  tags: readonly string[];
  timeout: number | undefined;
  hardTimeout: number | undefined;
  eagerRefresh: number | undefined;
}

// Written as records so that the compiler insists on every option being listed, and on no other.
const KNOWN = Object.keys({
  l1: true,
  redis: true,
  durable: true,
  ttl: true,
  grace: true,
  graceBackoff: true,
  timeout: true,
  hardTimeout: true,
  jitter: true,
  eagerRefresh: true,
  namespace: true,
  prefix: true,
  lockTtl: true,
  pollInterval: true,
  redisTimeout: true,
  breaker: true,
  serializer: true,
  logger: true,
  clock: true,
} satisfies Record<keyof CacheOptions, true>);
const KNOWN_L1 = Object.keys({ maxEntries: true, maxBytes: true, sizeOf: true } satisfies Record<
  keyof NonNullable<CacheOptions['l1']>,
  true
>);
const KNOWN_BREAKER = Object.keys({
  threshold: true,
  cooldown: true,
} satisfies Record<keyof Exclude<CacheOptions['breaker'], false | undefined>, true>);
const KNOWN_CALL = Object.keys({
  ttl: true,
  grace: true,
  tags: true,
  timeout: true,
  hardTimeout: true,
  eagerRefresh: true,
} satisfies Record<keyof GetOrSetOptions | keyof SetOptions, true>);

const fail = (option: string, message: string): CacheConfigError => new CacheConfigError(option, message);

/** Parses a duration; `allowZero` for the ones where 0 means "off". Throws naming the option. */
export function duration(option: string, value: Duration, allowZero = false): number {
  return parseDuration(option, value, { allowZero, fail });
}

/** A duration that becomes a timer: at most what Node's timers can wait for. @internal */
export function timerDuration(option: string, value: Duration): number {
  return parseDuration(option, value, { fail, max: MAX_TIMER_MS });
}

function fraction(option: string, value: unknown, { open }: { open: boolean }): number {
  const ok = typeof value === 'number' && Number.isFinite(value) && value < 1 && (open ? value > 0 : value >= 0);
  if (!ok)
    throw new CacheConfigError(
      option,
      `expected a number ${open ? 'between 0 and 1 (exclusive)' : 'from 0 up to (not including) 1'}, got ${JSON.stringify(value)}`,
    );
  return value;
}

/** A list of tags, checked. @internal */
export function tagList(option: string, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((t) => typeof t !== 'string' || t === '')) {
    throw new CacheConfigError(option, 'expected an array of non-empty strings');
  }
  return value as readonly string[];
}

const DURABLE_METHODS = ['getMany', 'set', 'delete', 'deleteByTag', 'deleteByPrefix', 'clear'] as const;

/** Whether `value` has the shape of a {@link DurableTier}. */
function isDurableTier(value: unknown): value is DurableTier {
  if (value === null || typeof value !== 'object') return false;
  const tier = value as Record<string, unknown>;
  const ms = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  return (
    typeof tier.name === 'string' &&
    ms(tier.ttl) &&
    ms(tier.grace) &&
    DURABLE_METHODS.every((method) => typeof tier[method] === 'function')
  );
}

/** Validates `createCache()` options once. Throws {@link CacheConfigError} naming the option. */
export function resolveCacheOptions(options: CacheOptions = {}): ResolvedCacheOptions {
  checkOptions(options, KNOWN, fail);
  const o = options;

  const l1 = o.l1 ?? {};
  checkOptions(l1, KNOWN_L1, fail, 'l1');
  const maxEntries = l1.maxEntries ?? defaults.l1.maxEntries;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new CacheConfigError('l1.maxEntries', `expected a positive integer, got ${JSON.stringify(maxEntries)}`);
  }
  const { maxBytes, sizeOf } = l1;
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) {
    throw new CacheConfigError('l1.maxBytes', `expected a positive integer of bytes, got ${JSON.stringify(maxBytes)}`);
  }
  if (sizeOf !== undefined && typeof sizeOf !== 'function') {
    throw new CacheConfigError('l1.sizeOf', 'expected a function (value, key) => bytes');
  }
  if (sizeOf !== undefined && maxBytes === undefined) {
    throw new CacheConfigError('l1.sizeOf', 'only sizes entries for l1.maxBytes: set that too');
  }

  const redis = o.redis;
  // An ioredis keyPrefix is supported: ioredis prefixes the scripts' keys, the shared SCAN honours
  // it, and channels are never prefixed on either end.
  if (redis !== undefined && !isRedisClient(redis))
    throw new CacheConfigError('redis', 'expected an ioredis client (new Redis(url))');

  const durable = o.durable;
  if (durable !== undefined && !isDurableTier(durable)) {
    throw new CacheConfigError(
      'durable',
      'expected a durable tier such as postgresTier({ pool }) of @idem/postgres (name, ttl, grace, getMany, set, delete, deleteByTag, deleteByPrefix, clear)',
    );
  }

  const namespace = o.namespace ?? defaults.namespace;
  if (typeof namespace !== 'string' || namespace === '' || /[{}]/.test(namespace)) {
    throw new CacheConfigError('namespace', 'expected a non-empty string without { or }');
  }
  const prefix = o.prefix ?? defaults.prefix;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix))
    throw new CacheConfigError('prefix', 'expected a string without { or }');

  let breaker: ResolvedCacheOptions['breaker'];
  if (o.breaker !== false) {
    const b = o.breaker ?? {};
    if (b === null || typeof b !== 'object')
      throw new CacheConfigError('breaker', 'expected { threshold, cooldown } or false');
    checkOptions(b, KNOWN_BREAKER, fail, 'breaker');
    const threshold = b.threshold ?? defaults.breaker.threshold;
    if (!Number.isSafeInteger(threshold) || threshold < 1)
      throw new CacheConfigError('breaker.threshold', 'expected a positive integer');
    breaker = { threshold, cooldown: duration('breaker.cooldown', b.cooldown ?? defaults.breaker.cooldown) };
  }

  const serializer = o.serializer ?? jsonSerializer;
  if (
    serializer === null ||
    typeof serializer !== 'object' ||
    typeof serializer.serialize !== 'function' ||
    typeof serializer.deserialize !== 'function'
  ) {
    throw new CacheConfigError('serializer', 'expected { serialize(value), deserialize(buffer) }');
  }
  const logger = checkLogger(o.logger, fail);
  if (o.clock !== undefined && typeof o.clock !== 'function')
    throw new CacheConfigError('clock', 'expected a function returning epoch milliseconds');

  return {
    maxEntries,
    maxBytes,
    sizeOf,
    redis,
    durable,
    ttl: duration('ttl', o.ttl ?? defaults.ttl),
    grace: duration('grace', o.grace ?? defaults.grace, true),
    graceBackoff: duration('graceBackoff', o.graceBackoff ?? defaults.graceBackoff, true),
    timeout: o.timeout === undefined ? undefined : timerDuration('timeout', o.timeout),
    hardTimeout: o.hardTimeout === undefined ? undefined : timerDuration('hardTimeout', o.hardTimeout),
    jitter: o.jitter === undefined ? defaults.jitter : fraction('jitter', o.jitter, { open: false }),
    eagerRefresh: o.eagerRefresh === undefined ? undefined : fraction('eagerRefresh', o.eagerRefresh, { open: true }),
    namespace,
    prefix,
    lockTtl: duration('lockTtl', o.lockTtl ?? defaults.lockTtl),
    pollInterval: timerDuration('pollInterval', o.pollInterval ?? defaults.pollInterval),
    redisTimeout: timerDuration('redisTimeout', o.redisTimeout ?? defaults.redisTimeout),
    breaker,
    serializer,
    logger,
    clock: o.clock ?? Date.now,
  };
}

/** Merges per-call options over the cache's. Unset call options cost nothing. @internal */
export function resolveCallOptions(
  base: ResolvedCacheOptions,
  options: GetOrSetOptions | SetOptions | undefined,
): ResolvedCallOptions {
  if (options === undefined) {
    return {
      ttl: base.ttl,
      grace: base.grace,
      tags: [],
      timeout: base.timeout,
      hardTimeout: base.hardTimeout,
      eagerRefresh: base.eagerRefresh,
    };
  }
  checkOptions(options, KNOWN_CALL, fail);
  const o = options as GetOrSetOptions;
  return {
    ttl: o.ttl === undefined ? base.ttl : duration('ttl', o.ttl),
    grace: o.grace === undefined ? base.grace : duration('grace', o.grace, true),
    tags: tagList('tags', o.tags),
    timeout: o.timeout === undefined ? base.timeout : timerDuration('timeout', o.timeout),
    hardTimeout: o.hardTimeout === undefined ? base.hardTimeout : timerDuration('hardTimeout', o.hardTimeout),
    eagerRefresh:
      o.eagerRefresh === undefined
        ? base.eagerRefresh
        : o.eagerRefresh === false
          ? undefined
          : fraction('eagerRefresh', o.eagerRefresh, { open: true }),
  };
}
