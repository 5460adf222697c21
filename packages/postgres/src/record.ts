/** Rows of the records' table as engine records, and responses as statement parameters. */
import type { IdempotencyRecord, StoredResponse } from '@idem/core';

/** The columns a read returns (see `columns` in sql.ts). */
export interface RecordRow {
  state: string | null;
  fingerprint: string | null;
  started_ms: number | null;
  status: number | null;
  headers: Record<string, string | string[]> | null;
  body: Buffer | null;
  completed_ms: number | null;
}

/** The record of a row, or undefined for none. The engine checks what it holds before replaying it. */
export function decodeRecord(row: RecordRow | undefined): IdempotencyRecord | undefined {
  if (row === undefined || row.state === null) return undefined;
  const { fingerprint } = row;
  if (row.state === 'in_flight') return { state: 'in_flight', fingerprint, startedAt: Number(row.started_ms) };
  return {
    state: row.state as 'completed',
    fingerprint,
    completedAt: Number(row.completed_ms),
    response: { status: Number(row.status), headers: row.headers ?? {}, body: row.body ?? Buffer.alloc(0) },
  };
}

/** The body as a Buffer without copying (pg sends Buffers as bytea). */
export function bodyBytes(response: StoredResponse): Buffer {
  const { body } = response;
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
