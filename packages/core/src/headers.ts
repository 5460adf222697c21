import type { HeaderBag } from './types.js';

/** Response headers that describe the representation and are replayed as they were. */
const REPLAYED = new Set([
  'content-type',
  'content-encoding',
  'content-language',
  'content-location',
  'content-disposition',
  'location',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
  'vary',
  'link',
  'retry-after',
]);

/**
 * Custom `x-*` headers are replayed too, except those that describe the connection or the
 * moment rather than the result.
 */
const NEVER = new Set(['x-powered-by', 'x-response-time', 'x-request-id']);

/** A header name (an RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The header that marks a replay. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';

/**
 * Whether a response header is kept and replayed. Never set-cookie (a session is not a result),
 * date, content-length, transfer-encoding, connection or any other hop-by-hop header.
 */
export function isReplayableHeader(name: string): boolean {
  if (REPLAYED.has(name)) return true;
  return name.startsWith('x-') && !NEVER.has(name);
}

/** The replayable subset of captured response headers, values as strings. */
export function replayableHeaders(headers: HeaderBag): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  // for-in, not Object.entries: this runs on every first execution. Node's getHeaders() returns
  // a null-prototype object, so nothing inherited shows up; own-ness is checked for other bags.
  for (const rawName in headers) {
    if (!Object.prototype.hasOwnProperty.call(headers, rawName)) continue;
    const value = headers[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (!isReplayableHeader(name)) continue;
    out[name] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return out;
}

/**
 * The headers an adapter adds to a replay: `Idempotent-Replayed: true` and, on a CORS response,
 * its listing in `Access-Control-Expose-Headers`. `current` reads a header the response already
 * carries (undefined when it has none).
 */
export function replayMarks(current: (name: string) => unknown): [string, string][] {
  const marks: [string, string][] = [[REPLAYED_HEADER, 'true']];
  const expose = exposeReplayedHeader(current('access-control-allow-origin'), current('access-control-expose-headers'));
  if (expose !== undefined) marks.push(['access-control-expose-headers', expose]);
  return marks;
}

/**
 * Adds `Idempotent-Replayed` to `Access-Control-Expose-Headers` when the response is a CORS
 * response, so browser clients can read it. Returns the new value, or undefined when unchanged.
 */
export function exposeReplayedHeader(allowOrigin: unknown, exposeHeaders: unknown): string | undefined {
  if (allowOrigin === undefined || allowOrigin === null) return undefined;
  const current = exposeHeaders === undefined || exposeHeaders === null ? '' : String(exposeHeaders);
  if (current.trim() === '*') return undefined;
  const listed = current.split(',').map((h) => h.trim().toLowerCase());
  if (listed.includes(REPLAYED_HEADER.toLowerCase())) return undefined;
  return current.trim() === '' ? REPLAYED_HEADER : `${current}, ${REPLAYED_HEADER}`;
}
