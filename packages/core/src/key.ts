import { hash } from 'node:crypto';
import stableStringify from 'fast-json-stable-stringify';
import { IdempotencyError } from './errors.js';

/** Longest key accepted, in characters (IETF draft: keys are short; Stripe allows 255). */
export const MAX_KEY_LENGTH = 255;

/**
 * Parses an `Idempotency-Key` header. Accepts the IETF structured-field string form (`"abc"`,
 * with `\"` and `\\` escapes) and, for clients that skip the quotes, a bare token.
 * Returns undefined when the header is absent; throws `key_invalid` for anything else malformed.
 */
export function parseKeyHeader(values: readonly string[], headerName: string): string | undefined {
  if (values.length === 0) return undefined;
  if (values.length > 1) {
    throw new IdempotencyError(
      'key_invalid',
      `The ${headerName} header must be sent once; it was sent ${values.length} times.`,
    );
  }
  const raw = (values[0] as string).trim();
  if (raw === '') throw new IdempotencyError('key_invalid', `The ${headerName} header is empty.`);
  const key = raw.startsWith('"') ? parseSfString(raw, headerName) : parseBareToken(raw, headerName);
  if (key.length < 1 || key.length > MAX_KEY_LENGTH) {
    throw new IdempotencyError(
      'key_invalid',
      `The ${headerName} value must be 1 to ${MAX_KEY_LENGTH} characters long.`,
    );
  }
  return key;
}

// RFC 8941 §3.3.3: a string is DQUOTE *(unescaped / "\" DQUOTE / "\" "\") DQUOTE, where
// unescaped is printable ASCII (%x20-21 / %x23-5B / %x5D-7E).
function parseSfString(raw: string, headerName: string): string {
  let out = '';
  for (let i = 1; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === 0x5c /* \ */) {
      const next = raw[i + 1];
      if (next !== '"' && next !== '\\') throw invalid(headerName, 'has a bad escape sequence');
      out += next;
      i++;
    } else if (ch === 0x22 /* " */) {
      if (i !== raw.length - 1) throw invalid(headerName, 'holds more than one value');
      return out;
    } else if (ch < 0x20 || ch > 0x7e) {
      throw invalid(headerName, 'contains a non-printable or non-ASCII character');
    } else {
      out += raw[i];
    }
  }
  throw invalid(headerName, 'has an unterminated quoted string');
}

function parseBareToken(raw: string, headerName: string): string {
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch < 0x20 || ch > 0x7e) throw invalid(headerName, 'contains a non-printable or non-ASCII character');
    // A comma separates list members: "a, b" is two keys, which the draft forbids.
    if (ch === 0x2c /* , */) throw invalid(headerName, 'holds more than one value');
    if (ch === 0x22 /* " */) throw invalid(headerName, 'has a stray quote');
  }
  return raw;
}

function invalid(headerName: string, what: string): IdempotencyError {
  return new IdempotencyError('key_invalid', `The ${headerName} header ${what}.`);
}

/** Hex SHA-256 of a string. */
export function sha256(input: string): string {
  return hash('sha256', input, 'hex');
}

/** The stored key: SHA-256 of the stable JSON of `{ scope, key }`, so tenants never share records. */
export function storageKey(scope: unknown, key: unknown): string {
  // The common case, a string scope and a string key, spelled out: the same bytes
  // stable-stringify writes for { key, scope } (keys sorted), without its generic walk.
  if (typeof scope === 'string' && typeof key === 'string')
    return sha256(`{"key":${JSON.stringify(key)},"scope":${JSON.stringify(scope)}}`);
  return sha256(stableStringify({ scope: scope ?? null, key }));
}
