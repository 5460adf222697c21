import type { Logger } from './config.js';
import type { IdempotencyError, ProblemBody } from './errors.js';
import type { OutgoingResponse } from './types.js';

/** Seconds a client is told to wait before retrying a 409 or 503 (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 1;

/** What a `formatProblem` function receives: the problem document, and `Retry-After` in seconds when idem sends one. */
export interface ProblemDetails extends ProblemBody {
  readonly retryAfter: number | undefined;
}

/**
 * What a `formatProblem` function returns: the body in the API's own error format, and headers
 * to add. An object or array body is sent as JSON (`application/json` unless `headers` name a
 * `content-type`); a string as `text/plain`, bytes as `application/octet-stream`. `status`
 * defaults to the problem's own (keep it: clients and retry policies read it).
 */
export interface FormattedProblem {
  status?: number;
  headers?: Record<string, string>;
  body: Record<string, unknown> | unknown[] | string | Uint8Array;
}

/** Turns one of idem's answers into the response the adapter writes. */
export type ProblemResponder = (error: IdempotencyError) => OutgoingResponse;

/** The RFC 9457 `application/problem+json` response for one of idem's own answers. */
export function problemResponse(error: IdempotencyError): OutgoingResponse {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  return { status: error.status, headers, body: Buffer.from(JSON.stringify(error.toProblem())), replayed: false };
}

function contentTypeOf(body: FormattedProblem['body']): string {
  if (typeof body === 'string') return 'text/plain; charset=utf-8';
  if (body instanceof Uint8Array) return 'application/octet-stream';
  return 'application/json';
}

/** The response for `formatted`, or a reason it cannot be sent. */
function fromFormatted(error: IdempotencyError, formatted: unknown): OutgoingResponse | string {
  if (typeof formatted !== 'object' || formatted === null) return 'it returned no object';
  const { status = error.status, headers = {}, body } = formatted as FormattedProblem;
  if (!Number.isInteger(status) || status < 200 || status > 599) return `status ${String(status)} is not 200–599`;
  if (typeof headers !== 'object' || headers === null) return 'headers is not an object';
  if (body === undefined || body === null) return 'it returned no body';
  const out: Record<string, string> = { 'content-type': contentTypeOf(body) };
  if (error.retryAfter !== undefined) out['retry-after'] = String(error.retryAfter);
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') return `header ${name} is not a string`;
    out[name.toLowerCase()] = value;
  }
  const bytes = body instanceof Uint8Array ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { status, headers: out, body: bytes, replayed: false };
}

/**
 * The responder for the `formatProblem` option: idem's problem+json when there is none. A format
 * function that throws or returns something unsendable is a bug in the application, but the
 * client still gets an answer: the default problem+json, with the bug logged.
 */
export function problemResponder(
  format: ((problem: ProblemDetails) => FormattedProblem) | undefined,
  logger: Logger,
): ProblemResponder {
  if (format === undefined) return problemResponse;
  return (error) => {
    let formatted: unknown;
    try {
      formatted = format({ ...error.toProblem(), retryAfter: error.retryAfter });
    } catch (cause) {
      logger.error({ err: cause, code: error.code }, 'idem: formatProblem threw; answering with problem+json');
      return problemResponse(error);
    }
    const response = fromFormatted(error, formatted);
    if (typeof response !== 'string') return response;
    logger.error(
      { code: error.code },
      `idem: formatProblem's answer cannot be sent (${response}); answering with problem+json`,
    );
    return problemResponse(error);
  };
}
