/**
 * A record as one Redis string, and back (docs/design.md, "Costs"; the scripts in scripts.ts).
 * One string means one command sets value and expiry together (`SET … PX`), and a replay is one
 * plain `GET`. The layout, every length a decimal byte count followed by ':':
 *
 *   byte 0   state: 'f' (in flight) | 'c' (completed)
 *   byte 1   waiter flag: '-' | 'w' once a duplicate waits for this in-flight record (PEEK sets it
 *            in place with SETRANGE, which keeps the expiry), so that its end is published
 *   then     <len>:<token>      the lease token (in flight; '0:' when completed). Right after the
 *                               two fixed bytes, so a script fences by comparing one prefix
 *            <epoch ms>:        startedAt | completedAt, from the app's clock (see below)
 *            '-' | <len>:<fp>   the fingerprint, '-' for none (any string, as UTF-8)
 *   completed only:
 *            <len>:<meta>       JSON { status, headers }
 *            the body           the exact response bytes, to the end of the value: a replay
 *                               hands back a view of what GET returned, nothing re-encoded
 *
 * The times are the app's clock (`Date.now()` of the instance that claimed or completed), as in
 * the memory store: the claim is a plain `SET … NX PX … GET`, which cannot ask Redis for the time.
 *
 * Records written by the previous version are hashes under the same key (fields s, t, at, fp,
 * meta, body, w). They are still read (`decodeHashRecord`), so a rolling deploy neither loses a
 * completed record nor runs a handler whose old-format lease is in flight (packages/redis/README.md).
 */
import type { IdempotencyRecord, StoredResponse } from '@idem/core';

const COLON = 0x3a;
const DASH = 0x2d;
const STATE_IN_FLIGHT = 0x66; // 'f'
const STATE_COMPLETED = 0x63; // 'c'
const WAITED = 0x77; // 'w'

/** What a script compares to fence a write: the token as the record spells it (`<len>:<token>`). */
export function tokenField(token: string): string {
  return `${Buffer.byteLength(token)}:${token}`;
}

function fingerprintField(fingerprint: string | null): string {
  return fingerprint === null ? '-' : `${Buffer.byteLength(fingerprint)}:${fingerprint}`;
}

/** The in-flight record of a lease: what a claim writes (`SET … NX PX … GET`). */
export function encodeInFlight(token: string, fingerprint: string | null, startedAt: number): string {
  return `f-${tokenField(token)}${startedAt}:${fingerprintField(fingerprint)}`;
}

/** The completed record: header, then the body's bytes as they are (one copy, into the value). */
export function encodeCompleted(response: StoredResponse, fingerprint: string | null, completedAt: number): Buffer {
  const meta = JSON.stringify({ status: response.status, headers: response.headers });
  const header = `c-0:${completedAt}:${fingerprintField(fingerprint)}${Buffer.byteLength(meta)}:${meta}`;
  const body = bodyBytes(response);
  const headerBytes = Buffer.byteLength(header);
  const value = Buffer.allocUnsafe(headerBytes + body.byteLength);
  value.write(header, 0, 'utf8');
  body.copy(value, headerBytes);
  return value;
}

/** A reader over a value: decimal numbers and length-prefixed fields, failing on anything else. */
class Cursor {
  position = 2;
  constructor(private readonly value: Buffer) {}

  fail(what: string): never {
    throw new Error(`idem: unreadable record (${what} at byte ${this.position})`);
  }

  /** Digits up to ':' (consumed). */
  number(what: string): number {
    const { value } = this;
    let n = 0;
    let digits = 0;
    for (;;) {
      const byte = value[this.position];
      if (byte === undefined) this.fail(what);
      this.position++;
      if (byte === COLON) break;
      if (byte < 0x30 || byte > 0x39 || digits > 15) this.fail(what);
      n = n * 10 + (byte - 0x30);
      digits++;
    }
    if (digits === 0) this.fail(what);
    return n;
  }

  /** `<len>:<bytes>` as a string. */
  field(what: string): string {
    const length = this.number(what);
    const end = this.position + length;
    if (end > this.value.length) this.fail(what);
    const text = this.value.toString('utf8', this.position, end);
    this.position = end;
    return text;
  }

  fingerprint(): string | null {
    if (this.value[this.position] === DASH) {
      this.position++;
      return null;
    }
    return this.field('fingerprint');
  }
}

/** The record of a string value (GET's answer); undefined for none. Never exposes the token. */
export function decodeRecord(value: Buffer | null | undefined): IdempotencyRecord | undefined {
  if (value === null || value === undefined) return undefined;
  const state = value[0];
  if (state !== STATE_IN_FLIGHT && state !== STATE_COMPLETED) {
    const shown = value.toString('latin1', 0, 1);
    throw new Error(`idem: unreadable record state ${JSON.stringify(shown)}`);
  }
  const flag = value[1];
  if (flag !== DASH && flag !== WAITED) throw new Error('idem: unreadable record (waiter flag at byte 1)');
  const cursor = new Cursor(value);
  cursor.field('token');
  const time = cursor.number('time');
  const fingerprint = cursor.fingerprint();
  if (state === STATE_IN_FLIGHT) return { state: 'in_flight', fingerprint, startedAt: time };
  const { status, headers } = JSON.parse(cursor.field('meta')) as Pick<StoredResponse, 'status' | 'headers'>;
  return {
    state: 'completed',
    fingerprint,
    completedAt: time,
    response: { status, headers, body: value.subarray(cursor.position) },
  };
}

/**
 * The fields of a hash record of the previous version, in the order the scripts read them
 * (`HMGET record s fp at meta body`).
 */
export const HASH_FIELDS = ['s', 'fp', 'at', 'meta', 'body'] as const;

/** The record of a previous version's hash (HMGET's answer, `HASH_FIELDS` by position); undefined for none. */
export function decodeHashRecord(values: readonly (Buffer | null | undefined)[]): IdempotencyRecord | undefined {
  const [state, fp, at, meta, body] = values;
  if (state === null || state === undefined) return undefined;
  const fingerprint = fp === null || fp === undefined ? null : fp.toString('latin1');
  const time = Number(at?.toString('latin1'));
  const s = state.toString('latin1');
  if (s === 'f') return { state: 'in_flight', fingerprint, startedAt: time };
  if (s !== 'c') throw new Error(`idem: unreadable record state ${JSON.stringify(s)}`);
  const { status, headers } = JSON.parse(meta?.toString() ?? '{}') as Pick<StoredResponse, 'status' | 'headers'>;
  return {
    state: 'completed',
    fingerprint,
    completedAt: time,
    response: { status, headers, body: body ?? Buffer.alloc(0) },
  };
}

/** A standing record as a script or a read hands it back: a string value, or a previous version's hash fields. */
export function decodeStanding(reply: Buffer | readonly (Buffer | null)[] | null): IdempotencyRecord | undefined {
  if (reply === null || Buffer.isBuffer(reply)) return decodeRecord(reply);
  return decodeHashRecord(reply as readonly (Buffer | null)[]);
}

/** The body as a Buffer without copying. */
export function bodyBytes(response: StoredResponse): Buffer {
  const { body } = response;
  if (Buffer.isBuffer(body)) return body;
  if (!(body instanceof Uint8Array)) throw new TypeError('idem: a stored response body must be bytes (a Uint8Array)');
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
