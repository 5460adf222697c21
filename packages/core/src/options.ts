import ms from 'ms';
import { IdempotencyConfigError } from './errors.js';
import { compileSelector, splitPath, type CompiledSelector } from './fingerprint.js';
import { memoryStore } from './memory-store.js';
import type { Duration, IdempotencyOptions, IdempotencyStore, Logger } from './types.js';

/** The default `cacheable`: results worth replaying, not transient failures. */
export function defaultCacheable(status: number): boolean {
  return status < 500 && status !== 408 && status !== 409 && status !== 425 && status !== 429;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, isLevelEnabled: () => false };

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
  concurrent: 'reject' | 'wait';
  waitTimeout: number;
  cacheable: (status: number) => boolean;
  maxBodyBytes: number;
  onStoreError: 'fail-closed' | 'fail-open';
  logger: Logger;
}

/** Parses a duration option; throws naming the option. */
export function toMs(option: string, value: Duration): number {
  const parsed = typeof value === 'number' ? value : typeof value === 'string' ? ms(value as ms.StringValue) : NaN;
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed <= 0) {
    throw new IdempotencyConfigError(option, `expected a positive number of milliseconds or a duration such as '30s' or '24h', got ${JSON.stringify(value)}`);
  }
  return Math.round(parsed);
}

const KNOWN = new Set([
  'store', 'header', 'required', 'key', 'scope', 'fingerprint', 'methods', 'ttl', 'lockTtl',
  'concurrent', 'waitTimeout', 'cacheable', 'maxBodyBytes', 'onStoreError', 'logger',
]);

/** Validates options once, at middleware creation. Throws {@link IdempotencyConfigError}. */
export function resolveOptions<Native>(options: IdempotencyOptions<Native> = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new IdempotencyConfigError('options', 'expected an object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw new IdempotencyConfigError(name, `unknown option (known: ${[...KNOWN].join(', ')})`);
  }
  const o = options;

  const header = o.header === undefined ? 'Idempotency-Key' : o.header;
  if (header !== false && (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))) {
    throw new IdempotencyConfigError('header', 'expected a header name or false');
  }
  const key = o.key === undefined ? undefined : selector('key', o.key);
  if (header === false && key === undefined) {
    throw new IdempotencyConfigError('header', 'with `header: false` a `key` selector is required, or no request would have a key');
  }
  if (o.scope !== undefined && typeof o.scope !== 'function') throw new IdempotencyConfigError('scope', 'expected a function (req) => unknown');
  const fingerprint = o.fingerprint === false ? null : o.fingerprint === undefined ? undefined : selector('fingerprint', o.fingerprint);

  const methods = o.methods ?? ['POST', 'PATCH'];
  if (!Array.isArray(methods) || methods.length === 0 || methods.some((m) => typeof m !== 'string' || m === '')) {
    throw new IdempotencyConfigError('methods', 'expected a non-empty array of HTTP method names');
  }
  const concurrent = o.concurrent ?? 'reject';
  if (concurrent !== 'reject' && concurrent !== 'wait') throw new IdempotencyConfigError('concurrent', "expected 'reject' or 'wait'");
  const onStoreError = o.onStoreError ?? 'fail-closed';
  if (onStoreError !== 'fail-closed' && onStoreError !== 'fail-open') {
    throw new IdempotencyConfigError('onStoreError', "expected 'fail-closed' or 'fail-open'");
  }
  const maxBodyBytes = o.maxBodyBytes ?? 1 << 20;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) throw new IdempotencyConfigError('maxBodyBytes', 'expected a non-negative integer');
  if (o.cacheable !== undefined && typeof o.cacheable !== 'function') throw new IdempotencyConfigError('cacheable', 'expected a function (status) => boolean');
  if (typeof o.required !== 'undefined' && typeof o.required !== 'boolean') throw new IdempotencyConfigError('required', 'expected a boolean');
  const store = o.store ?? memoryStore();
  for (const method of ['get', 'claim', 'extend', 'complete', 'release', 'waitFor', 'delete'] as const) {
    if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function') {
      throw new IdempotencyConfigError('store', `expected an IdempotencyStore (missing ${method}())`);
    }
  }
  const logger = o.logger ?? silent;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') throw new IdempotencyConfigError('logger', `expected a pino-like logger (missing ${level}())`);
  }

  const ttl = toMs('ttl', o.ttl ?? '24h');
  const lockTtl = toMs('lockTtl', o.lockTtl ?? '30s');
  const waitTimeout = toMs('waitTimeout', o.waitTimeout ?? '60s');

  return {
    store,
    header: header === false ? undefined : { name: header, lower: header.toLowerCase() },
    required: o.required ?? false,
    key: key?.compiled,
    scope: o.scope === undefined ? undefined : compileSelector(o.scope as (req: never) => unknown),
    fingerprint: fingerprint === null ? null : fingerprint?.compiled,
    keyReadsBody: Boolean(key?.readsBody),
    fingerprintReadsBody: fingerprint === undefined || Boolean(fingerprint?.readsBody),
    methods: new Set(methods.map((m) => m.toUpperCase())),
    ttl,
    lockTtl,
    concurrent,
    waitTimeout,
    cacheable: o.cacheable ?? defaultCacheable,
    maxBodyBytes,
    onStoreError,
    logger,
  };
}

const ROOTS = new Set(['body', 'query', 'params', 'headers']);

function selector(option: string, value: unknown): { compiled: CompiledSelector; readsBody: boolean } {
  if (typeof value === 'function') return { compiled: compileSelector(value as (req: never) => unknown), readsBody: false };
  if (!Array.isArray(value) || value.length === 0) {
    throw new IdempotencyConfigError(option, 'expected a non-empty array of dot paths (e.g. "body.order_id") or a function (req) => unknown');
  }
  for (const path of value) {
    if (typeof path !== 'string' || !ROOTS.has(splitPath(path)[0] as string)) {
      throw new IdempotencyConfigError(option, `path ${JSON.stringify(path)} must start with body., query., params. or headers.`);
    }
  }
  return { compiled: compileSelector(value as string[]), readsBody: value.some((p: string) => p === 'body' || p.startsWith('body.')) };
}
