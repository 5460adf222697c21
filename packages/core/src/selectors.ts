/**
 * Selectors: the `key`, `scope` and `fingerprint` options name request data either as dot paths
 * into `{ body, query, params, headers }` or as a function of the framework's request. This file
 * validates them (once, at creation), compiles them into functions of the neutral request, and
 * reads the paths.
 */
import { IdempotencyConfigError } from './errors.js';
import type { NeutralRequest } from './types.js';

/** Compiled form of a selector: a function of the neutral request. */
export type CompiledSelector = (req: NeutralRequest) => unknown;

/** A validated selector and whether it reads the parsed body (then an unparsed body is an error). */
export interface ValidSelector {
  compiled: CompiledSelector;
  readsBody: boolean;
}

const ROOTS = new Set(['body', 'query', 'params', 'headers']);

/** Validates and compiles the selector option `option`; throws {@link IdempotencyConfigError} naming it. */
export function selector(option: string, value: unknown): ValidSelector {
  if (typeof value === 'function')
    return { compiled: compileSelector(value as (req: never) => unknown), readsBody: false };
  if (!Array.isArray(value) || value.length === 0) {
    throw new IdempotencyConfigError(
      option,
      'expected a non-empty array of dot paths (e.g. "body.order_id") or a function (req) => unknown',
    );
  }
  for (const path of value) {
    if (typeof path !== 'string' || !ROOTS.has(splitPath(path)[0] as string)) {
      throw new IdempotencyConfigError(
        option,
        `path ${JSON.stringify(path)} must start with body., query., params. or headers.`,
      );
    }
  }
  return {
    compiled: compileSelector(value as string[]),
    readsBody: value.some((p: string) => p === 'body' || p.startsWith('body.')),
  };
}

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

/** The view that dot paths select from. */
export function selectionRoot(req: NeutralRequest): Record<string, unknown> {
  return { body: req.body, query: req.query, params: req.params, headers: req.headers };
}

/** Reads a dot path (`'body.metadata.meeting_id'`) from an object; undefined when any step is missing. */
export function readPath(root: unknown, path: readonly string[]): unknown {
  let node: unknown = root;
  for (const step of path) {
    if (node === null || typeof node !== 'object') return undefined;
    // Own properties only: a path must never reach Object.prototype (`body.__proto__.x`).
    if (!Object.prototype.hasOwnProperty.call(node, step)) return undefined;
    node = (node as Record<string, unknown>)[step];
  }
  return node;
}
