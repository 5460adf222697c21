import { describe, expect, it } from 'vitest';
import { isWrongType, olderRedisError } from './scripts.js';

describe('claim errors', () => {
  it('says plainly that Redis 7.0 is needed when the server refuses NX with GET (what Redis 6.2 answers)', () => {
    const refused = new Error('ERR syntax error');
    const error = olderRedisError(refused);
    expect(error?.message).toMatch(/needs Redis 7\.0 or newer/);
    expect(error?.cause).toBe(refused);
  });

  it('leaves every other error as it is', () => {
    expect(olderRedisError(new Error('READONLY You cannot write against a read only replica.'))).toBeUndefined();
    expect(olderRedisError('ERR syntax error')).toBeUndefined();
    expect(isWrongType(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(true);
    expect(isWrongType(new Error('ERR syntax error'))).toBe(false);
  });
});
