import type { HeaderBag } from './types.js';

/** Whether a request carries a body (RFC 9112 §6.3: Transfer-Encoding or a non-zero Content-Length). */
export function hasRequestBody(headers: HeaderBag): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0' && length !== 0);
}

/** Splits a request target into its path and raw query string (without `?`). */
export function splitUrl(url: string): { path: string; search: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, search: '' } : { path: url.slice(0, q), search: url.slice(q + 1) };
}

/** Node's per-value view of the request headers (`IncomingMessage.headersDistinct`), or a function returning it. */
export type DistinctHeaders =
  { readonly headersDistinct: Record<string, string[] | undefined> } | (() => Record<string, string[] | undefined>);

/**
 * Every value a client sent for a header, cheaply: Node keeps a header sent once as is, and joins
 * a repeated one with ', ' (`distinct` is then Node's per-value view: pass the IncomingMessage).
 * Building that view costs a second map of every header, so it is read only when the joined value
 * could hide several.
 */
export function headerValues(headers: HeaderBag, name: string, distinct: DistinctHeaders): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  if (typeof value === 'string' && !value.includes(',')) return [value];
  return (typeof distinct === 'function' ? distinct() : distinct.headersDistinct)[name] ?? [];
}
