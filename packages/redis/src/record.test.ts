import { describe, expect, it } from 'vitest';
import {
  HASH_FIELDS,
  bodyBytes,
  decodeHashRecord,
  decodeRecord,
  decodeStanding,
  encodeCompleted,
  encodeInFlight,
  tokenField,
} from './record.js';

const bytes = (value: string | Buffer): Buffer => (Buffer.isBuffer(value) ? value : Buffer.from(value));

/** HMGET's answer for a previous version's hash holding `pairs`: HASH_FIELDS by position, null where missing. */
const hmget = (pairs: Record<string, string | Buffer>): (Buffer | null)[] =>
  HASH_FIELDS.map((name) => (pairs[name] === undefined ? null : bytes(pairs[name] as string | Buffer)));

describe('record codec: one string', () => {
  it('reads no value as no record', () => {
    expect(decodeRecord(null)).toBeUndefined();
    expect(decodeRecord(undefined)).toBeUndefined();
  });

  it('writes an in-flight record with the token right after state and flag, and never exposes it', () => {
    const value = encodeInFlight('token-1', 'abc', 1_700_000_000_000);
    expect(value).toBe('f-7:token-11700000000000:3:abc');
    // What the scripts compare to fence a write: bytes 3… of the value start with this.
    expect(value.slice(2).startsWith(tokenField('token-1'))).toBe(true);
    expect(decodeRecord(bytes(value))).toEqual({
      state: 'in_flight',
      fingerprint: 'abc',
      startedAt: 1_700_000_000_000,
    });
    expect(decodeRecord(bytes(encodeInFlight('t', null, 5)))).toEqual({
      state: 'in_flight',
      fingerprint: null,
      startedAt: 5,
    });
  });

  it('reads the waiter flag PEEK writes in place (byte 1) as the same record', () => {
    const value = bytes(encodeInFlight('t', 'fp', 7));
    value[1] = 'w'.charCodeAt(0);
    expect(decodeRecord(value)).toEqual({ state: 'in_flight', fingerprint: 'fp', startedAt: 7 });
  });

  it('tells an empty fingerprint from none, and keeps any fingerprint (separators, NUL, non-ASCII) exact', () => {
    for (const fingerprint of ['', ':', '-', '3:x', 'a\u0000b', 'é€😀', '\u00ff'.repeat(300)]) {
      expect(decodeRecord(bytes(encodeInFlight('tok', fingerprint, 1)))?.fingerprint).toBe(fingerprint);
      const completed = encodeCompleted({ status: 200, headers: {}, body: new Uint8Array([1]) }, fingerprint, 2);
      expect(decodeRecord(completed)?.fingerprint).toBe(fingerprint);
    }
    expect(decodeRecord(bytes(encodeInFlight('tok', null, 1)))?.fingerprint).toBeNull();
  });

  it('round-trips a completed response: status, headers (arrays, non-ASCII) and exact bytes', () => {
    const response = {
      status: 201,
      headers: { location: '/a', 'x-multi': ['1', '2'], 'content-disposition': 'attachment; filename="é.bin"' },
      body: new Uint8Array([0, 255, 10, 13, 0x3a, 0x2d, 0x63]),
    };
    const record = decodeRecord(encodeCompleted(response, 'fp', 9));
    expect(record).toMatchObject({
      state: 'completed',
      fingerprint: 'fp',
      completedAt: 9,
      response: { status: 201, headers: response.headers },
    });
    if (record?.state === 'completed')
      expect(Buffer.from(record.response.body).equals(Buffer.from(response.body))).toBe(true);
  });

  it('keeps every byte value and an empty body, and hands back a view of the value (no copy)', () => {
    const all = new Uint8Array(Array.from({ length: 512 }, (_, i) => i & 0xff));
    const value = encodeCompleted({ status: 200, headers: {}, body: all }, null, 1);
    const record = decodeRecord(value);
    if (record?.state !== 'completed') throw new Error('not completed');
    expect(Buffer.from(record.response.body).equals(Buffer.from(all))).toBe(true);
    expect(record.response.body.buffer).toBe(value.buffer);
    const empty = decodeRecord(encodeCompleted({ status: 204, headers: {}, body: new Uint8Array(0) }, null, 1));
    expect(empty?.state === 'completed' && empty.response.body.byteLength).toBe(0);
  });

  it('keeps a body that is a view into a larger buffer without its neighbours', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    expect([...bodyBytes({ status: 200, headers: {}, body: backing.subarray(2, 5) })]).toEqual([1, 2, 3]);
    const record = decodeRecord(encodeCompleted({ status: 200, headers: {}, body: backing.subarray(2, 5) }, null, 1));
    expect(record?.state === 'completed' && [...record.response.body]).toEqual([1, 2, 3]);
  });

  it('refuses a body that is not bytes', () => {
    expect(() => encodeCompleted({ status: 200, headers: {}, body: 'text' as never }, null, 1)).toThrow(TypeError);
  });

  it('refuses what it cannot read instead of guessing', () => {
    expect(() => decodeRecord(bytes('x-1:t1:-'))).toThrow(/unreadable record state/);
    expect(() => decodeRecord(bytes('f?1:t1:-'))).toThrow(/unreadable record/);
    expect(() => decodeRecord(bytes('f-9:t1:-'))).toThrow(/unreadable record/);
    expect(() => decodeRecord(bytes('f-1:tx:-'))).toThrow(/unreadable record/);
    expect(() => decodeRecord(bytes('c-0:1:-99:{}'))).toThrow(/unreadable record/);
    expect(() => decodeRecord(bytes('f-'))).toThrow(/unreadable record/);
  });
});

describe("record codec: the previous version's hash", () => {
  it('reads an absent hash as no record', () => {
    expect(decodeHashRecord([null, null, null, null, null])).toBeUndefined();
    expect(decodeHashRecord([])).toBeUndefined();
  });

  it('reads an in-flight hash, with or without a fingerprint', () => {
    expect(decodeHashRecord(hmget({ s: 'f', t: 'token', at: '1700000000000', fp: 'abc' }))).toEqual({
      state: 'in_flight',
      fingerprint: 'abc',
      startedAt: 1_700_000_000_000,
    });
    expect(decodeStanding(hmget({ s: 'f', t: 'token', at: '5' }))).toEqual({
      state: 'in_flight',
      fingerprint: null,
      startedAt: 5,
    });
  });

  it('reads a completed hash: status, headers and exact bytes', () => {
    const body = Buffer.from([0, 255, 10, 13]);
    const meta = JSON.stringify({ status: 201, headers: { location: '/a', 'x-multi': ['1', '2'] } });
    const record = decodeStanding(hmget({ s: 'c', at: '9', meta, body }));
    expect(record).toMatchObject({
      state: 'completed',
      fingerprint: null,
      completedAt: 9,
      response: { status: 201, headers: { location: '/a', 'x-multi': ['1', '2'] } },
    });
    if (record?.state === 'completed') expect(Buffer.from(record.response.body).equals(body)).toBe(true);
  });

  it('refuses a state it does not know', () => {
    expect(() => decodeHashRecord(hmget({ s: 'x' }))).toThrow(/unreadable record state/);
  });
});
