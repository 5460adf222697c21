/**
 * Reading a response body whose bytes come as a stream, for the adapters that capture one (Koa's
 * `ctx.body`, Fastify's `onSend` payload, Hono's `Response`). Only what every one of them needs:
 * no framework, no `node:stream`; an async iterable is what Node streams and web streams both are.
 */

/** One chunk of a body as bytes: a string is UTF-8, a Uint8Array is viewed, not copied. */
export function chunkBytes(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw new TypeError(`idem: a response body chunk must be a string, Buffer or Uint8Array, not ${typeof chunk}`);
}

/** What {@link readUpTo} read: the whole body, or (past the cap) the whole body still to be sent. */
export type ReadBody = { bytes: Buffer } | { rest: AsyncIterable<Buffer> };

/**
 * Reads a body up to `maxBytes`. Within the cap the whole body comes back as bytes; past it, an
 * iterable that yields what was read and then continues the source, so that the live response is
 * never broken, only not stored. Nothing is sent before the caller decides: the engine has its say
 * (a transactional store may refuse the response) before the first byte goes out.
 */
export async function readUpTo(source: AsyncIterable<unknown>, maxBytes: number): Promise<ReadBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  const iterator = source[Symbol.asyncIterator]();
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) return { bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) };
    const chunk = chunkBytes(value);
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size > maxBytes) return { rest: rest(chunks, iterator) };
  }
}

async function* rest(head: Buffer[], iterator: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  yield* head;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield chunkBytes(next.value);
}
