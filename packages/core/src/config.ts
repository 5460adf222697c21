/**
 * Configuration pieces every idem package shares: the `Duration` and `Logger` types, the silent
 * logger, the config-error base class, the unknown-option check and the duration parser. Each
 * package validates its options once, at creation, with these, so the same mistake gets the same
 * answer everywhere (docs/design.md, "Options").
 */
import ms from 'ms';
import { brand } from './brand.js';

/** A duration: milliseconds, or a string such as `'500ms'`, `'30s'`, `'24h'`, `'7d'`. */
export type Duration = number | string;

/** The subset of a pino logger idem uses. Any pino logger fits. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** pino's: when present, debug lines nobody would see are not even built. */
  isLevelEnabled?(level: string): boolean;
}

/** The default logger of every package: says nothing. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
  isLevelEnabled: () => false,
});

/**
 * Thrown at creation (or by a call given bad per-call options) for an invalid option. A
 * `TypeError` whose message names the option; `option` is its dotted path (`'l1.maxEntries'`) and
 * `code` is stable per package (`'config_invalid'`, `'cache_config'`).
 *
 * @example
 * try { idempotent({ ttl: 'soon' }) } catch (error) { if (error instanceof ConfigError) console.log(error.option) } // 'ttl'
 */
export class ConfigError extends TypeError {
  /** The option at fault, as a dotted path. */
  readonly option: string;
  /** Stable code of the package that raised it. */
  readonly code: string;

  constructor(option: string, message: string, context: { code?: string; scope?: string } = {}) {
    super(`${context.scope ?? 'idem'}: invalid option \`${option}\`: ${message}`);
    this.name = 'ConfigError';
    this.option = option;
    this.code = context.code ?? 'config_invalid';
  }
}
brand(ConfigError, 'ConfigError');

/** How a package raises its config errors: its own subclass of {@link ConfigError}. */
export type ConfigErrorFactory = (option: string, message: string) => ConfigError;

const plainConfigError: ConfigErrorFactory = (option, message) => new ConfigError(option, message);

/**
 * Checks that `options` is an object whose every own key is in `known`; throws naming the first
 * unknown one (a typo such as `lockTTL` must not be silently ignored).
 */
export function checkOptions(
  options: unknown,
  known: readonly string[],
  fail: ConfigErrorFactory = plainConfigError,
  path = 'options',
): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw fail(path, 'expected an object');
  const prefix = path === 'options' ? '' : `${path}.`;
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw fail(`${prefix}${name}`, `unknown option (known: ${known.join(', ')})`);
  }
}

/** The longest delay a Node timer takes (2^31 − 1 ms, about 24.8 days); longer fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;

// Milliseconds of a number or an `ms` string ('0', '0s' and '0ms' are 0); NaN for anything else.
function parse(value: Duration): number {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string' || value.trim() === '') return Number.NaN;
  const parsed = ms(value as ms.StringValue) as number | undefined;
  return typeof parsed === 'number' ? parsed : Number.NaN;
}

/** A value as an error message shows it, whatever it is (a BigInt or a circular object too). */
function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Parses a duration option into whole milliseconds; throws naming the option. Zero is refused
 * unless `allowZero` (for the options where 0 means "off"), in every spelling (`0`, `'0s'`,
 * `'0ms'`); a value that rounds to 0 counts as 0. `max` bounds it (e.g. {@link MAX_TIMER_MS} for
 * what becomes a timer).
 *
 * @example
 * parseDuration('ttl', '24h'); // 86400000
 * parseDuration('grace', '0s', { allowZero: true }); // 0
 */
export function parseDuration(
  option: string,
  value: Duration,
  context: { allowZero?: boolean; max?: number; fail?: ConfigErrorFactory } = {},
): number {
  const { allowZero = false, max = Number.MAX_SAFE_INTEGER, fail = plainConfigError } = context;
  const parsed = Math.round(parse(value));
  if (Number.isFinite(parsed) && parsed <= max && (parsed > 0 || (allowZero && parsed === 0))) return parsed;
  if (Number.isFinite(parsed) && parsed > max) throw fail(option, `must be at most ${max} ms, got ${shown(value)}`);
  const what = allowZero ? 'a non-negative' : 'a positive';
  throw fail(
    option,
    `expected ${what} number of milliseconds or a duration such as '30s' or '24h', got ${shown(value)}`,
  );
}

/** Checks a logger option: anything with pino's four methods. Returns the silent logger for none. */
export function checkLogger(value: unknown, fail: ConfigErrorFactory = plainConfigError, option = 'logger'): Logger {
  if (value === undefined) return silentLogger;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (value as Record<string, unknown> | null)?.[level] !== 'function') {
      throw fail(option, `expected a pino-like logger (missing ${level}())`);
    }
  }
  return value as Logger;
}

/**
 * Whether debug lines would be seen: pino's `isLevelEnabled` where the logger has it. Checked
 * per line, so that a level changed at run time takes effect.
 */
export function debugEnabled(logger: Logger): () => boolean {
  const check = logger.isLevelEnabled;
  return typeof check === 'function' ? () => check.call(logger, 'debug') : () => true;
}
