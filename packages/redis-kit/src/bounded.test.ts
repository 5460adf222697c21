import { describe, expect, it } from 'vitest';
import { bounded } from './bounded.js';

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

/** The caller's own timeout error: the kit never raises one of its own. */
class OwnTimeout extends Error {
  constructor(readonly operation: string) {
    super(`${operation} timed out`);
  }
}

describe('bounded', () => {
  it('resolves with the command and never calls onFailure', async () => {
    let failures = 0;
    const command = pending<number>();
    const call = bounded(
      command.promise,
      1_000,
      () => new OwnTimeout('claim'),
      () => failures++,
    );
    command.resolve(1);
    await expect(call).resolves.toBe(1);
    expect(failures).toBe(0);
  });

  it("passes on the command's own error and calls onFailure once", async () => {
    let failures = 0;
    const command = pending<number>();
    const call = bounded(
      command.promise,
      1_000,
      () => new OwnTimeout('claim'),
      () => failures++,
    );
    command.reject(new Error('connection closed'));
    await expect(call).rejects.toThrow('connection closed');
    expect(failures).toBe(1);
  });

  it("times out with the caller's error, and a late rejection does not call onFailure again", async () => {
    let failures = 0;
    const command = pending<number>();
    const call = bounded(
      command.promise,
      5,
      () => new OwnTimeout('claim'),
      () => failures++,
    );
    await expect(call).rejects.toBeInstanceOf(OwnTimeout);
    await expect(call).rejects.toMatchObject({ operation: 'claim' });
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
    const call = bounded(
      command.promise,
      5,
      () => new OwnTimeout('complete'),
      () => failures++,
    );
    await expect(call).rejects.toBeInstanceOf(OwnTimeout);
    command.resolve(1);
    await command.promise;
    await Promise.resolve();
    expect(failures).toBe(1);
  });
});
