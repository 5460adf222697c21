import type { ServerResponse } from 'node:http';
import type { CapturedResponse } from '@idem/core';

type WriteCallback = (error?: Error | null) => void;
type Loose = (this: ServerResponse, ...args: unknown[]) => unknown;

/** A response held back after the handler ended it. */
export interface HeldResponse extends CapturedResponse {
  body: Buffer | null;
  /** Sends the response as the handler wrote it. A no-op when it already streamed out (`body: null`). */
  flush(): void;
  /** Gives the response back untouched and unsent, to answer something else instead. */
  restore(): void;
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (chunk === undefined || chunk === null) return undefined;
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('The "chunk" argument must be of type string, Buffer or Uint8Array');
}

/**
 * Holds the response back until the handler ends it and resolves with what it wrote, so the
 * caller can store it before calling `flush()`: a retry arriving right after the client got its
 * answer finds the stored record, never a stale lock. Everything Express writes (`send`, `json`,
 * `sendStatus`, `end(buffer)`, several `write` calls, piped streams) goes through
 * `writeHead`/`write`/`end`, so all of it is captured. A body that outgrows `maxBodyBytes` flows
 * out live from then on and resolves with `body: null`.
 */
export function captureResponse(res: ServerResponse, maxBodyBytes: number): Promise<HeldResponse> {
  const original = { write: res.write, end: res.end, writeHead: res.writeHead };
  const writeOriginal = original.write as Loose;
  const endOriginal = original.end as Loose;
  const chunks: Buffer[] = [];
  let size = 0;
  let streaming = false;
  let ended = false;

  function restore(): void {
    res.write = original.write;
    res.end = original.end;
    res.writeHead = original.writeHead;
  }

  // Too big to keep: send what we hold and let the rest flow.
  function startStreaming(): void {
    streaming = true;
    res.writeHead = original.writeHead;
    res.write = original.write;
    for (const chunk of chunks) writeOriginal.call(res, chunk);
    chunks.length = 0;
  }

  return new Promise((resolve) => {
    // The real head goes out with the body at flush time (Node's implicit writeHead); until then
    // only record what the handler asked for, so status and headers are captured too.
    res.writeHead = function writeHead(this: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown) {
      if (typeof reason !== 'string') headers = reason;
      else this.statusMessage = reason;
      this.statusCode = statusCode;
      if (Array.isArray(headers)) {
        for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(String(headers[i]), headers[i + 1] as string);
      } else if (headers && typeof headers === 'object') {
        for (const [name, value] of Object.entries(headers)) if (value !== undefined) this.setHeader(name, value as string);
      }
      return this;
    } as ServerResponse['writeHead'];

    res.write = function write(this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown) {
      if (typeof encoding === 'function') callback = encoding;
      const buffer = toBuffer(chunk, encoding);
      if (buffer !== undefined) {
        chunks.push(buffer);
        size += buffer.byteLength;
        if (size > maxBodyBytes) startStreaming();
      }
      if (typeof callback === 'function') process.nextTick(callback as WriteCallback);
      return true;
    } as ServerResponse['write'];

    res.end = function end(this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: unknown) {
      if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
      else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
      if (ended) return this;
      ended = true;
      const last = toBuffer(chunk, encoding);
      const status = this.statusCode;
      if (streaming) {
        restore();
        endOriginal.call(this, last ?? '', callback as WriteCallback);
        resolve({ status, headers: this.getHeaders(), body: null, flush() {}, restore() {} });
        return this;
      }
      if (last !== undefined) {
        chunks.push(last);
        size += last.byteLength;
      }
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      resolve({
        status,
        headers: this.getHeaders(),
        body: size > maxBodyBytes ? null : body,
        flush: () => {
          restore();
          if (chunks.length === 0) endOriginal.call(res, callback as WriteCallback);
          else endOriginal.call(res, body, callback as WriteCallback);
        },
        restore,
      });
      return this;
    } as ServerResponse['end'];
  });
}
