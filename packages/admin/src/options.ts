import { checkLogger, checkOptions, MAX_TIMER_MS, parseDuration } from '@idem/core/adapter';
import type { Logger } from '@idem/core';
import { AdminConfigError } from './errors.js';
import type { AdminCache, AdminOptions, Authorize } from './types.js';

/** The defaults of the admin API, declared once; the README's option table is checked against them. */
export const defaults = Object.freeze({
  maxBodyBytes: 1_048_576,
  healthTimeout: '2s',
});

/** Options after validation. @internal */
export interface ResolvedAdminOptions<Native> {
  store: AdminOptions['store'];
  authorize: Authorize<Native>;
  cache: AdminCache | undefined;
  maxBodyBytes: number;
  healthTimeout: number;
  logger: Logger;
}

const KNOWN = ['store', 'authorize', 'cache', 'maxBodyBytes', 'healthTimeout', 'logger'];
const fail = (option: string, message: string): AdminConfigError => new AdminConfigError(option, message);

function hasMethods(value: unknown, methods: readonly string[]): string | undefined {
  if (value === null || typeof value !== 'object') return 'not an object';
  return methods.find((m) => typeof (value as Record<string, unknown>)[m] !== 'function');
}

/** Validates the options once, at creation; throws {@link AdminConfigError} naming the option. */
export function resolveAdminOptions<Native>(
  options: AdminOptions<Native>,
  adapterOptions: readonly string[] = [],
): ResolvedAdminOptions<Native> {
  checkOptions(options, [...KNOWN, ...adapterOptions], fail);
  if (typeof options.authorize !== 'function') {
    throw fail(
      'authorize',
      'is required: a function (req, target) => boolean | Promise<boolean> that says who may use the admin API (it has no open mode)',
    );
  }
  const missing = hasMethods(options.store, ['get', 'delete']);
  if (missing !== undefined)
    throw fail(
      'store',
      `expected an IdempotencyStore (${missing === 'not an object' ? missing : `missing ${missing}()`})`,
    );
  if (options.cache !== undefined) {
    const lacks = hasMethods(options.cache, ['stats', 'clear', 'deleteByTag', 'warm']);
    if (lacks !== undefined)
      throw fail('cache', `expected an @idem/cache (${lacks === 'not an object' ? lacks : `missing ${lacks}()`})`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? defaults.maxBodyBytes;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)
    throw fail('maxBodyBytes', `expected a positive integer, got ${String(options.maxBodyBytes)}`);
  return {
    store: options.store,
    authorize: options.authorize,
    cache: options.cache,
    maxBodyBytes,
    healthTimeout: parseDuration('healthTimeout', options.healthTimeout ?? defaults.healthTimeout, {
      fail,
      max: MAX_TIMER_MS,
    }),
    logger: checkLogger(options.logger, fail),
  };
}
