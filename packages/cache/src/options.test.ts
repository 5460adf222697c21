import { describe, expect, it } from 'vitest';
import { CacheConfigError } from './errors.js';
import { defaults, duration, resolveCacheOptions } from './options.js';

describe('resolveCacheOptions', () => {
  it('applies the documented defaults', () => {
    const o = resolveCacheOptions();
    expect(o).toMatchObject({
      maxEntries: defaults.maxEntries,
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
  });

  it('takes durations as milliseconds or strings, and 0 where 0 means off', () => {
    const o = resolveCacheOptions({ ttl: '5m', grace: '0s', timeout: 250, hardTimeout: '2s', breaker: false });
    expect(o).toMatchObject({ ttl: 300_000, grace: 0, timeout: 250, hardTimeout: 2_000, breaker: undefined });
    expect(duration('grace', 0, true)).toBe(0);
  });

  it.each([
    [{ ttl: 'soon' }, 'ttl'],
    [{ ttl: 0 }, 'ttl'],
    [{ grace: -1 }, 'grace'],
    [{ timeout: 0 }, 'timeout'],
    [{ l1: { maxEntries: 0 } }, 'l1.maxEntries'],
    [{ l1: { max: 5 } }, 'l1.max'],
    [{ redis: {} }, 'redis'],
    [{ redis: { defineCommand() {}, duplicate() {}, options: { keyPrefix: 'app:' } } }, 'redis'],
    [{ namespace: '' }, 'namespace'],
    [{ namespace: 'a{b}' }, 'namespace'],
    [{ jitter: 1 }, 'jitter'],
    [{ eagerRefresh: 0 }, 'eagerRefresh'],
    [{ breaker: { threshold: 0 } }, 'breaker.threshold'],
    [{ breaker: { cooldown: 'never' } }, 'breaker.cooldown'],
    [{ serializer: { serialize() {} } }, 'serializer'],
    [{ logger: { info() {} } }, 'logger'],
    [{ clock: 5 }, 'clock'],
    [{ tll: '1m' }, 'tll'],
  ])('rejects %j with a TypeError naming `%s`', (options, option) => {
    const attempt = (): unknown => resolveCacheOptions(options as never);
    expect(attempt).toThrow(TypeError);
    expect(attempt).toThrow(CacheConfigError);
    expect(attempt).toThrow(`\`${option}\``);
    try {
      attempt();
    } catch (error) {
      expect((error as CacheConfigError).option).toBe(option);
      expect((error as CacheConfigError).code).toBe('cache_config');
    }
  });
});
