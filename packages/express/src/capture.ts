import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CapturedResponse } from '@idem/core';

type WriteCallback = (error?: Error | null) => void;
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;

const HELD = Symbol('idem.held');
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any context: the stand-ins never read it
type Target = ServerResponse & { [HELD]?: HeldResponse<any> };

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (chunk === undefined || chunk === null) return undefined;
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('The "chunk" argument must be of type string, Buffer or Uint8Array');
}

/**
 * A response held back after the handler ended it: what it wrote (`status`, `headers`, `body`),
 * and the means to send it (`flush`) or drop it (`restore`). `body` is null when the response
 * outgrew `maxBodyBytes` and streamed out live instead.
 */
export class HeldResponse<Context = unknown> implements CapturedResponse {
  status = 0;
  headers: OutgoingHttpHeaders = {};
  body: Buffer | null = null;
  /** @internal */ chunks: Buffer[] = [];
  /** @internal */ size = 0;
  /** @internal */ streaming = false;
  /** @internal */ ended = false;
  /** @internal */ endCallback: WriteCallback | undefined = undefined;
  /** @internal */ sent: Buffer | undefined = undefined;

  /** @internal */
  constructor(
    /** @internal */ readonly res: ServerResponse,
    /** @internal */ readonly maxBodyBytes: number,
    /** @internal */ readonly onEnd: (held: HeldResponse<Context>, context: Context) => void,
    /** @internal */ readonly context: Context,
    /** @internal */ readonly write: Method,
    /** @internal */ readonly end: Method,
    /** @internal */ readonly writeHead: Method,
  ) {}

  /** Sends the response as the handler wrote it. A no-op when it already streamed out (`body: null`). */
  flush(): void {
    if (this.streaming) return;
    this.restore();
    if (this.sent === undefined) this.end.call(this.res, this.endCallback);
    else this.end.call(this.res, this.sent, this.endCallback);
  }

  /** Gives the response back untouched and unsent, to answer something else instead. */
  restore(): void {
    const res = this.res as Target;
    res.write = this.write as ServerResponse['write'];
    res.end = this.end as ServerResponse['end'];
    res.writeHead = this.writeHead as ServerResponse['writeHead'];
    res[HELD] = undefined;
  }

  /** Too big to keep: send what is held and let the rest flow. */
  startStreaming(): void {
    this.streaming = true;
    const res = this.res as Target;
    res.writeHead = this.writeHead as ServerResponse['writeHead'];
    res.write = this.write as ServerResponse['write'];
    for (const chunk of this.chunks) this.write.call(res, chunk);
    this.chunks.length = 0;
  }
}

// The stand-ins for `writeHead`, `write` and `end`: one set of functions for every response, each
// finding its response's state under a symbol, so holding a response allocates one object and no
// closures (bench/FINDINGS.md, C).

// The real head goes out with the body at flush time (Node's implicit writeHead); until then only
// record what the handler asked for, so status and headers are captured too.
function heldWriteHead(this: Target, statusCode: number, reason?: unknown, headers?: unknown): ServerResponse {
  if (typeof reason !== 'string') headers = reason;
  else this.statusMessage = reason;
  this.statusCode = statusCode;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(String(headers[i]), headers[i + 1] as string);
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) this.setHeader(name, value as string);
  }
  return this;
}

function heldWrite(this: Target, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
  const held = this[HELD];
  if (held === undefined) return true; // a stand-in kept by a wrapper after the response was let go
  if (typeof encoding === 'function') callback = encoding;
  const buffer = toBuffer(chunk, encoding);
  if (buffer !== undefined) {
    held.chunks.push(buffer);
    held.size += buffer.byteLength;
    if (held.size > held.maxBodyBytes) held.startStreaming();
  }
  if (typeof callback === 'function') process.nextTick(callback as WriteCallback);
  return true;
}

function heldEnd(this: Target, chunk?: unknown, encoding?: unknown, callback?: unknown): ServerResponse {
  const held = this[HELD];
  if (held === undefined || held.ended) return this;
  if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
  else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
  held.ended = true;
  const last = toBuffer(chunk, encoding);
  held.status = this.statusCode;
  if (held.streaming) {
    held.restore();
    held.end.call(this, last ?? '', callback);
    held.headers = this.getHeaders();
    held.onEnd(held, held.context);
    return this;
  }
  if (last !== undefined) {
    held.chunks.push(last);
    held.size += last.byteLength;
  }
  const { chunks } = held;
  const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, held.size);
  held.headers = this.getHeaders();
  held.body = held.size > held.maxBodyBytes ? null : body;
  if (chunks.length > 0) held.sent = body; // what flush() sends, kept even when too large to store
  held.endCallback = callback as WriteCallback | undefined;
  held.onEnd(held, held.context);
  return this;
}

/**
 * Holds the response back until the handler ends it, then calls `onEnd` with what it wrote (and
 * `context`, so that one `onEnd` serves every request without a closure each), so the
 * caller can store it before calling `flush()`: a retry arriving right after the client got its
 * answer finds the stored record, never a stale lock. Everything Express writes (`send`, `json`,
 * `sendStatus`, `end(buffer)`, several `write` calls, piped streams) goes through
 * `writeHead`/`write`/`end`, so all of it is captured. A body that outgrows `maxBodyBytes` flows
 * out live from then on and ends with `body: null`.
 */
export function holdResponse<Context>(res: ServerResponse, maxBodyBytes: number, onEnd: (held: HeldResponse<Context>, context: Context) => void, context: Context): HeldResponse<Context> {
  const target = res as Target;
  const held = new HeldResponse(res, maxBodyBytes, onEnd, context, res.write as Method, res.end as Method, res.writeHead as Method);
  target[HELD] = held;
  target.writeHead = heldWriteHead as ServerResponse['writeHead'];
  target.write = heldWrite as ServerResponse['write'];
  target.end = heldEnd as ServerResponse['end'];
  return held;
}

/** {@link holdResponse} as a promise of the held response. */
export function captureResponse(res: ServerResponse, maxBodyBytes: number): Promise<HeldResponse<undefined>> {
  return new Promise((resolve) => holdResponse(res, maxBodyBytes, (held) => resolve(held), undefined));
}
