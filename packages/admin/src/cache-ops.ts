/**
 * The cache endpoints' inputs: JSON bodies checked here, so that a bad one is a 400 that names
 * the field, before `authorize` is asked and before the cache is touched. The values themselves
 * (durations, namespaces) are the cache's to judge: its `CacheConfigError` is a 400 too.
 */
import type { WarmEntry } from '@idem/cache';
import { invalid } from './errors.js';

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** The body as an object with only `known` fields (an empty body is `{}`). */
export function fieldsOf(body: unknown, known: readonly string[]): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isObject(body)) throw invalid(`The request body must be a JSON object with ${known.join(', ')}.`);
  for (const name of Object.keys(body)) {
    if (!known.includes(name))
      throw invalid(`Unknown field ${JSON.stringify(name)} in the request body (known: ${known.join(', ')}).`);
  }
  return body;
}

/** `{ "namespace"?: string }`. */
export function clearInput(body: unknown): string | undefined {
  const { namespace } = fieldsOf(body, ['namespace']);
  if (namespace === undefined) return undefined;
  if (typeof namespace !== 'string' || namespace === '') throw invalid('namespace must be a non-empty string.');
  return namespace;
}

/** `{ "tags": string[] }` or `{ "tag": string }`. */
export function tagsInput(body: unknown): string[] {
  const { tags, tag } = fieldsOf(body, ['tags', 'tag']);
  if ((tags === undefined) === (tag === undefined)) throw invalid('Give tags (an array of strings) or tag (a string).');
  const list = tags ?? [tag];
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && t !== ''))
    throw invalid('tags must be a non-empty array of non-empty strings.');
  return list as string[];
}

const ENTRY_FIELDS = ['key', 'value', 'ttl', 'grace', 'tags'];

/** `{ "entries": [{ key, value, ttl?, grace?, tags? }] }`. */
export function warmInput(body: unknown): WarmEntry[] {
  const { entries } = fieldsOf(body, ['entries']);
  if (!Array.isArray(entries) || entries.length === 0)
    throw invalid('entries must be a non-empty array of { key, value, ttl?, grace?, tags? }.');
  return entries.map((entry: unknown, i) => {
    const at = `entries[${i}]`;
    if (!isObject(entry)) throw invalid(`${at} must be an object { key, value, ttl?, grace?, tags? }.`);
    const unknown = Object.keys(entry).find((name) => !ENTRY_FIELDS.includes(name));
    if (unknown !== undefined) throw invalid(`${at} has an unknown field ${JSON.stringify(unknown)}.`);
    if (typeof entry.key !== 'string' || entry.key === '') throw invalid(`${at}.key must be a non-empty string.`);
    if (!('value' in entry)) throw invalid(`${at}.value is missing.`);
    for (const name of ['ttl', 'grace'] as const) {
      const value = entry[name];
      if (value !== undefined && typeof value !== 'number' && typeof value !== 'string')
        throw invalid(`${at}.${name} must be milliseconds or a duration such as '5m'.`);
    }
    if (entry.tags !== undefined && !(Array.isArray(entry.tags) && entry.tags.every((t) => typeof t === 'string')))
      throw invalid(`${at}.tags must be an array of strings.`);
    return entry as unknown as WarmEntry;
  });
}
