import { CacheError } from './errors.js';
import type { Serializer } from './types.js';

// The first byte says how the rest is encoded, so plain JSON (the common case) is read back with
// a bare JSON.parse and only values that held bytes pay for a reviver.
const PLAIN = 0x6a; // 'j': JSON text
const TAGGED = 0x74; // 't': JSON text with tagged Uint8Arrays and escaped keys
const BUFFER = 0x62; // 'b': raw bytes of a top-level Buffer
const BYTES = 0x75; // 'u': raw bytes of a top-level (non-Buffer) Uint8Array
const UNDEFINED = 0x6e; // 'n': undefined

// A nested Buffer becomes { "\u0000b": base64 }, a plain Uint8Array { "\u0000u": base64 }. A user
// key starting with \u0000 gets one more \u0000 in front, so a tag can never be forged by data.
const MARK = '\u0000';
const BUFFER_TAG = `${MARK}b`;
const BYTES_TAG = `${MARK}u`;

function encodeTagged(value: unknown): { text: string; tagged: boolean } {
  let tagged = false;
  const text = JSON.stringify(value, function replace(this: Record<string, unknown>, key: string, converted: unknown) {
    // `this[key]` is the value before toJSON(): Buffer.toJSON would have lost its type.
    const raw = this[key];
    if (raw instanceof Uint8Array) {
      tagged = true;
      const base64 = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
      return Buffer.isBuffer(raw) ? { [BUFFER_TAG]: base64 } : { [BYTES_TAG]: base64 };
    }
    if (converted !== null && typeof converted === 'object' && !Array.isArray(converted)) {
      const keys = Object.keys(converted);
      if (keys.some((k) => k.startsWith(MARK))) {
        tagged = true;
        // fromEntries defines own properties, so even a "__proto__" key stays data.
        return Object.fromEntries(
          keys.map((k) => [k.startsWith(MARK) ? MARK + k : k, (converted as Record<string, unknown>)[k]]),
        );
      }
    }
    return converted;
  });
  return { text, tagged };
}

function revive(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const only = keys[0] as string;
    const data = (value as Record<string, unknown>)[only];
    if (only === BUFFER_TAG && typeof data === 'string') return Buffer.from(data, 'base64');
    if (only === BYTES_TAG && typeof data === 'string') return new Uint8Array(Buffer.from(data, 'base64'));
  }
  if (!keys.some((k) => k.startsWith(MARK))) return value;
  return Object.fromEntries(
    keys.map((k) => [k.startsWith(MARK) ? k.slice(1) : k, (value as Record<string, unknown>)[k]]),
  );
}

function withFormat(format: number, body: Buffer | string): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = format;
  payload.copy(out, 1);
  return out;
}

/**
 * The default serializer: JSON semantics (Dates become strings, `undefined` properties vanish),
 * plus exact Buffers and Uint8Arrays anywhere in the value and `undefined` at the top.
 *
 * @example
 * const bytes = jsonSerializer.serialize({ png: Buffer.from([1, 2]) });
 * jsonSerializer.deserialize(Buffer.from(bytes)); // { png: <Buffer 01 02> }
 */
export const jsonSerializer: Serializer = {
  serialize: function serialize(value: unknown): Uint8Array {
    if (value === undefined) return Buffer.from([UNDEFINED]);
    if (Buffer.isBuffer(value)) return withFormat(BUFFER, value);
    if (value instanceof Uint8Array)
      return withFormat(BYTES, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    const { text, tagged } = encodeTagged(value);
    if (text === undefined) throw new TypeError(`cannot serialize a value of type ${typeof value}`);
    return withFormat(tagged ? TAGGED : PLAIN, text);
  },
  deserialize: function deserialize(data: Buffer): unknown {
    const format = data[0];
    const body = data.subarray(1);
    switch (format) {
      case PLAIN:
        return JSON.parse(body.toString('utf8'));
      case TAGGED:
        return JSON.parse(body.toString('utf8'), revive);
      case BUFFER:
        return Buffer.from(body);
      case BYTES:
        return new Uint8Array(body);
      case UNDEFINED:
        return undefined;
      default:
        throw new TypeError(`unknown encoding byte ${String(format)}`);
    }
  },
};

/**
 * `value` as the bytes Redis and the durable tier store, serialized once for both. Throws a
 * `cache_serialization` CacheError naming `key` when the serializer cannot take it.
 * @internal
 */
export function encodeValue(serializer: Serializer, key: string, value: unknown): Buffer {
  let payload: string | Uint8Array;
  try {
    payload = serializer.serialize(value);
  } catch (error) {
    throw new CacheError(
      'cache_serialization',
      `could not serialize the value of ${JSON.stringify(key)}: ${(error as Error).message}`,
      { key, cause: error },
    );
  }
  return typeof payload === 'string'
    ? Buffer.from(payload)
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}
