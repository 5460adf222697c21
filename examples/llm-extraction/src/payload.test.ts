import { describe, expect, it } from 'vitest';
import { keyParts, normaliseDate, parseMeetingPayload } from './payload.js';
import { ProblemError } from './problem.js';

describe('normaliseDate', () => {
  it.each([
    ['2024-05-01', '2024-05-01'],
    [' 2024-05-01 ', '2024-05-01'],
    ['2024-05-01T09:30:00Z', '2024-05-01'],
    ['2024-05-01T09:30Z', '2024-05-01'],
    ['2024-05-01 09:30:00.123+02:00', '2024-05-01'],
    // The meeting's own day, not the UTC one (23:30 in New York is the next day in UTC).
    ['2024-05-01T23:30:00-05:00', '2024-05-01'],
    ['2024-02-29', '2024-02-29'],
  ])('%j → %s', (input, expected) => {
    expect(normaliseDate(input)).toBe(expected);
  });

  it.each([
    '2024-02-30',
    '2023-02-29',
    '2024-13-01',
    '05/01/2024',
    '2024-5-1',
    '2024-05-01T25:00:00Z',
    'yesterday',
    '',
  ])('rejects %j', (input) => {
    expect(normaliseDate(input)).toBeUndefined();
  });
});

describe('parseMeetingPayload', () => {
  const valid = {
    transcript: '  Alice: hi  ',
    metadata: { meeting_id: ' m-1 ', customer_id: 42, meet_date: '2024-05-01T10:00:00Z' },
  };

  it('trims, stringifies integer ids and normalises the date', () => {
    const payload = parseMeetingPayload(valid);
    expect(payload).toEqual({
      transcript: 'Alice: hi',
      metadata: { meeting_id: 'm-1', customer_id: '42', meet_date: '2024-05-01' },
    });
    expect(keyParts(payload)).toEqual(['m-1', '2024-05-01', '42']);
  });

  it('lists every invalid field with a JSON pointer', () => {
    let error: unknown;
    try {
      parseMeetingPayload({
        transcript: 5,
        metadata: { meeting_id: '', customer_id: 'x'.repeat(129), meet_date: 20240501 },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProblemError);
    const problem = error as ProblemError;
    expect(problem.status).toBe(400);
    expect(problem.extensions.errors).toEqual([
      { pointer: '/transcript', detail: 'must be a string, got number' },
      { pointer: '/metadata/meeting_id', detail: 'must not be empty' },
      { pointer: '/metadata/customer_id', detail: 'must be at most 128 characters' },
      { pointer: '/metadata/meet_date', detail: 'must be a string, got number' },
    ]);
    expect(problem.message).toBe(
      '4 fields are invalid: /transcript must be a string, got number; /metadata/meeting_id must not be empty; ' +
        '/metadata/customer_id must be at most 128 characters; /metadata/meet_date must be a string, got number.',
    );
  });

  it('rejects a body that is not an object', () => {
    expect(() => parseMeetingPayload(null)).toThrow('One field is invalid: the body must be a JSON object, got null.');
  });
});
