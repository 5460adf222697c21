/**
 * A record as a Redis hash and back (layout in scripts.ts). The body stays raw bytes in its own
 * field, so a replay is byte-exact and costs no encoding; status and headers are a small JSON.
 */
import type { IdempotencyRecord, StoredResponse } from '@idem/core';

/** The hash of a record as `hgetallBuffer` or a script's HGETALL returns it. */
export type RecordFields = Record<string, Buffer>;

/** Pairs `[field, value, field, value, …]` (a script's HGETALL) as an object. */
export function fieldsFromPairs(pairs: readonly Buffer[]): RecordFields {
  const fields: RecordFields = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) fields[(pairs[i] as Buffer).toString()] = pairs[i + 1] as Buffer;
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
