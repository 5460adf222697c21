import { describe, expect, it } from 'vitest';
import { CacheStatus } from './cache-status.js';
import { NotCacheable, cachedAnswer, isCacheFailure, type CachedResponse } from './cached-answer.js';

const kept: CachedResponse = { status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('kept') };
const captured = { status: 200, headers: {}, body: new Uint8Array([1]) };
const codeError = (code: string) => Object.assign(new Error(code), { code });

describe('cachedAnswer', () => {
  it('answers from the cache, marked by where the value came from', () => {
    expect(cachedAnswer({ value: kept, stale: false, source: 'l1' }, undefined)).toEqual({
      action: 'send',
      response: kept,
      cacheStatus: CacheStatus.hit,
    });
    expect(cachedAnswer({ value: kept, stale: false, source: 'loader' }, undefined)).toMatchObject({
      cacheStatus: CacheStatus.collapsed,
    });
    expect(cachedAnswer({ value: kept, stale: true, source: 'l2' }, undefined)).toMatchObject({
      cacheStatus: CacheStatus.stale,
    });
  });

  it("lets the own handler's kept response out, or answers stale in place of its failure", () => {
    expect(cachedAnswer({ value: kept, stale: false, source: 'loader' }, { response: captured })).toEqual({
      action: 'own',
      cacheStatus: CacheStatus.stored,
    });
    expect(cachedAnswer({ value: kept, stale: true, source: 'l1' }, { error: new Error('x') })).toEqual({
      action: 'send',
      response: kept,
      cacheStatus: CacheStatus.stale,
    });
    expect(
      cachedAnswer({ value: kept, stale: true, source: 'l1' }, { response: { ...captured, status: 500 } }),
    ).toMatchObject({ action: 'send' });
    // Too large to keep: it may be on the wire already, so it goes out as written.
    expect(cachedAnswer({ value: kept, stale: true, source: 'l1' }, { response: { ...captured, body: null } })).toEqual(
      { action: 'own', cacheStatus: CacheStatus.miss },
    );
  });

  it('keeps the own run as it ended when nothing was kept', () => {
    const error = new Error('handler');
    expect(cachedAnswer({ error: new NotCacheable(undefined) }, { response: captured })).toEqual({
      action: 'own',
      cacheStatus: CacheStatus.miss,
    });
    expect(cachedAnswer({ error }, { error })).toEqual({ action: 'fail', error });
  });

  it('shares what the joined run produced: its response, or its failure', () => {
    const error = new Error('the shared handler failed');
    expect(cachedAnswer({ error: new NotCacheable(kept) }, undefined)).toEqual({
      action: 'send',
      response: kept,
      cacheStatus: CacheStatus.collapsed,
    });
    expect(cachedAnswer({ error: new NotCacheable(undefined) }, undefined)).toEqual({
      action: 'run',
      cacheStatus: CacheStatus.miss,
    });
    expect(cachedAnswer({ error }, undefined)).toEqual({ action: 'fail', error });
    // regression: Koa told a cache failure by its class name, Express not at all
    expect(cachedAnswer({ error: codeError('cache_breaker_open') }, undefined)).toEqual({
      action: 'run',
      cacheStatus: CacheStatus.miss,
    });
  });
});

describe('isCacheFailure', () => {
  it.each([
    'cache_hard_timeout',
    'cache_l2_timeout',
    'cache_l2_unavailable',
    'cache_breaker_open',
    'cache_serialization',
    'cache_closed',
  ])('%s is the cache giving up', (code) => {
    expect(isCacheFailure(codeError(code))).toBe(true);
  });

  it('is decided by the code alone, never by the class name', () => {
    expect(isCacheFailure(Object.assign(new Error('x'), { name: 'CacheError' }))).toBe(false);
    expect(isCacheFailure({ code: 'cache_closed' })).toBe(true);
    expect(isCacheFailure(codeError('cache_config'))).toBe(false);
    expect(isCacheFailure(codeError('ECONNRESET'))).toBe(false);
    expect(isCacheFailure(undefined)).toBe(false);
    expect(isCacheFailure('cache_closed')).toBe(false);
  });
});
