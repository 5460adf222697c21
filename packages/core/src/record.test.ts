import { describe, expect, it } from 'vitest';
import { recordProblem } from './record.js';
import type { CompletedRecord, StoredResponse } from './types.js';

const completed = (response: Partial<StoredResponse> & Record<string, unknown>): CompletedRecord => ({
  state: 'completed',
  fingerprint: 'fp',
  completedAt: 1,
  response: {
    status: 201,
    headers: { 'content-type': 'application/json' },
    body: new Uint8Array([1]),
    ...response,
  } as StoredResponse,
});

describe('recordProblem', () => {
  it('accepts what idem stores', () => {
    expect(
      recordProblem(completed({ headers: { location: '/o/1', 'x-trace': ['a', 'b'], vary: 'accept' } })),
    ).toBeUndefined();
    expect(recordProblem({ state: 'in_flight', fingerprint: null, startedAt: 5 })).toBeUndefined();
    expect(
      recordProblem(
        completed({ headers: { 'content-disposition': 'attachment; filename="caf\u00e9.txt"', 'x-a': [] } }),
      ),
    ).toBeUndefined();
    // A store that drops nulls.
    expect(recordProblem({ ...completed({}), fingerprint: undefined as unknown as null })).toBeUndefined();
  });

  it.each([
    ['a status Node refuses', completed({ status: 1000 }), /status 1000/],
    ['a status below 100', completed({ status: 42 }), /status 42/],
    ['a fractional status', completed({ status: 200.5 }), /status/],
    ['a header value with a newline', completed({ headers: { location: '/a\r\nset-cookie: x=1' } }), /location/],
    ['a header value with NUL', completed({ headers: { 'x-a': 'a\u0000' } }), /x-a/],
    ['a set-cookie header', completed({ headers: { 'set-cookie': 'session=1' } }), /set-cookie/],
    ['a header name that is not a token', completed({ headers: { 'x a': '1' } }), /x a/],
    ['a non-string header value', completed({ headers: { 'x-n': 5 as unknown as string } }), /x-n/],
    ['a body that is not bytes', completed({ body: 'text' as unknown as Uint8Array }), /body/],
    ['an array value with one bad element', completed({ headers: { 'x-a': ['ok', 'b\n'] } }), /x-a/],
    ['a DEL character', completed({ headers: { 'x-a': 'a\u007f' } }), /x-a/],
    ['a character above latin1', completed({ headers: { 'x-a': '\u20ac' } }), /x-a/],
    ['headers that are not an object', completed({ headers: null as unknown as Record<string, string> }), /headers/],
    ['a completedAt that is not a number', { ...completed({}), completedAt: Number.NaN }, /completedAt/],
    ['an unknown state', { state: 'done', fingerprint: null } as unknown as CompletedRecord, /state/],
  ])('refuses %s', (_what, record, reason) => {
    expect(recordProblem(record)).toMatch(reason);
  });
});
