import { describe, expect, it } from 'vitest';
import { IdempotencyConfigError } from './errors.js';
import { parseDuration } from './config.js';
import { defaultCacheable, resolveOptions } from './options.js';

describe('resolveOptions', () => {
  it('applies the documented defaults', () => {
    const o = resolveOptions();
    expect(o.header).toEqual({ name: 'Idempotency-Key', lower: 'idempotency-key' });
    expect(o.required).toBe(false);
    expect([...o.methods]).toEqual(['POST', 'PATCH']);
    expect(o.ttl).toBe(24 * 3600_000);
    expect(o.lockTtl).toBe(30_000);
    expect(o.waitTimeout).toBe(60_000);
    expect(o.concurrent).toBe('reject');
    expect(o.maxBodyBytes).toBe(1 << 20);
    expect(o.onStoreError).toBe('fail-closed');
    expect(o.maxHold).toBe(3_600_000);
    expect(o.store.name).toBe('memory');
    expect(o.fingerprintReadsBody).toBe(true);
  });

  it('accepts a maxHold shorter than lockTtl: it bounds the hold, not the lease', () => {
    expect(resolveOptions({ maxHold: 10, lockTtl: '30s' })).toMatchObject({ maxHold: 10, lockTtl: 30_000 });
  });

  it('takes durations as milliseconds or strings', () => {
    expect(resolveOptions({ ttl: '2h', lockTtl: 1500, waitTimeout: '90s' })).toMatchObject({
      ttl: 7_200_000,
      lockTtl: 1500,
      waitTimeout: 90_000,
    });
    expect(parseDuration('ttl', '7d')).toBe(7 * 86_400_000);
  });

  it.each([
    [{ ttl: 'forever' }, 'ttl'],
    [{ ttl: -1 }, 'ttl'],
    [{ lockTtl: 0 }, 'lockTtl'],
    [{ waitTimeout: Number.NaN }, 'waitTimeout'],
    [{ concurrent: 'queue' }, 'concurrent'],
    [{ onStoreError: 'ignore' }, 'onStoreError'],
    [{ methods: [] }, 'methods'],
    [{ header: 'bad header' }, 'header'],
    [{ header: false }, 'header'],
    [{ key: ['metadata.id'] }, 'key'],
    [{ key: [] }, 'key'],
    [{ fingerprint: 'body' }, 'fingerprint'],
    [{ maxBodyBytes: -5 }, 'maxBodyBytes'],
    [{ cacheable: 200 }, 'cacheable'],
    [{ required: 'yes' }, 'required'],
    [{ scope: 'tenant' }, 'scope'],
    [{ store: {} }, 'store'],
    [{ logger: console.log }, 'logger'],
    [{ tll: '1h' }, 'tll'],
  ])('rejects %j naming the option', (options, option) => {
    let error: unknown;
    try {
      resolveOptions(options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IdempotencyConfigError);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as IdempotencyConfigError).option).toBe(option);
    expect((error as Error).message).toContain(`\`${option}\``);
  });

  it('knows when a derived key reads the body', () => {
    expect(resolveOptions({ header: false, key: ['body.id'], fingerprint: false })).toMatchObject({
      keyReadsBody: true,
      fingerprintReadsBody: false,
    });
    expect(resolveOptions({ header: false, key: ['params.id'], fingerprint: ['query.v'] })).toMatchObject({
      keyReadsBody: false,
      fingerprintReadsBody: false,
    });
  });
});

describe('defaultCacheable', () => {
  it('stores results, not transient failures', () => {
    for (const status of [200, 201, 204, 301, 400, 402, 404, 422])
      expect(defaultCacheable(status), String(status)).toBe(true);
    for (const status of [408, 409, 425, 429, 500, 502, 503])
      expect(defaultCacheable(status), String(status)).toBe(false);
  });
});
