/**
 * Configuration from environment variables, parsed once at start. Every problem is collected and
 * reported together, naming the variable, what it expects and what it got.
 */

/** Which model answers: the offline built-in extractor, or an OpenAI-compatible API. */
export type LlmConfig =
  | { provider: 'builtin'; latencyMs: number }
  | { provider: 'openai'; apiKey: string; baseUrl: string; model: string; timeoutMs: number };

/** The service's settings. Durations are milliseconds. */
export interface Config {
  /** `PORT`. @default 3000 */
  port: number;
  /**
   * `REDIS_URL`: records on Redis (locks via Redlock) when set and `DATABASE_URL` is not, else the
   * in-process memory store; with `DATABASE_URL` too, Redis holds only the customer cache's shared tier.
   */
  redisUrl: string | undefined;
  /** `DATABASE_URL`: durable records on PostgreSQL (lease mode) when set; it wins over `REDIS_URL` for records. */
  databaseUrl: string | undefined;
  /** `CACHE_TTL_HOURS`: how long a result is replayed instead of paying for the model again. @default 24 h */
  resultTtlMs: number;
  llm: LlmConfig;
  /** `LLM_PRICE_INPUT_PER_MTOK` / `LLM_PRICE_OUTPUT_PER_MTOK`: USD per million tokens, for the cost estimate. @default 0.15 / 0.60 */
  pricing: { inputPerMTok: number; outputPerMTok: number };
  /** The simulated customer directory (CRM) behind the read-through cache. */
  customers: {
    /** `CRM_LATENCY_MS`. @default 300 */
    latencyMs: number;
    /** `CRM_FAILURE_RATE`: share of directory calls that fail, 0–1. @default 0 */
    failureRate: number;
    /** `CUSTOMER_CACHE_TTL_SECONDS`: how long a customer record is fresh. @default 300 s */
    ttlMs: number;
    /** How long past its TTL a record is still served when the directory fails. */
    graceMs: number;
  };
  /**
   * `ADMIN_TOKEN`: when set (32 characters or more), the admin API of `@idem/admin` is mounted at
   * `/admin/idem` for requests with `Authorization: Bearer <token>`; without it there is none.
   */
  adminToken: string | undefined;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: string;
  /** `LOG_FORMAT`: `pretty` (default on a terminal) or `json` (default otherwise). */
  logFormat: 'pretty' | 'json';
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

/** Reads the settings from `env`. Throws {@link ConfigError} listing every invalid variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: { isTTY?: boolean } = {}): Config {
  const problems: string[] = [];

  function read(name: string): string | undefined {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }

  function number(
    name: string,
    fallback: number,
    { min, max = Infinity, integer = false }: { min: number | 'positive'; max?: number; integer?: boolean },
  ): number {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    const low = min === 'positive' ? value > 0 : value >= min;
    if (!Number.isFinite(value) || !low || value > max || (integer && !Number.isInteger(value))) {
      const kind = integer ? 'an integer' : 'a number';
      const range =
        min === 'positive'
          ? `a positive number`
          : max === Infinity
            ? `${kind} of at least ${min}`
            : `${kind} from ${min} to ${max}`;
      problems.push(`${name} must be ${range}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  }

  function url(name: string, protocols: readonly string[], example: string): string | undefined {
    const raw = read(name);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) throw new Error('protocol');
      return raw;
    } catch {
      problems.push(`${name} must be a URL such as ${example}, got ${JSON.stringify(raw)}`);
      return undefined;
    }
  }

  const port = number('PORT', 3000, { min: 0, max: 65_535, integer: true });
  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:'], 'redis://localhost:6379');
  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:'], 'postgres://user:password@localhost:5432/idem');
  const ttlHours = number('CACHE_TTL_HOURS', 24, { min: 'positive' });

  let llm: LlmConfig;
  const apiKey = read('OPENAI_API_KEY');
  if (apiKey === undefined) {
    llm = { provider: 'builtin', latencyMs: number('LLM_LATENCY_MS', 1500, { min: 0, max: 600_000, integer: true }) };
  } else {
    const baseUrl =
      url('OPENAI_BASE_URL', ['http:', 'https:'], 'https://api.openai.com/v1') ?? 'https://api.openai.com/v1';
    llm = {
      provider: 'openai',
      apiKey,
      baseUrl: baseUrl.replace(/\/+$/, ''),
      model: read('OPENAI_MODEL') ?? 'gpt-4o-mini',
      timeoutMs: number('LLM_TIMEOUT_MS', 60_000, { min: 1, max: 600_000, integer: true }),
    };
  }

  const pricing = {
    inputPerMTok: number('LLM_PRICE_INPUT_PER_MTOK', 0.15, { min: 0 }),
    outputPerMTok: number('LLM_PRICE_OUTPUT_PER_MTOK', 0.6, { min: 0 }),
  };

  const customers = {
    latencyMs: number('CRM_LATENCY_MS', 300, { min: 0, max: 600_000, integer: true }),
    failureRate: number('CRM_FAILURE_RATE', 0, { min: 0, max: 1 }),
    ttlMs: number('CUSTOMER_CACHE_TTL_SECONDS', 300, { min: 'positive' }) * 1000,
    graceMs: 24 * 3_600_000,
  };

  const adminToken = read('ADMIN_TOKEN');
  // Never echo the token itself, not even a bad one.
  if (adminToken !== undefined && adminToken.length < 32)
    problems.push(`ADMIN_TOKEN must be at least 32 characters (got ${adminToken.length}); e.g. openssl rand -hex 32`);

  const logLevel = read('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  const format = read('LOG_FORMAT');
  if (format !== undefined && format !== 'pretty' && format !== 'json')
    problems.push(`LOG_FORMAT must be pretty or json, got ${JSON.stringify(format)}`);
  const logFormat =
    format === 'pretty' || format === 'json' ? format : (options.isTTY ?? process.stdout.isTTY) ? 'pretty' : 'json';

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    redisUrl,
    databaseUrl,
    resultTtlMs: Math.round(ttlHours * 3_600_000),
    llm,
    pricing,
    customers,
    adminToken,
    logLevel,
    logFormat,
  };
}

/**
 * Settings for tests and embedding: the defaults with a fast model, overridable field by field.
 *
 * @example
 * const { app } = createApp(testConfig({ llm: { provider: 'builtin', latencyMs: 5 } }));
 */
export function testConfig(overrides: Partial<Config> = {}): Config {
  const base = loadConfig({ LLM_LATENCY_MS: '10', CRM_LATENCY_MS: '0', LOG_LEVEL: 'silent', LOG_FORMAT: 'json' });
  return { ...base, ...overrides };
}
