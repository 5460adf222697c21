import type { Context } from 'hono';
import { readUpTo } from '@idem/core/adapter';
import type { CapturedResponse, HeaderBag } from '@idem/core';

// Statuses a Response may not carry a body with.
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const NO_BYTES = Buffer.alloc(0);

/** Web `Headers` as the engine's header bag; Set-Cookie kept apart, as `getSetCookie()` gives it. */
export function headerBag(headers: Headers): HeaderBag {
  const bag: HeaderBag = {};
  headers.forEach((value, name) => {
    if (name !== 'set-cookie') bag[name] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) bag['set-cookie'] = cookies;
  return bag;
}

/** Sets `c.res` to exactly `res`: Hono's setter would otherwise copy the old response's headers in. */
export function replaceResponse(c: Context, res: Response): void {
  c.res = undefined;
  c.res = res;
}

/** A web stream of an async iterable of bytes (ReadableStream.from, which the DOM-less types lack). */
function webStream(chunks: AsyncIterable<Buffer>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

/**
 * Reads the response the handler left in `c.res` into the exact bytes that will be sent, and puts
 * a response of those bytes (same status and headers) in its place, since reading consumed the
 * original's body. A body over `maxBodyBytes` is put back as a stream of everything and comes
 * back as `body: null`: sent, not stored. Nothing has gone out yet either way.
 */
export async function captureResponse(c: Context, maxBodyBytes: number): Promise<CapturedResponse> {
  const res = c.res;
  const { status } = res;
  const headers = headerBag(res.headers);
  if (res.body === null || NULL_BODY.has(status)) return { status, headers, body: NO_BYTES };
  const read = await readUpTo(res.body, maxBodyBytes);
  if ('bytes' in read) {
    replaceResponse(c, new Response(read.bytes as Uint8Array<ArrayBuffer>, res));
    return { status, headers, body: read.bytes };
  }
  replaceResponse(c, new Response(webStream(read.rest), res));
  return { status, headers, body: null };
}

/** Headers of a stored response (a name with several values is an array) as Web `Headers`. */
export function toHeaders(record: Record<string, string | string[]>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(record)) {
    if (Array.isArray(value)) for (const one of value) headers.append(name, one);
    else headers.set(name, value);
  }
  return headers;
}
