import { Readable } from 'node:stream';
import type { CapturedResponse } from '@idem/core';
import { readUpTo } from '@idem/core/adapter';
import type { KoaContext } from './types.js';

function isNodeStream(body: unknown): body is Readable {
  return body !== null && typeof body === 'object' && typeof (body as Readable).pipe === 'function';
}

/** Koa 3 also accepts web bodies; read them as Node streams. */
function asStream(body: unknown): Readable | undefined {
  if (isNodeStream(body)) return body;
  if (typeof Blob !== 'undefined' && body instanceof Blob) return Readable.fromWeb(body.stream() as never);
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return Readable.fromWeb(body as never);
  if (typeof Response !== 'undefined' && body instanceof Response)
    return body.body ? Readable.fromWeb(body.body as never) : Readable.from([]);
  return undefined;
}

/**
 * Turns whatever the handler left in `ctx.body` into the exact bytes Koa will send, sets
 * `ctx.body` to those bytes (so what is stored is what goes out), and returns the capture.
 * Mirrors Koa's own `respond()`: JSON is `JSON.stringify`, a missing body is the status message.
 * Synchronous unless the body is a stream, which has to be read first.
 */
export function captureBody(ctx: KoaContext, maxBodyBytes: number): CapturedResponse | Promise<CapturedResponse> {
  const status = ctx.status;
  const body: unknown = ctx.body;
  let bytes: Buffer | null;
  if (ctx.respond === false) {
    bytes = null; // the handler wrote to ctx.res itself: nothing to capture
  } else if (EMPTY_STATUS.has(status)) {
    bytes = Buffer.alloc(0);
  } else if (body === null || body === undefined) {
    if ((ctx.response as { _explicitNullBody?: boolean })._explicitNullBody) {
      bytes = Buffer.alloc(0);
    } else {
      bytes = Buffer.from(ctx.message || String(status));
      setBody(ctx, bytes, status);
      ctx.type = 'text';
    }
  } else if (Buffer.isBuffer(body)) {
    bytes = body;
  } else if (typeof body === 'string') {
    bytes = Buffer.from(body);
    setBody(ctx, bytes, status);
  } else {
    // Plain objects and arrays, the common case, are JSON without looking for a stream.
    const stream = isPlainJson(body) ? undefined : asStream(body);
    if (stream !== undefined) return captureStream(ctx, stream, status, maxBodyBytes);
    bytes = Buffer.from(JSON.stringify(body));
    setBody(ctx, bytes, status);
  }
  return captured(ctx, bytes, maxBodyBytes);
}

function captured(ctx: KoaContext, bytes: Buffer | null, maxBodyBytes: number): CapturedResponse {
  return {
    status: ctx.status,
    headers: ctx.response.headers,
    body: bytes !== null && bytes.byteLength > maxBodyBytes ? null : bytes,
  };
}

async function captureStream(
  ctx: KoaContext,
  stream: Readable,
  status: number,
  maxBodyBytes: number,
): Promise<CapturedResponse> {
  // Past the cap, a stream of everything read and the rest of the source: sent, not stored.
  const read = await readUpTo(stream, maxBodyBytes);
  if ('bytes' in read) {
    setBody(ctx, read.bytes, status);
    return captured(ctx, read.bytes, maxBodyBytes);
  }
  setBody(ctx, Readable.from(read.rest, { objectMode: false }), status);
  return captured(ctx, null, maxBodyBytes);
}

function isPlainJson(body: object): boolean {
  const proto: unknown = Object.getPrototypeOf(body);
  return proto === Object.prototype || proto === null || Array.isArray(body);
}

const EMPTY_STATUS = new Set([204, 205, 304]);

// Assigning ctx.body may reset a status Koa considers implicit; keep the handler's.
function setBody(ctx: KoaContext, body: Buffer | Readable, status: number): void {
  ctx.body = body;
  if (ctx.status !== status) ctx.status = status;
}
