import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonSerializer } from './serializer.js';

// JSON semantics: -0 reads back as 0, as with JSON.parse(JSON.stringify(v)). Compare against that.
const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const roundTrip = (value: unknown): unknown => jsonSerializer.deserialize(Buffer.from(jsonSerializer.serialize(value)));

describe('jsonSerializer', () => {
  it('round-trips any JSON value exactly', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(roundTrip(value)).toEqual(value);
      }),
    );
  });

  it('round-trips Buffers and Uint8Arrays anywhere, keeping which is which', () => {
    const bytes = fc.uint8Array({ maxLength: 64 });
    const leaf = fc.oneof(
      json,
      bytes.map((b) => Buffer.from(b)),
      bytes,
    );
    const tree = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(tree, (value) => {
        const back = roundTrip(value);
        expect(back).toEqual(value);
        expect(kinds(back)).toEqual(kinds(value));
      }),
    );
  });

  it('never mistakes data for a tag, whatever the keys', () => {
    const value = { '\u0000b': 'AAEC', nested: [{ '\u0000u': 'AQ==' }], '\u0000\u0000': 1 };
    expect(roundTrip(value)).toEqual(value);
    const proto = JSON.parse('{"\\u0000x": 1, "__proto__": {"polluted": true}}') as object;
    const back = roundTrip(proto) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['\u0000x', '__proto__']);
  });

  it('keeps undefined at the top level and fails clearly on what JSON cannot hold', () => {
    expect(roundTrip(undefined)).toBeUndefined();
    expect(() => jsonSerializer.serialize(() => 1)).toThrow(TypeError);
  });

  it('reads plain JSON without a reviver (first byte says so)', () => {
    expect(Buffer.from(jsonSerializer.serialize({ a: 1 })).toString()).toBe('j{"a":1}');
  });
});

function kinds(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return 'Buffer';
  if (value instanceof Uint8Array) return 'Uint8Array';
  if (Array.isArray(value)) return value.map(kinds);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, kinds(v)]));
  return typeof value;
}
