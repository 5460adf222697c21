import type { IdempotencyEventMap, IdempotencyEvents } from '@idem/core/adapter';

// Every event name, checked against core's map: a new event fails to compile here until listed.
const NAMES = Object.keys({
  replay: true,
  execute: true,
  conflict: true,
  mismatch: true,
  storeError: true,
  leaseLost: true,
  invalidRecord: true,
  rejected: true,
  wait: true,
  storeCall: true,
} satisfies Record<keyof IdempotencyEventMap, true>) as (keyof IdempotencyEventMap)[];

/**
 * Passes every event of a route's own engine (a route with `config.idempotency` options) on to the
 * plugin's, so that `app.idempotency.events` tells about every route of the scope.
 */
export function forwardEvents(from: IdempotencyEvents, to: IdempotencyEvents): void {
  for (const name of NAMES) from.on(name, (event) => to.emit(name, event as never));
}
