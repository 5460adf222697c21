import { describe, expect, it } from 'vitest';
import { bodyBytes, decodeRecord, encodeMeta, fieldsFromValues } from './record.js';

const fields = (pairs: Record<string, string | Buffer>): Record<string, Buffer> =>
  Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]));

describe('record codec', () => {
  it('reads an absent hash as no record', () => {
    expect(decodeRecord({})).toBeUndefined();
    expect(decodeRecord(fieldsFromValues([null, null, null, null, null]))).toBeUndefined();
  });

  it('reads an in-flight record, with or without a fingerprint, and never exposes its token', () => {
    expect(decodeRecord(fields({ s: 'f', t: 'token', at: '1700000000000', fp: 'abc' }))).toEqual({ state: 'in_flight', fingerprint: 'abc', startedAt: 1_700_000_000_000 });
    expect(decodeRecord(fields({ s: 'f', t: 'token', at: '5' }))).toEqual({ state: 'in_flight', fingerprint: null, startedAt: 5 });
  });

  it('round-trips a completed response: status, headers (arrays too) and exact bytes', () => {
    const response = { status: 201, headers: { location: '/a', 'x-multi': ['1', '2'] }, body: new Uint8Array([0, 255, 10, 13]) };
    // HMGET record s fp at meta body
    const values = [Buffer.from('c'), null, Buffer.from('9'), Buffer.from(encodeMeta(response)), bodyBytes(response)];
    const record = decodeRecord(fieldsFromValues(values));
    expect(record).toMatchObject({ state: 'completed', fingerprint: null, completedAt: 9, response: { status: 201, headers: response.headers } });
    if (record?.state === 'completed') expect(Buffer.from(record.response.body).equals(Buffer.from(response.body))).toBe(true);
  });

  it('keeps a body that is a view into a larger buffer without its neighbours', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    expect([...bodyBytes({ status: 200, headers: {}, body: backing.subarray(2, 5) })]).toEqual([1, 2, 3]);
  });

  it('refuses a state it does not know instead of guessing', () => {
    expect(() => decodeRecord(fields({ s: 'x' }))).toThrow(/unreadable record state/);
  });
});
