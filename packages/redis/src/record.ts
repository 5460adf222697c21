/**
 * A record as a Redis hash and back (layout in scripts.ts). The body stays raw bytes in its own
 * field, so a replay is byte-exact and costs no encoding; status and headers are a small JSON.
 */
import type { IdempotencyRecord, StoredResponse } from '@idem/core';

/** The fields of a record hash a reader needs. */
export type RecordFields = Partial<Record<(typeof RECORD_FIELDS)[number], Buffer>>;

/**
 * The fields read, in the order HMGET (`get`) and the scripts (`HMGET record s fp at meta body`)
 * return them. Reading them by position spares decoding field names on the replay path.
 */
export const RECORD_FIELDS = ['s', 'fp', 'at', 'meta', 'body'] as const;

/** HMGET's answer (null for a missing field) as fields. */
export function fieldsFromValues(values: readonly (Buffer | null)[]): RecordFields {
  const fields: RecordFields = {};
  RECORD_FIELDS.forEach((name, i) => {
    const value = values[i];
    if (value !== null && value !== undefined) fields[name] = value;
  });
  return fields;
}

/** The record a hash holds, or undefined for an empty (absent) hash. */
export function decodeRecord(fields: RecordFields): IdempotencyRecord | undefined {
  const state = fields.s?.toString();
  if (state === undefined) return undefined;
  const fingerprint = fields.fp === undefined ? null : fields.fp.toString();
  const at = Number(fields.at?.toString());
  if (state === 'f') return { state: 'in_flight', fingerprint, startedAt: at };
  if (state !== 'c') throw new Error(`idem: unreadable record state ${JSON.stringify(state)}`);
  const meta = JSON.parse(fields.meta?.toString() ?? '{}') as Pick<StoredResponse, 'status' | 'headers'>;
  const body = fields.body ?? Buffer.alloc(0);
  return { state: 'completed', fingerprint, completedAt: at, response: { status: meta.status, headers: meta.headers, body } };
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
