import stableStringify from 'fast-json-stable-stringify';
import { readPath, selectionRoot, sha256 } from './key.js';
import type { NeutralRequest } from './types.js';

/** Compiled form of a `key`/`fingerprint` selector: a function of the neutral request. */
export type CompiledSelector = (req: NeutralRequest) => unknown;

/** Compiles dot paths or a user function once, at creation. */
export function compileSelector(selector: readonly string[] | ((req: never) => unknown)): CompiledSelector {
  if (typeof selector === 'function') {
    const fn = selector as (req: unknown) => unknown;
    return (req) => fn(req.native);
  }
  const paths = selector.map(splitPath);
  return (req) => {
    const root = selectionRoot(req);
    return paths.map((path) => readPath(root, path));
  };
}

/** Splits `'headers.X-Tenant'` into steps; header names are matched lower-case as Node stores them. */
export function splitPath(path: string): string[] {
  const steps = path.split('.');
  if (steps[0] === 'headers' && steps.length > 1) steps[1] = (steps[1] as string).toLowerCase();
  return steps;
}

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
