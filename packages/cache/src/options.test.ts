import { silentLogger } from '@idem/core';
import { describe, expect, it } from 'vitest';
import { CacheConfigError } from './errors.js';
import { defaults, duration, resolveCacheOptions, resolveCallOptions } from './options.js';

/** Expects `attempt` to throw the cache's config error for `option`. */
function expectConfigError(attempt: () => unknown, option: string): void {
  expect(attempt).toThrow(TypeError);
  expect(attempt).toThrow(CacheConfigError);
  expect(attempt).toThrow(`\`${option}\``);
  try {
    attempt();
  } catch (error) {
    expect((error as CacheConfigError).option).toBe(option);
    expect((error as CacheConfigError).code).toBe('cache_config');
  }
}

describe('resolveCacheOptions', () => {
  it('applies the documented defaults', () => {
    const o = resolveCacheOptions();
    expect(o).toMatchObject({
      maxEntries: defaults.l1.maxEntries,
      redis: undefined,
      ttl: 60_000,
      grace: 0,
      graceBackoff: 0,
      timeout: undefined,
      hardTimeout: undefined,
      jitter: 0,
      eagerRefresh: undefined,
      namespace: 'default',
      prefix: 'idem:cache:',
      lockTtl: 10_000,
      pollInterval: 50,
      redisTimeout: 200,
      breaker: { threshold: 5, cooldown: 2_000 },
    });
    expect(o.logger).toBe(silentLogger);
  });

  it('takes durations as milliseconds or strings, and 0 where 0 means off', () => {
    const o = resolveCacheOptions({ ttl: '5m', grace: '0s', timeout: 250, hardTimeout: '2s', breaker: false });
    expect(o).toMatchObject({ ttl: 300_000, grace: 0, timeout: 250, hardTimeout: 2_000, breaker: undefined });
    expect(duration('grace', 0, true)).toBe(0);
  });

  // regression: `grace: '0s'` must stay "off", in every spelling of zero.
  it.each([0, '0', '0s', '0ms'])('accepts grace and graceBackoff of %j as off', (zero) => {
    expect(resolveCacheOptions({ grace: zero, graceBackoff: zero })).toMatchObject({ grace: 0, graceBackoff: 0 });
    expect(resolveCallOptions(resolveCacheOptions(), { grace: zero }).grace).toBe(0);
  });

  it('takes a pino-like logger as given', () => {
    const logger = { debug() {}, info() {}, warn() {}, error() {} };
    expect(resolveCacheOptions({ logger }).logger).toBe(logger);
  });

  it.each([
    [{ ttl: 'soon' }, 'ttl'],
    [{ ttl: 0 }, 'ttl'],
    [{ ttl: '0s' }, 'ttl'],
    [{ grace: -1 }, 'grace'],
    [{ timeout: 0 }, 'timeout'],
    [{ l1: { maxEntries: 0 } }, 'l1.maxEntries'],
    [{ l1: { max: 5 } }, 'l1.max'],
    [{ l1: { maxBytes: 0 } }, 'l1.maxBytes'],
    [{ l1: { maxBytes: '1mb' } }, 'l1.maxBytes'],
    [{ l1: { maxBytes: 1e6, sizeOf: 4 } }, 'l1.sizeOf'],
    [{ l1: { sizeOf: () => 1 } }, 'l1.sizeOf'],
    [{ l1: 5 }, 'l1'],
    [{ redis: {} }, 'redis'],
    [{ redis: { defineCommand() {}, duplicate() {} } }, 'redis'],
    [{ namespace: '' }, 'namespace'],
    [{ namespace: 'a{b}' }, 'namespace'],
    [{ jitter: 1 }, 'jitter'],
    [{ jitter: null }, 'jitter'],
    [{ eagerRefresh: 0 }, 'eagerRefresh'],
    [{ breaker: 'on' }, 'breaker'],
    [{ breaker: { threshold: 0 } }, 'breaker.threshold'],
    [{ breaker: { cooldown: 'never' } }, 'breaker.cooldown'],
    [{ breaker: { treshold: 3 } }, 'breaker.treshold'],
    [{ serializer: { serialize() {} } }, 'serializer'],
    [{ logger: { info() {} } }, 'logger'],
    [{ logger: null }, 'logger'],
    [{ clock: 5 }, 'clock'],
    [{ tll: '1m' }, 'tll'],
  ])('rejects %j with a TypeError naming `%s`', (options, option) => {
    expectConfigError(() => resolveCacheOptions(options as never), option);
  });

  it.each([null, 5, 'ttl', []])('rejects options that are not an object (%j)', (options) => {
    expectConfigError(() => resolveCacheOptions(options as never), 'options');
  });

  it('lists the known options when one is unknown', () => {
    expect(() => resolveCacheOptions({ lockTTL: '5s' } as never)).toThrow(/known: .*lockTtl/);
  });
});

describe('resolveCallOptions', () => {
  const base = resolveCacheOptions({ ttl: '1m', grace: '1h' });

  it('falls back to the cache options for what the call leaves unset', () => {
    const call = resolveCallOptions(base, { ttl: '5s', tags: ['a'] });
    expect(call).toMatchObject({ ttl: 5_000, grace: 3_600_000, tags: ['a'] });
  });

  it.each([
    [{ tll: '5s' }, 'tll'],
    [{ ttl: 'soon' }, 'ttl'],
    [{ tags: [''] }, 'tags'],
    [{ eagerRefresh: 1 }, 'eagerRefresh'],
    [null, 'options'],
    [[], 'options'],
  ])('rejects %j with a TypeError naming `%s`', (options, option) => {
    expectConfigError(() => resolveCallOptions(base, options as never), option);
  });
});
