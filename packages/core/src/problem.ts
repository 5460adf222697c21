import type { IdempotencyError } from './errors.js';
import type { OutgoingResponse } from './types.js';

/** Seconds a client is told to wait before retrying a 409 or 503 (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 1;

/** The RFC 9457 `application/problem+json` response for one of idem's own answers. */
export function problemResponse(error: IdempotencyError): OutgoingResponse {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  return { status: error.status, headers, body: Buffer.from(JSON.stringify(error.toProblem())), replayed: false };
}
