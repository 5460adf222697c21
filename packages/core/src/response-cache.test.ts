import { describe, expect, it } from 'vitest';
import { ConfigError } from './config.js';
import { responseCaching, type ResponseCache } from './response-cache.js';

const cache: ResponseCache = {
  getOrSetEntry: async (key, loader) => ({
    value: await loader({ key, stale: undefined }),
    stale: false,
    source: 'loader',
  }),
};

describe('cached() options', () => {
  it('takes grace 0 in every spelling, as createCache does', () => {
    for (const grace of [0, '0', '0s', '0ms']) expect(() => responseCaching({ cache, grace })).not.toThrow();
  });

  it.each([
    [{ cache, vary: 'accept-language' }, 'vary'],
    [{ cache, vary: ['accept language'] }, 'vary'],
    [{ cache, cacheable: 200 }, 'cacheable'],
    [{ cache, tags: 'all' }, 'tags'],
    [{ cache, tags: [''] }, 'tags'],
    [{ cache, maxBodyBytes: -1 }, 'maxBodyBytes'],
    [{ cache, ttl: 'soon' }, 'ttl'],
    [{ cache, tll: '1m' }, 'tll'],
    [{ cache: {} }, 'cache'],
    [[], 'options'],
  ])('refuses %j naming `%s`', (options, option) => {
    let caught: unknown;
    try {
      responseCaching(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe(option);
  });
});
