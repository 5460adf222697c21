/**
 * A record's address from the query string: the client's key and its scope, turned into the
 * stored key exactly as `idempotent()` does (`storageKey(scope, key)` of core). Both are needed:
 * there is no lookup by stored key alone, so a caller can only reach the records of the scopes
 * `authorize` lets it name.
 *
 * How a scope maps (README, "Keys and scopes"):
 * - the default scope of `idempotent()` is `'<METHOD> <route>'`: pass `method` and `route` (the
 *   route pattern where idempotent() is route middleware, else the request path), or the same
 *   string as `scope`;
 * - a `scope` function that returns a string: that string as `scope`;
 * - one that returns anything else (a number, an object, an array): its JSON as `scopeJson`.
 * Keys alike: the header's value as `key`; a derived key (`key: ['body.id']` selects `[value]`,
 * a function returns anything) as `keyJson`.
 */
import { storageKey } from '@idem/core';
import { invalid } from './errors.js';
import type { RecordAddress } from './types.js';

/** Longest query value read, in characters: an address is short; anything longer is a mistake. */
const MAX_VALUE = 8_192;

/** The query's parameters, each at most once; unknown names are refused (a typo must not pass). */
export function queryOf(search: string, known: readonly string[]): Map<string, string> {
  const params = new URLSearchParams(search);
  const out = new Map<string, string>();
  for (const [name, value] of params) {
    if (!known.includes(name))
      throw invalid(`Unknown query parameter ${JSON.stringify(name)} (known: ${known.join(', ')}).`);
    if (out.has(name)) throw invalid(`The query parameter ${JSON.stringify(name)} is given more than once.`);
    if (value.length > MAX_VALUE) throw invalid(`The query parameter ${JSON.stringify(name)} is too long.`);
    out.set(name, value);
  }
  return out;
}

/** The query parameters of an address. */
export const ADDRESS_PARAMS = ['key', 'keyJson', 'scope', 'scopeJson', 'method', 'route'] as const;

function json(name: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid(`The query parameter ${name} is not valid JSON.`);
  }
}

function keyOf(query: Map<string, string>): unknown {
  const key = query.get('key');
  const keyJson = query.get('keyJson');
  if (key !== undefined && keyJson !== undefined) throw invalid('Give either key or keyJson, not both.');
  if (key !== undefined) {
    if (key === '') throw invalid('The query parameter key is empty.');
    return key;
  }
  if (keyJson !== undefined) {
    const value = json('keyJson', keyJson);
    if (value === null) throw invalid('keyJson is null: a request whose key is null has no key, so no record.');
    return value;
  }
  throw invalid('A record is addressed by its key: give key (the Idempotency-Key value) or keyJson (a derived key).');
}

function scopeOf(query: Map<string, string>): unknown {
  const scope = query.get('scope');
  const scopeJson = query.get('scopeJson');
  const method = query.get('method');
  const route = query.get('route');
  const forms = [scope !== undefined, scopeJson !== undefined, method !== undefined || route !== undefined];
  if (forms.filter(Boolean).length > 1)
    throw invalid('Give the scope one way: scope, scopeJson, or method and route (the default scope).');
  if (scope !== undefined) return scope;
  if (scopeJson !== undefined) return json('scopeJson', scopeJson);
  if (method === undefined || route === undefined) {
    throw invalid(
      "A record is addressed by its key and its scope: give scope (e.g. 'POST /orders', the default scope), scopeJson, or method and route.",
    );
  }
  if (!/^[A-Za-z]+$/.test(method)) throw invalid('The query parameter method is not an HTTP method.');
  if (!route.startsWith('/')) throw invalid("The query parameter route must start with '/'.");
  // The default scope of idempotent(), spelled as the engine spells it.
  return `${method.toUpperCase()} ${route}`;
}

/** The address a query names; throws a 400 that says what is missing or wrong. */
export function addressOf(query: Map<string, string>): RecordAddress {
  const key = keyOf(query);
  const scope = scopeOf(query);
  return { scope, key, storageKey: storageKey(scope, key) };
}

/** A yes/no query flag: absent, `1`/`true` or `0`/`false`. */
export function flag(query: Map<string, string>, name: string): boolean {
  const value = query.get(name);
  if (value === undefined || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw invalid(`The query parameter ${name} must be 1 or 0.`);
}
