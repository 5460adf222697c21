import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './breaker.js';
import type { BreakerState } from './types.js';

function breaker(
  threshold = 3,
  cooldown = 1_000,
): { b: CircuitBreaker; advance: (ms: number) => void; changes: string[] } {
  let now = 0;
  const changes: string[] = [];
  const b = new CircuitBreaker(
    { threshold, cooldown },
    () => now,
    (state: BreakerState, previous: BreakerState) => changes.push(`${previous}->${state}`),
  );
  return { b, advance: (ms) => (now += ms), changes };
}

describe('CircuitBreaker', () => {
  it('opens after `threshold` consecutive failures; a success resets the count', () => {
    const { b, changes } = breaker(3);
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    expect(changes).toEqual(['closed->open']);
  });

  it('lets one probe through after the cooldown; its success closes, its failure re-opens', () => {
    const { b, advance, changes } = breaker(1, 1_000);
    b.failure();
    advance(999);
    expect(b.allow()).toBe(false);
    advance(1);
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false);
    b.failure();
    expect(b.state).toBe('open');
    advance(1_000);
    expect(b.allow()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(changes).toEqual([
      'closed->open',
      'open->half-open',
      'half-open->open',
      'open->half-open',
      'half-open->closed',
    ]);
  });

  it('never opens when disabled', () => {
    const b = new CircuitBreaker(
      undefined,
      () => 0,
      () => {},
    );
    for (let i = 0; i < 100; i++) b.failure();
    expect(b.allow()).toBe(true);
  });
});
