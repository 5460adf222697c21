/**
 * Records are checked when they are read: a store is a trust boundary. A shared Redis or a
 * database may hold a record that is corrupt, tampered with, or written by an older format, and
 * replaying it must never take the process down (Node throws on a status of 1000 or a header
 * value with a newline) nor send a client what idem would never have stored (a `Set-Cookie`).
 */
import { HEADER_NAME, isReplayableHeader } from './headers.js';
import type { IdempotencyRecord } from './types.js';

// What Node accepts in a header value (http's checkInvalidHeaderChar): TAB, visible ASCII, space
// and latin1 bytes; no other control character (CR, LF, NUL, DEL), nothing above U+00FF.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function validValue(value: unknown): boolean {
  return typeof value === 'string' && FIELD_VALUE.test(value);
}

/**
 * Why `record` cannot be used, or undefined when it can: its state, fingerprint and times, and
 * for a completed record a status of 100–599, replayable header names with values a response may
 * carry, and a body of bytes.
 */
export function recordProblem(record: IdempotencyRecord): string | undefined {
  if (record === null || typeof record !== 'object') return 'not an object';
  // A store that drops nulls may hand back undefined: both mean "no fingerprint".
  if (record.fingerprint != null && typeof record.fingerprint !== 'string')
    return 'fingerprint is neither a string nor null';
  // The engine reads nothing else of an in-flight record.
  if (record.state === 'in_flight') return undefined;
  if (record.state !== 'completed') return `unknown state ${JSON.stringify((record as { state: unknown }).state)}`;
  if (!Number.isFinite(record.completedAt)) return 'completedAt is not a number';
  const response: unknown = record.response;
  if (response === null || typeof response !== 'object') return 'no response';
  const { status, headers, body } = response as Record<string, unknown>;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    return `status ${JSON.stringify(status)} is not 100–599`;
  }
  if (!(body instanceof Uint8Array)) return 'body is not bytes';
  if (headers === null || typeof headers !== 'object') return 'headers are not an object';
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name) || !isReplayableHeader(name.toLowerCase()))
      return `header ${JSON.stringify(name)} is not one idem replays`;
    if (Array.isArray(value) ? !value.every(validValue) : !validValue(value))
      return `header ${JSON.stringify(name)} has a value a response cannot carry`;
  }
  return undefined;
}
