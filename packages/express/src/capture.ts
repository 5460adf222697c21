import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CapturedResponse } from '@idem/core';

type WriteCallback = (error?: Error | null) => void;
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;

/** What the stand-ins do with a call: keep it, or hand it to the method they replaced. */
const enum Mode {
  /** Record the head, keep the body. */
  Holding,
  /** The body outgrew maxBodyBytes: writes flow out live; `end` is still watched. */
  Streaming,
  /** Flushed or given back: every call goes to the replaced methods. */
  Passing,
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (chunk === undefined || chunk === null) return undefined;
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('The "chunk" argument must be of type string, Buffer or Uint8Array');
}

// Recording a head the way Node's writeHead takes it (status, optional reason, headers as an
// object or a flat array), into the response's own header store, so getHeaders() sees it all.
function recordHead(res: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown): void {
  if (typeof reason !== 'string') headers = reason;
  else res.statusMessage = reason;
  res.statusCode = statusCode;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) res.setHeader(String(headers[i]), headers[i + 1] as string);
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value as string);
  }
}

/**
 * A response held back after the handler ended it: what it wrote (`status`, `headers`, `body`),
 * and the means to send it (`flush`) or drop it (`restore`). `body` is null when the response
 * outgrew `maxBodyBytes` and streamed out live instead.
 */
export class HeldResponse implements CapturedResponse {
  status = 0;
  headers: OutgoingHttpHeaders = {};
  body: Buffer | null = null;
  /** @internal */ mode = Mode.Holding;
  /** @internal */ chunks: Buffer[] = [];
  /** @internal */ size = 0;
  /** @internal */ ended = false;
  /** @internal */ endCallback: WriteCallback | undefined = undefined;
  /** @internal what flush() sends (kept even when too large to store) */ sent: Buffer | undefined = undefined;

  /** @internal */
  constructor(
    /** @internal */ readonly res: ServerResponse,
    /** @internal */ readonly write: Method,
    /** @internal */ readonly end: Method,
    /** @internal */ readonly writeHead: Method,
  ) {}

  /** Sends the response as the handler wrote it. A no-op when it already streamed out (`body: null`). */
  flush(): void {
    if (this.mode !== Mode.Holding) return;
    this.mode = Mode.Passing;
    if (this.sent === undefined) this.end.call(this.res, this.endCallback);
    else this.end.call(this.res, this.sent, this.endCallback);
  }

  /** Gives the response back unsent, to answer something else instead: from now on writes go out. */
  restore(): void {
    this.mode = Mode.Passing;
  }
}

/**
 * Holds the response back until the handler ends it, then calls `onEnd` with what it wrote (and
 * `context`), so the caller can store it before calling `flush()`: a retry arriving right after the
 * client got its answer finds the stored record, never a stale lock. Everything Express writes
 * (`send`, `json`, `sendStatus`, `end(buffer)`, several `write` calls, piped streams) goes through
 * `writeHead`/`write`/`end`, so all of it is captured. A body that outgrows `maxBodyBytes` flows out
 * live from then on and ends with `body: null`.
 *
 * The stand-ins stay on `res` for its life and pass calls through once the response is flushed or
 * given back: Express gives every response its own hidden class (setPrototypeOf per request), so
 * each property written to `res` is a slow store, several µs here (bench/FINDINGS.md, C). Holding
 * a response writes three; putting the methods back would write three more.
 */
export function holdResponse<Context>(res: ServerResponse, maxBodyBytes: number, onEnd: (held: HeldResponse, context: Context) => void, context: Context): HeldResponse {
  const held = new HeldResponse(res, res.write as Method, res.end as Method, res.writeHead as Method);

  // The real head goes out with the body at flush time (Node's implicit writeHead); until then only
  // record what the handler asked for, so status and headers are captured too.
  res.writeHead = function writeHead(this: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown) {
    if (held.mode !== Mode.Holding) return held.writeHead.call(this, statusCode, reason, headers);
    recordHead(this, statusCode, reason, headers);
    return this;
  } as ServerResponse['writeHead'];

  res.write = function write(this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown) {
    if (held.mode !== Mode.Holding) return held.write.call(this, chunk, encoding, callback);
    if (typeof encoding === 'function') callback = encoding;
    const buffer = toBuffer(chunk, encoding);
    if (buffer !== undefined) {
      held.chunks.push(buffer);
      held.size += buffer.byteLength;
      if (held.size > maxBodyBytes) {
        // Too big to keep: send what is held and let the rest flow.
        held.mode = Mode.Streaming;
        for (const kept of held.chunks) held.write.call(this, kept);
        held.chunks.length = 0;
      }
    }
    if (typeof callback === 'function') process.nextTick(callback as WriteCallback);
    return true;
  } as ServerResponse['write'];

  res.end = function end(this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: unknown) {
    if (held.mode === Mode.Passing) return held.end.call(this, chunk, encoding, callback);
    if (held.ended) return this;
    if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    held.ended = true;
    const last = toBuffer(chunk, encoding);
    held.status = this.statusCode;
    if (held.mode === Mode.Streaming) {
      held.mode = Mode.Passing;
      held.end.call(this, last ?? '', callback);
      held.headers = this.getHeaders();
      onEnd(held, context);
      return this;
    }
    if (last !== undefined) {
      held.chunks.push(last);
      held.size += last.byteLength;
    }
    const { chunks } = held;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, held.size);
    held.headers = this.getHeaders();
    held.body = held.size > maxBodyBytes ? null : body;
    if (chunks.length > 0) held.sent = body;
    held.endCallback = callback as WriteCallback | undefined;
    onEnd(held, context);
    return this;
  } as ServerResponse['end'];

  return held;
}

/** {@link holdResponse} as a promise of the held response. */
export function captureResponse(res: ServerResponse, maxBodyBytes: number): Promise<HeldResponse> {
  return new Promise((resolve) => holdResponse(res, maxBodyBytes, resolve, undefined));
}
