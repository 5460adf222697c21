/**
 * The request body of `POST /extract` and `POST /analyze`: validation with one clear message per
 * field, and the normalisation the idempotency key is derived from.
 */
import { ProblemError, type FieldError } from './problem.js';

/** A validated, normalised request. */
export interface MeetingPayload {
  /** The transcript, trimmed. */
  transcript: string;
  metadata: {
    /** Trimmed. */
    meeting_id: string;
    /** Trimmed. */
    customer_id: string;
    /** ISO calendar date, `YYYY-MM-DD`. */
    meet_date: string;
  };
}

/** Longest transcript accepted, in characters (about two hours of speech). */
export const MAX_TRANSCRIPT_CHARS = 200_000;
const MAX_ID_CHARS = 128;

// ISO 8601 calendar date, optionally with a time and an offset: 2024-05-01, 2024-05-01T09:30:00Z,
// 2024-05-01T09:30:00.000+02:00.
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The calendar date of `value` as written (the meeting's own day, not converted to UTC), or
 * undefined when it is not an ISO 8601 date or date-time or names a day that does not exist.
 */
export function normaliseDate(value: string): string | undefined {
  const match = ISO_DATE.exec(value.trim());
  if (match === null) return undefined;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(y, m - 1, d));
  // Date.UTC rolls 2024-02-30 over to March; a day that does not exist is an error, not a guess.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return undefined;
  if (match[4] !== undefined && (Number(match[4]) > 23 || Number(match[5]) > 59 || Number(match[6] ?? 0) > 59))
    return undefined;
  return date.toISOString().slice(0, 10);
}

function identifier(value: unknown, pointer: string, errors: FieldError[]): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value !== 'string') {
    errors.push({ pointer, detail: value === undefined ? 'is required' : `must be a string, got ${typeName(value)}` });
    return '';
  }
  const trimmed = value.trim();
  if (trimmed === '') errors.push({ pointer, detail: 'must not be empty' });
  else if (trimmed.length > MAX_ID_CHARS)
    errors.push({ pointer, detail: `must be at most ${MAX_ID_CHARS} characters` });
  return trimmed;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates and normalises a request body. Throws a 400 {@link ProblemError} whose `errors`
 * extension lists every invalid field with a JSON pointer.
 */
export function parseMeetingPayload(body: unknown): MeetingPayload {
  const errors: FieldError[] = [];
  if (!isObject(body)) {
    throw invalid([{ pointer: '', detail: `must be a JSON object, got ${typeName(body)}` }]);
  }

  let transcript = '';
  if (typeof body.transcript !== 'string') {
    errors.push({
      pointer: '/transcript',
      detail: body.transcript === undefined ? 'is required' : `must be a string, got ${typeName(body.transcript)}`,
    });
  } else {
    transcript = body.transcript.trim();
    if (transcript === '') errors.push({ pointer: '/transcript', detail: 'must not be empty' });
    else if (transcript.length > MAX_TRANSCRIPT_CHARS)
      errors.push({ pointer: '/transcript', detail: `must be at most ${MAX_TRANSCRIPT_CHARS} characters` });
  }

  const metadata = body.metadata;
  let meeting_id = '';
  let customer_id = '';
  let meet_date = '';
  if (!isObject(metadata)) {
    errors.push({
      pointer: '/metadata',
      detail:
        metadata === undefined
          ? 'is required: { meeting_id, customer_id, meet_date }'
          : `must be an object, got ${typeName(metadata)}`,
    });
  } else {
    meeting_id = identifier(metadata.meeting_id, '/metadata/meeting_id', errors);
    customer_id = identifier(metadata.customer_id, '/metadata/customer_id', errors);
    const rawDate = metadata.meet_date;
    if (typeof rawDate !== 'string') {
      errors.push({
        pointer: '/metadata/meet_date',
        detail: rawDate === undefined ? 'is required' : `must be a string, got ${typeName(rawDate)}`,
      });
    } else {
      const date = normaliseDate(rawDate);
      if (date === undefined)
        errors.push({
          pointer: '/metadata/meet_date',
          detail: `must be an ISO 8601 date such as 2024-05-01 or 2024-05-01T09:30:00Z, got ${JSON.stringify(rawDate)}`,
        });
      else meet_date = date;
    }
  }

  if (errors.length > 0) throw invalid(errors);
  return { transcript, metadata: { meeting_id, customer_id, meet_date } };
}

function invalid(errors: FieldError[]): ProblemError {
  const fields = errors.map((e) => `${e.pointer === '' ? 'the body' : e.pointer} ${e.detail}`).join('; ');
  const detail = `${errors.length === 1 ? 'One field is' : `${errors.length} fields are`} invalid: ${fields}.`;
  return new ProblemError(400, 'invalid_request', 'Invalid request body', detail, { extensions: { errors } });
}

/**
 * What the idempotency key is derived from: the normalised meeting, customer and day. Two
 * requests that differ only in whitespace or in how the date is written share it.
 */
export function keyParts(payload: MeetingPayload): [meetingId: string, meetDate: string, customerId: string] {
  const { meeting_id, meet_date, customer_id } = payload.metadata;
  return [meeting_id, meet_date, customer_id];
}
