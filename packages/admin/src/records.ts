/**
 * Looking a record up and deleting it. A view describes the record (state, status, age, expiry,
 * fingerprint, size); the stored response itself only when asked, as JSON (text or base64),
 * never as a response of its own: nothing here can replay a record.
 */
import type { IdempotencyRecord, IdempotencyStore, InspectedRecord } from '@idem/core';
import { recordProblem } from '@idem/core/adapter';
import type { RecordAddress } from './types.js';

/** The stored response as the view shows it (`?body=1`). */
export interface ResponseView {
  headers: Record<string, unknown>;
  /** The body as text when it is text (UTF-8), else base64. */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
}

/** What `GET /records` answers. Times are ISO 8601; ages and expiries in milliseconds. */
export interface RecordView {
  scope: unknown;
  key: unknown;
  storageKey: string;
  store: string;
  state: 'in_flight' | 'completed';
  /** False when the engine would refuse to replay the record (`record_invalid`); `invalidReason` says why. */
  valid: boolean;
  invalidReason?: string;
  /** The stored status; null while in flight. */
  status: number | null;
  fingerprint: string | null;
  startedAt?: string;
  completedAt?: string;
  /** Since the handler started (in flight) or since the response was stored (completed). */
  ageMs: number | null;
  /** When the store drops it: the ttl's end, or the lease's; null when unknown or without end. */
  expiresAt: string | null;
  expiresInMs: number | null;
  /** Bytes kept for a completed record; null while in flight. */
  size: { bodyBytes: number; headerBytes: number } | null;
  /** Only with `?body=1`, for a completed record. */
  response?: ResponseView | null;
}

const TEXT_TYPE = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)\b)|\+(json|xml)\b/i;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function contentType(headers: Record<string, unknown>): string {
  const value = headers['content-type'];
  return typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : '';
}

/** The body as text when its type is textual and its bytes are UTF-8, else base64. */
function bodyView(headers: Record<string, unknown>, body: Uint8Array): Pick<ResponseView, 'body' | 'bodyEncoding'> {
  if (TEXT_TYPE.test(contentType(headers))) {
    try {
      return { body: utf8.decode(body), bodyEncoding: 'utf8' };
    } catch {
      // Declared text, but not UTF-8: base64 keeps it exact.
    }
  }
  return {
    body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'),
    bodyEncoding: 'base64',
  };
}

function headerBytes(headers: Record<string, unknown>): number {
  let total = 0;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value])
      total += Buffer.byteLength(name) + Buffer.byteLength(String(v));
  }
  return total;
}

const iso = (ms: number): string | undefined => (Number.isFinite(ms) ? new Date(ms).toISOString() : undefined);

/** The view of `found` at `address`; the response's headers and body with `withBody`. */
export function recordView(
  store: IdempotencyStore,
  address: RecordAddress,
  found: InspectedRecord,
  withBody: boolean,
  now = Date.now(),
): RecordView {
  const { record, expiresInMs } = found;
  const reason = recordProblem(record);
  const at = record.state === 'completed' ? record.completedAt : record.startedAt;
  const view: RecordView = {
    scope: address.scope,
    key: address.key,
    storageKey: address.storageKey,
    store: store.name,
    state: record.state,
    valid: reason === undefined,
    ...(reason === undefined ? {} : { invalidReason: reason }),
    status: null,
    fingerprint: record.fingerprint ?? null,
    // Store clocks (Redis TIME, PostgreSQL's) may run a little ahead of this one.
    ageMs: Number.isFinite(at) ? Math.max(0, now - at) : null,
    expiresAt: expiresInMs === null ? null : (iso(now + expiresInMs) ?? null),
    expiresInMs,
    size: null,
  };
  if (record.state === 'in_flight') {
    view.startedAt = iso(record.startedAt);
    if (withBody) view.response = null;
    return view;
  }
  view.completedAt = iso(record.completedAt);
  const response = record.response as Partial<typeof record.response> | undefined;
  const headers = (response?.headers ?? {}) as Record<string, unknown>;
  const body = response?.body instanceof Uint8Array ? response.body : undefined;
  view.status = typeof response?.status === 'number' ? response.status : null;
  view.size = { bodyBytes: body?.byteLength ?? 0, headerBytes: headerBytes(headers) };
  if (withBody) view.response = body === undefined ? null : { headers: { ...headers }, ...bodyView(headers, body) };
  return view;
}

/** The record and its expiry: `inspect` where the store has it, else `get` (expiry unknown). */
export async function findRecord(store: IdempotencyStore, storageKey: string): Promise<InspectedRecord | undefined> {
  if (typeof store.inspect === 'function') return store.inspect(storageKey);
  const record: IdempotencyRecord | undefined = await store.get(storageKey);
  return record === undefined ? undefined : { record, expiresInMs: null };
}
