import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('defaults to port 3000, the memory store, 24 h results and the built-in model at 1500 ms', () => {
    const config = loadConfig({}, { isTTY: false });
    expect(config).toMatchObject({
      port: 3000,
      redisUrl: undefined,
      databaseUrl: undefined,
      resultTtlMs: 24 * 3_600_000,
      llm: { provider: 'builtin', latencyMs: 1500 },
      logFormat: 'json',
    });
  });

  it('switches to the OpenAI-compatible provider when OPENAI_API_KEY is set', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: 'http://localhost:11434/v1/',
      OPENAI_MODEL: 'llama3',
    });
    expect(config.llm).toEqual({
      provider: 'openai',
      apiKey: 'sk-test',
      baseUrl: 'http://localhost:11434/v1',
      model: 'llama3',
      timeoutMs: 60_000,
    });
  });

  it('reads REDIS_URL, CACHE_TTL_HOURS and LLM_LATENCY_MS', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://localhost:6379',
      CACHE_TTL_HOURS: '0.5',
      LLM_LATENCY_MS: '0',
      PORT: '8080',
    });
    expect(config).toMatchObject({
      port: 8080,
      redisUrl: 'redis://localhost:6379',
      resultTtlMs: 1_800_000,
      llm: { provider: 'builtin', latencyMs: 0 },
    });
  });

  it('reads DATABASE_URL as postgres:// or postgresql://, beside REDIS_URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://app:pw@db.internal:5432/idem' }).databaseUrl).toBe(
      'postgres://app:pw@db.internal:5432/idem',
    );
    const both = loadConfig({ DATABASE_URL: ' postgresql://localhost/idem ', REDIS_URL: 'redis://localhost:6379' });
    expect(both).toMatchObject({ databaseUrl: 'postgresql://localhost/idem', redisUrl: 'redis://localhost:6379' });
  });

  it('refuses a DATABASE_URL that is not a PostgreSQL URL, saying what one looks like', () => {
    for (const raw of ['localhost:5432/idem', 'mysql://localhost/idem', 'host=localhost dbname=idem']) {
      expect(() => loadConfig({ DATABASE_URL: raw })).toThrow(
        `DATABASE_URL must be a URL such as postgres://user:password@localhost:5432/idem, got ${JSON.stringify(raw)}`,
      );
    }
  });

  it('reports every invalid variable at once, naming it and what it got', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'abc',
        REDIS_URL: 'localhost:6379',
        DATABASE_URL: 'redis://localhost:6379',
        CACHE_TTL_HOURS: '0',
        LLM_LATENCY_MS: '-1',
        LOG_FORMAT: 'xml',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'PORT must be an integer from 0 to 65535, got "abc"',
      'REDIS_URL must be a URL such as redis://localhost:6379, got "localhost:6379"',
      'DATABASE_URL must be a URL such as postgres://user:password@localhost:5432/idem, got "redis://localhost:6379"',
      'CACHE_TTL_HOURS must be a positive number, got "0"',
      'LLM_LATENCY_MS must be an integer from 0 to 600000, got "-1"',
      'LOG_FORMAT must be pretty or json, got "xml"',
    ]);
  });
});
