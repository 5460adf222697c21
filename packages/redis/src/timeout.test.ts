import { describe, expect, it } from 'vitest';
import { RedisTimeoutError } from './errors.js';
import { withTimeout } from './timeout.js';

/** A promise settled from outside, like an ioredis command that answers when it answers. */
function pending<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('withTimeout', () => {
  it('resolves with the command and never calls onFailure', async () => {
    let failures = 0;
    const command = pending<number>();
    const bounded = withTimeout(command.promise, 1_000, 'claim', () => failures++);
    command.resolve(1);
    await expect(bounded).resolves.toBe(1);
    expect(failures).toBe(0);
  });

  it("passes on the command's own error and calls onFailure once", async () => {
    let failures = 0;
    const command = pending<number>();
    const bounded = withTimeout(command.promise, 1_000, 'claim', () => failures++);
    command.reject(new Error('connection closed'));
    await expect(bounded).rejects.toThrow('connection closed');
    expect(failures).toBe(1);
  });

  it('times out, and a late rejection of the same command does not call onFailure again', async () => {
    let failures = 0;
    const command = pending<number>();
    const bounded = withTimeout(command.promise, 5, 'claim', () => failures++);
    await expect(bounded).rejects.toBeInstanceOf(RedisTimeoutError);
    expect(failures).toBe(1);
    command.reject(new Error('connection closed'));
    // Let the late rejection's handlers run before counting.
    await command.promise.catch(() => undefined);
    await Promise.resolve();
    expect(failures).toBe(1);
  });

  it('a late success after the timeout changes nothing', async () => {
    let failures = 0;
    const command = pending<number>();
    const bounded = withTimeout(command.promise, 5, 'complete', () => failures++);
    await expect(bounded).rejects.toMatchObject({ name: 'RedisTimeoutError' });
    command.resolve(1);
    await command.promise;
    await Promise.resolve();
    expect(failures).toBe(1);
  });
});
