import { describe, expect, it } from 'vitest';
import { IdempotencyError } from './errors.js';
import { parseKeyHeader, storageKey } from './key.js';

const parse = (...values: string[]) => parseKeyHeader(values, 'Idempotency-Key');
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof IdempotencyError ? error.code : 'other';
  }
  return undefined;
};

describe('parseKeyHeader', () => {
  it('has no key when the header is absent', () => {
    expect(parse()).toBeUndefined();
  });

  it('reads the IETF sf-string form and unescapes it', () => {
    expect(parse('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe('8e03978e-40d5-43e8-bc93-6894a57f9324');
    expect(parse('"a\\"b\\\\c"')).toBe('a"b\\c');
    expect(parse('  "padded"  ')).toBe('padded');
  });

  it('reads a bare token, spaces inside included', () => {
    expect(parse('order-123')).toBe('order-123');
    expect(parse('my key')).toBe('my key');
  });

  it('accepts 1 and 255 characters, refuses 0 and 256', () => {
    expect(parse('k')).toBe('k');
    expect(parse('k'.repeat(255))).toHaveLength(255);
    expect(parse(`"${'k'.repeat(255)}"`)).toHaveLength(255);
    expect(code(() => parse('k'.repeat(256)))).toBe('key_invalid');
    expect(code(() => parse(`"${'k'.repeat(256)}"`))).toBe('key_invalid');
    expect(code(() => parse('""'))).toBe('key_invalid');
    expect(code(() => parse(''))).toBe('key_invalid');
    expect(code(() => parse('   '))).toBe('key_invalid');
  });

  it('refuses several values, non-printable and non-ASCII characters', () => {
    for (const bad of [
      ['a', 'b'],
      ['a, b'],
      ['"a", "b"'],
      ['"a"b'],
      ['"abc'],
      ['a\u0001b'],
      ['a\tb'],
      ['caf\u00e9'],
      ['"caf\u00e9"'],
      ['"a\\nb"'],
      ['a"b'],
    ]) {
      expect(
        code(() => parse(...bad)),
        JSON.stringify(bad),
      ).toBe('key_invalid');
    }
  });

  it('names the header in its messages', () => {
    try {
      parseKeyHeader(['a', 'b'], 'X-Request-Key');
    } catch (error) {
      expect((error as Error).message).toContain('X-Request-Key');
      expect((error as IdempotencyError).status).toBe(400);
    }
  });
});

describe('storageKey', () => {
  it('is a SHA-256 hex digest that depends on scope and key', () => {
    const k = storageKey('tenant-a', 'k1');
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(storageKey('tenant-a', 'k1')).toBe(k);
    expect(storageKey('tenant-b', 'k1')).not.toBe(k);
    expect(storageKey('tenant-a', 'k2')).not.toBe(k);
  });

  it('does not depend on the key order of derived keys', () => {
    expect(storageKey(null, { a: 1, b: 2 })).toBe(storageKey(null, { b: 2, a: 1 }));
  });
});

describe('storageKey fast path', () => {
  it('writes the same bytes as stable-stringify for string scopes and keys', async () => {
    const { createHash } = await import('node:crypto');
    const { default: stableStringify } = await import('fast-json-stable-stringify');
    for (const [scope, key] of [
      ['POST /orders', 'k1'],
      ['t"en\\ant', 'ké\u0000y'],
      ['', ''],
      ['POST /x', '"quoted"'],
    ]) {
      const expected = createHash('sha256').update(stableStringify({ scope, key })).digest('hex');
      expect(storageKey(scope, key)).toBe(expected);
    }
  });
});
