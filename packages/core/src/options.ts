import { MAX_TIMER_MS, checkLogger, checkOptions, parseDuration, type Duration, type Logger } from './config.js';
import { IdempotencyConfigError } from './errors.js';
import { HEADER_NAME } from './headers.js';
import { compileSelector, selector, type CompiledSelector } from './selectors.js';
import { memoryStore } from './memory-store.js';
import { problemResponder, type ProblemResponder } from './problem.js';
import type { IdempotencyOptions, IdempotencyStore } from './types.js';

/** The default `cacheable`: results worth replaying, not transient failures. */
export function defaultCacheable(status: number): boolean {
  return status < 500 && status !== 408 && status !== 409 && status !== 425 && status !== 429;
}

/** Options after validation, with every derived value computed once. */
export interface ResolvedOptions {
  store: IdempotencyStore;
  /** Header name as given (for messages) and lower-cased (for lookups); undefined when off. */
  header: { name: string; lower: string } | undefined;
  required: boolean;
  key: CompiledSelector | undefined;
  scope: CompiledSelector | undefined;
  /** undefined = default fingerprint; null = off. */
  fingerprint: CompiledSelector | null | undefined;
  /** True when the derived key reads the body, so an unparsed body is an error. */
  keyReadsBody: boolean;
  /** True when the fingerprint reads the body, so an unparsed body is an error. */
  fingerprintReadsBody: boolean;
  methods: ReadonlySet<string>;
  ttl: number;
  lockTtl: number;
  /** Longest an execution keeps its lease; past it the key is released and a late result not stored. */
  maxHold: number;
  concurrent: 'reject' | 'wait';
  waitTimeout: number;
  cacheable: (status: number) => boolean;
  maxBodyBytes: number;
  onStoreError: 'fail-closed' | 'fail-open';
  logger: Logger;
  /** idem's own answers (400, 409, 422, 503, …) as responses: problem+json, or `formatProblem`'s. */
  problem: ProblemResponder;
}

/**
 * The defaults of `idempotent()`, declared once; the README's option table is checked against
 * this object (test/docs/readme.test.ts).
 */
export const defaults = Object.freeze({
  header: 'Idempotency-Key',
  required: false,
  methods: Object.freeze(['POST', 'PATCH']),
  ttl: '24h',
  lockTtl: '30s',
  maxHold: '1h',
  concurrent: 'reject',
  waitTimeout: '60s',
  maxBodyBytes: 1 << 20,
  onStoreError: 'fail-closed',
} as const);

const KNOWN = [
  'store',
  'header',
  'required',
  'key',
  'scope',
  'fingerprint',
  'methods',
  'ttl',
  'lockTtl',
  'maxHold',
  'concurrent',
  'waitTimeout',
  'cacheable',
  'maxBodyBytes',
  'onStoreError',
  'logger',
  'formatProblem',
] as const;

const fail = (option: string, message: string): IdempotencyConfigError => new IdempotencyConfigError(option, message);
const duration = (option: string, value: Duration): number => parseDuration(option, value, { fail });
// These become timers, which Node fires at once past MAX_TIMER_MS.
const timerDuration = (option: string, value: Duration): number =>
  parseDuration(option, value, { fail, max: MAX_TIMER_MS });

/** Validates options once, at middleware creation. Throws {@link IdempotencyConfigError}. */
export function resolveOptions<Native>(options: IdempotencyOptions<Native> = {}): ResolvedOptions {
  checkOptions(options, KNOWN, fail);
  const o = options;

  const header = o.header === undefined ? defaults.header : o.header;
  if (header !== false && (typeof header !== 'string' || !HEADER_NAME.test(header))) {
    throw new IdempotencyConfigError('header', 'expected a header name or false');
  }
  const key = o.key === undefined ? undefined : selector('key', o.key);
  if (header === false && key === undefined) {
    throw new IdempotencyConfigError(
      'header',
      'with `header: false` a `key` selector is required, or no request would have a key',
    );
  }
  if (o.scope !== undefined && typeof o.scope !== 'function')
    throw new IdempotencyConfigError('scope', 'expected a function (req) => unknown');
  const fingerprint =
    o.fingerprint === false ? null : o.fingerprint === undefined ? undefined : selector('fingerprint', o.fingerprint);

  const methods = o.methods ?? defaults.methods;
  if (!Array.isArray(methods) || methods.length === 0 || methods.some((m) => typeof m !== 'string' || m === '')) {
    throw new IdempotencyConfigError('methods', 'expected a non-empty array of HTTP method names');
  }
  const concurrent = o.concurrent ?? defaults.concurrent;
  if (concurrent !== 'reject' && concurrent !== 'wait')
    throw new IdempotencyConfigError('concurrent', "expected 'reject' or 'wait'");
  const onStoreError = o.onStoreError ?? defaults.onStoreError;
  if (onStoreError !== 'fail-closed' && onStoreError !== 'fail-open') {
    throw new IdempotencyConfigError('onStoreError', "expected 'fail-closed' or 'fail-open'");
  }
  const maxBodyBytes = o.maxBodyBytes ?? defaults.maxBodyBytes;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0)
    throw new IdempotencyConfigError('maxBodyBytes', 'expected a non-negative integer');
  if (o.cacheable !== undefined && typeof o.cacheable !== 'function')
    throw new IdempotencyConfigError('cacheable', 'expected a function (status) => boolean');
  if (typeof o.required !== 'undefined' && typeof o.required !== 'boolean')
    throw new IdempotencyConfigError('required', 'expected a boolean');
  const store = o.store ?? memoryStore();
  for (const method of ['get', 'claim', 'extend', 'complete', 'release', 'waitFor', 'delete'] as const) {
    if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function') {
      throw new IdempotencyConfigError('store', `expected an IdempotencyStore (missing ${method}())`);
    }
  }
  const logger = checkLogger(o.logger, fail);
  if (o.formatProblem !== undefined && typeof o.formatProblem !== 'function')
    throw new IdempotencyConfigError('formatProblem', 'expected a function (problem) => { status?, headers?, body }');

  const ttl = duration('ttl', o.ttl ?? defaults.ttl);
  const lockTtl = timerDuration('lockTtl', o.lockTtl ?? defaults.lockTtl);
  const maxHold = timerDuration('maxHold', o.maxHold ?? defaults.maxHold);
  const waitTimeout = timerDuration('waitTimeout', o.waitTimeout ?? defaults.waitTimeout);

  return {
    store,
    header: header === false ? undefined : { name: header, lower: header.toLowerCase() },
    required: o.required ?? defaults.required,
    key: key?.compiled,
    scope: o.scope === undefined ? undefined : compileSelector(o.scope as (req: never) => unknown),
    fingerprint: fingerprint === null ? null : fingerprint?.compiled,
    keyReadsBody: Boolean(key?.readsBody),
    fingerprintReadsBody: fingerprint === undefined || Boolean(fingerprint?.readsBody),
    methods: new Set(methods.map((m) => m.toUpperCase())),
    ttl,
    lockTtl,
    maxHold,
    concurrent,
    waitTimeout,
    cacheable: o.cacheable ?? defaultCacheable,
    maxBodyBytes,
    onStoreError,
    logger,
    problem: problemResponder(o.formatProblem, logger),
  };
}
