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

/**
 * Every value a client sent for a header, cheaply: Node keeps a header sent once as is, and joins
 * a repeated one with ', ' (`distinct` is then Node's per-value view). Building that view costs a
 * second map of every header, so it is read only when the joined value could hide several.
 */
export function headerValues(headers: HeaderBag, name: string, distinct: () => Record<string, string[] | undefined>): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  if (typeof value === 'string' && !value.includes(',')) return [value];
  return distinct()[name] ?? [];
}
