/**
 * Configuration from environment variables, parsed once at start; every problem is reported
 * together, naming the variable, what it expects and what it got.
 */

/** The service's settings. */
export interface Config {
  /** `PORT`. @default 3001 */
  port: number;
  /**
   * `DATABASE_URL`: payments and idempotency records in PostgreSQL, written in one transaction per
   * request (transactional mode); unset, both stay in this process's memory.
   */
  databaseUrl: string | undefined;
  /** `PAYMENT_LATENCY_MS`: how long the simulated payment takes (inside the transaction with PostgreSQL). @default 200 */
  paymentLatencyMs: number;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: string;
}

/** Thrown for invalid environment variables; `problems` lists one line per variable. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads the settings from `env`. Throws {@link ConfigError} listing every invalid variable.
 *
 * @example
 * const { port, databaseUrl } = loadConfig();
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (Number.isInteger(value) && value >= 0 && value <= max) return value;
    problems.push(`${name} must be an integer from 0 to ${max}, got ${JSON.stringify(raw)}`);
    return fallback;
  };

  const port = integer('PORT', 3001, 65_535);
  const paymentLatencyMs = integer('PAYMENT_LATENCY_MS', 200, 60_000);

  const databaseUrl = read('DATABASE_URL');
  if (databaseUrl !== undefined) {
    let protocol: string | undefined;
    try {
      protocol = new URL(databaseUrl).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'postgres:' && protocol !== 'postgresql:')
      problems.push(
        `DATABASE_URL must be a URL such as postgres://user:password@localhost:5432/payments, got ${JSON.stringify(databaseUrl)}`,
      );
  }

  const logLevel = read('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);

  if (problems.length > 0) throw new ConfigError(problems);
  return { port, databaseUrl, paymentLatencyMs, logLevel };
}
