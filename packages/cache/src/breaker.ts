import type { BreakerState } from './types.js';

/**
 * A circuit breaker over Redis calls: after `threshold` consecutive failures it opens and refuses
 * calls for `cooldown`; then one probe is let through (half-open) and its outcome closes or
 * re-opens it. Without options it never opens.
 * @internal
 */
export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(
    private readonly options: { threshold: number; cooldown: number } | undefined,
    private readonly clock: () => number,
    private readonly onChange: (state: BreakerState, previous: BreakerState) => void,
  ) {}

  /** The current state, moving open → half-open when the cooldown has passed. */
  get state(): BreakerState {
    if (
      this.#state === 'open' &&
      this.options !== undefined &&
      this.clock() - this.#openedAt >= this.options.cooldown
    ) {
      this.#transition('half-open');
    }
    return this.#state;
  }

  /** Whether a call may go out now. In half-open state only one probe at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** Records a successful call. */
  success(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#state !== 'closed') this.#transition('closed');
  }

  /** Gives back a probe slot without a verdict (the call was never sent). */
  abandon(): void {
    this.#probing = false;
  }

  /** Records a failed or timed-out call. */
  failure(): void {
    this.#probing = false;
    if (this.options === undefined) return;
    this.#failures++;
    if (this.#state === 'half-open' || (this.#state === 'closed' && this.#failures >= this.options.threshold)) {
      this.#openedAt = this.clock();
      this.#transition('open');
    }
  }

  #transition(state: BreakerState): void {
    const previous = this.#state;
    this.#state = state;
    this.onChange(state, previous);
  }
}
