/**
 * Records are checked when they are read: a store is a trust boundary. A shared Redis or a
 * database may hold a record that is corrupt, tampered with, or written by an older format, and
 * replaying it must never take the process down (Node throws on a status of 1000 or a header
 * value with a newline) nor send a client what idem would never have stored (a `Set-Cookie`).
 */
import { isReplayableHeader } from './headers.js';
import type { IdempotencyRecord } from './types.js';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// What Node accepts in a header value (http's checkInvalidHeaderChar): no CR, LF or NUL.
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
  if (record.fingerprint !== null && typeof record.fingerprint !== 'string') return 'fingerprint is neither a string nor null';
  if (record.state === 'in_flight') return Number.isFinite(record.startedAt) ? undefined : 'startedAt is not a number';
  if (record.state !== 'completed') return `unknown state ${JSON.stringify((record as { state: unknown }).state)}`;
  if (!Number.isFinite(record.completedAt)) return 'completedAt is not a number';
  const response = record.response as Partial<IdempotencyRecord & { state: 'completed' }>['response'];
  if (response === null || typeof response !== 'object') return 'no response';
  const { status, headers, body } = response;
  if (!Number.isInteger(status) || status < 100 || status > 599) return `status ${JSON.stringify(status)} is not 100–599`;
  if (!(body instanceof Uint8Array)) return 'body is not bytes';
  if (headers === null || typeof headers !== 'object') return 'headers are not an object';
  for (const name of Object.keys(headers)) {
    if (!TOKEN.test(name) || !isReplayableHeader(name.toLowerCase())) return `header ${JSON.stringify(name)} is not one idem replays`;
    const value: unknown = headers[name];
    if (Array.isArray(value) ? !value.every(validValue) : !validValue(value)) return `header ${JSON.stringify(name)} has a value a response cannot carry`;
  }
  return undefined;
}
