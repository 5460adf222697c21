import { describe, expect, it } from 'vitest';
import { RECORD_FIELDS, bodyBytes, decodeRecord, encodeMeta } from './record.js';

/** HMGET's answer for a hash holding `pairs`: RECORD_FIELDS by position, null where missing. */
const hmget = (pairs: Record<string, string | Buffer>): (Buffer | null)[] =>
  RECORD_FIELDS.map((name) => {
    const value = pairs[name];
    if (value === undefined) return null;
    return Buffer.isBuffer(value) ? value : Buffer.from(value);
  });

describe('record codec', () => {
  it('reads an absent hash as no record', () => {
    expect(decodeRecord([null, null, null, null, null])).toBeUndefined();
    expect(decodeRecord([])).toBeUndefined();
  });

  it('reads an in-flight record, with or without a fingerprint, and never exposes its token', () => {
    expect(decodeRecord(hmget({ s: 'f', t: 'token', at: '1700000000000', fp: 'abc' }))).toEqual({
      state: 'in_flight',
      fingerprint: 'abc',
      startedAt: 1_700_000_000_000,
    });
    expect(decodeRecord(hmget({ s: 'f', t: 'token', at: '5' }))).toEqual({
      state: 'in_flight',
      fingerprint: null,
      startedAt: 5,
    });
  });

  it('round-trips a completed response: status, headers (arrays too) and exact bytes', () => {
    const response = {
      status: 201,
      headers: { location: '/a', 'x-multi': ['1', '2'] },
      body: new Uint8Array([0, 255, 10, 13]),
    };
    const record = decodeRecord(hmget({ s: 'c', at: '9', meta: encodeMeta(response), body: bodyBytes(response) }));
    expect(record).toMatchObject({
      state: 'completed',
      fingerprint: null,
      completedAt: 9,
      response: { status: 201, headers: response.headers },
    });
    if (record?.state === 'completed')
      expect(Buffer.from(record.response.body).equals(Buffer.from(response.body))).toBe(true);
  });

  it('keeps a body that is a view into a larger buffer without its neighbours', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    expect([...bodyBytes({ status: 200, headers: {}, body: backing.subarray(2, 5) })]).toEqual([1, 2, 3]);
  });

  it('refuses a state it does not know instead of guessing', () => {
    expect(() => decodeRecord(hmget({ s: 'x' }))).toThrow(/unreadable record state/);
  });
});
