/**
 * A record as a Redis hash and back (layout in scripts.ts). The body stays raw bytes in its own
 * field, so a replay is byte-exact and costs no encoding; status and headers are a small JSON.
 */
import type { IdempotencyRecord, StoredResponse } from '@idem/core';

/**
 * The fields read, in the order HMGET (`get`) and the scripts (`HMGET record s fp at meta body`)
 * return them. Reading them by position spares decoding field names on the replay path.
 */
export const RECORD_FIELDS = ['s', 'fp', 'at', 'meta', 'body'] as const;

/** The record of HMGET's answer (`RECORD_FIELDS` by position, null when missing); undefined for none. */
export function decodeRecord(values: readonly (Buffer | null | undefined)[]): IdempotencyRecord | undefined {
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

/** The JSON of a response's status and headers (the body travels apart, as bytes). */
export function encodeMeta(response: StoredResponse): string {
  return JSON.stringify({ status: response.status, headers: response.headers });
}

/** The body as a Buffer without copying. */
export function bodyBytes(response: StoredResponse): Buffer {
  const { body } = response;
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
