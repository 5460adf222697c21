import { describe, expect, it } from 'vitest';
import { ConfigError, MAX_TIMER_MS, checkOptions, parseDuration } from './config.js';

describe('parseDuration', () => {
  it('reads milliseconds and ms strings, rounded', () => {
    expect(parseDuration('x', 1500)).toBe(1500);
    expect(parseDuration('x', '1.5s')).toBe(1500);
    expect(parseDuration('x', '24h')).toBe(86_400_000);
  });

  it('takes zero in every spelling only where it means off', () => {
    for (const zero of [0, '0', '0s', '0ms']) {
      expect(parseDuration('grace', zero, { allowZero: true })).toBe(0);
      expect(() => parseDuration('ttl', zero)).toThrow(ConfigError);
    }
  });

  it.each([0.4, '0.4ms', '', ' ', 'soon', -1, Number.NaN, Number.POSITIVE_INFINITY, {}, null, 10n])(
    'refuses %s with a ConfigError naming the option',
    (value) => {
      let caught: unknown;
      try {
        parseDuration('lockTtl', value as never);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).option).toBe('lockTtl');
      expect((caught as ConfigError).message).toMatch(/`lockTtl`/);
    },
  );

  it('refuses what a timer cannot wait for', () => {
    expect(() => parseDuration('lockTtl', '30d', { max: MAX_TIMER_MS })).toThrow(/at most/);
    expect(parseDuration('lockTtl', '24d', { max: MAX_TIMER_MS })).toBe(24 * 86_400_000);
  });
});

describe('checkOptions', () => {
  it.each([[[]], [null], ['ttl'], [5]])('refuses %j as an options object', (value) => {
    expect(() => checkOptions(value, ['ttl'])).toThrow(ConfigError);
  });

  it('names the first unknown option, with its path', () => {
    expect(() => checkOptions({ ttl: 1, lockTTL: 2 }, ['ttl', 'lockTtl'])).toThrow(/`lockTTL`: unknown option/);
    expect(() => checkOptions({ treshold: 1 }, ['threshold'], undefined, 'breaker')).toThrow(/`breaker.treshold`/);
  });
});
