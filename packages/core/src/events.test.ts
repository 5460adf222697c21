import { describe, expect, it } from 'vitest';
import { IdempotencyEvents } from './events.js';

const replay = { key: 'k', route: undefined, status: 200, ageMs: 1, durationMs: 1 };

describe('IdempotencyEvents', () => {
  // regression: once() listeners fired on every emit because emit iterated listeners(), not rawListeners()
  it('calls a once() listener only once', () => {
    const events = new IdempotencyEvents();
    let calls = 0;
    events.once('replay', () => calls++);
    events.emit('replay', replay);
    events.emit('replay', replay);
    expect(calls).toBe(1);
  });

  it('keeps calling other listeners when one throws, and never throws itself', () => {
    const events = new IdempotencyEvents();
    const seen: number[] = [];
    events.on('replay', () => {
      throw new Error('observer bug');
    });
    events.on('replay', (e) => seen.push(e.status));
    expect(() => events.emit('replay', replay)).not.toThrow();
    expect(seen).toEqual([200]);
  });

  it('stops calling a listener removed with off()', () => {
    const events = new IdempotencyEvents();
    let calls = 0;
    const listener = () => calls++;
    events.on('replay', listener);
    events.emit('replay', replay);
    events.off('replay', listener);
    events.emit('replay', replay);
    expect(calls).toBe(1);
  });
});
