import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('defaults to port 3001, memory (no DATABASE_URL) and a 200 ms payment', () => {
    expect(loadConfig({})).toEqual({ port: 3001, databaseUrl: undefined, paymentLatencyMs: 200, logLevel: 'info' });
  });

  it('reads DATABASE_URL as postgres:// or postgresql://', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://app:pw@db:5432/payments' }).databaseUrl).toBe(
      'postgres://app:pw@db:5432/payments',
    );
    expect(loadConfig({ DATABASE_URL: ' postgresql://localhost/payments ' }).databaseUrl).toBe(
      'postgresql://localhost/payments',
    );
  });

  it('reports every invalid variable at once, naming it and what it got', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: '70000', DATABASE_URL: 'localhost:5432/payments', PAYMENT_LATENCY_MS: 'slow' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'PORT must be an integer from 0 to 65535, got "70000"',
      'PAYMENT_LATENCY_MS must be an integer from 0 to 60000, got "slow"',
      'DATABASE_URL must be a URL such as postgres://user:password@localhost:5432/payments, got "localhost:5432/payments"',
    ]);
  });
});
