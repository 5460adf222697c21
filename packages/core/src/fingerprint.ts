import stableStringify from 'fast-json-stable-stringify';
import { sha256 } from './key.js';
import type { NeutralRequest } from './types.js';

/**
 * The default fingerprint: method, path, query string and the canonical (key-order independent)
 * body. Two requests that differ only in JSON key order have the same fingerprint.
 */
export function defaultFingerprint(req: NeutralRequest): string {
  return sha256(stableStringify([req.method, req.path, req.search, req.body ?? null]));
}

/** Fingerprint from a selection: the hash of its stable JSON. */
export function fingerprintOf(selected: unknown): string {
  return sha256(stableStringify(selected ?? null));
}
