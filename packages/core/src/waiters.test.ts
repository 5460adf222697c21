import { describe, expect, it } from 'vitest';
import { KeyedWaiters } from './waiters.js';

// Long enough that a test which wrongly waits for the backstop times out instead of passing.
const NEVER = 60_000;

describe('KeyedWaiters', () => {
  it('wakes a waiting caller of its key at once, long before its polling interval', async () => {
    const waiters = new KeyedWaiters();
    const watch = waiters.watch('k');
    const woken = watch.next(NEVER);
    waiters.wake('k');
    await expect(woken).resolves.toBe(true);
    watch.stop();
  });

  it('keeps a wake-up that came between two waits, so it is not lost', async () => {
    const waiters = new KeyedWaiters();
    const watch = waiters.watch('k');
    waiters.wake('k');
    await expect(watch.next(NEVER)).resolves.toBe(true);
    watch.stop();
  });

  it('falls back to polling: without a wake-up the wait ends after its interval, answering false', async () => {
    const waiters = new KeyedWaiters();
    const watch = waiters.watch('k');
    await expect(watch.next(5)).resolves.toBe(false);
    watch.stop();
  });

  it('wakes only the callers of that key', async () => {
    const waiters = new KeyedWaiters();
    const a = waiters.watch('a');
    const b = waiters.watch('b');
    waiters.wake('a');
    await expect(a.next(NEVER)).resolves.toBe(true);
    await expect(b.next(5)).resolves.toBe(false);
    a.stop();
    b.stop();
  });

  it('does not hand an earlier wake-up to a watch that started after it', async () => {
    const waiters = new KeyedWaiters();
    const first = waiters.watch('k');
    waiters.wake('k');
    const later = waiters.watch('k');
    await expect(later.next(5)).resolves.toBe(false);
    first.stop();
    later.stop();
  });

  it('wakes every caller when its owner closes', async () => {
    const waiters = new KeyedWaiters();
    const watches = ['a', 'b', 'b'].map((key) => waiters.watch(key));
    const waits = watches.map((watch) => watch.next(NEVER));
    waiters.wakeAll();
    await expect(Promise.all(waits)).resolves.toEqual([true, true, true]);
  });

  it('says a key is idle once, when its last watch stops (the moment to unsubscribe)', () => {
    const idle: string[] = [];
    const waiters = new KeyedWaiters<string>({ onIdle: (key) => idle.push(key) });
    const one = waiters.watch('k');
    const two = waiters.watch('k');
    one.stop();
    expect(idle).toEqual([]);
    expect(waiters.watching('k')).toBe(true);
    two.stop();
    two.stop();
    expect(idle).toEqual(['k']);
    expect(waiters.watching('k')).toBe(false);
    // A new watch after that is a new subscription, idle again when it stops.
    waiters.watch('k').stop();
    expect(idle).toEqual(['k', 'k']);
  });
});
