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
  if (typeof chunk === 'string')
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('The "chunk" argument must be of type string, Buffer or Uint8Array');
}

// Recording a head the way Node's writeHead takes it (status, optional reason, headers as an object,
// a flat [name, value, …] array or an array of pairs) into the response's own header store, so
// getHeaders() sees it all. As in Node, an array's names replace earlier values but may repeat.
function recordHead(res: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown): void {
  if (typeof reason !== 'string') headers = reason;
  else res.statusMessage = reason;
  res.statusCode = statusCode;
  if (Array.isArray(headers)) {
    const pairs: [string, string][] = Array.isArray(headers[0])
      ? (headers as unknown[][]).map(([name, value]) => [String(name), value as string])
      : Array.from({ length: headers.length >> 1 }, (_, i) => [String(headers[2 * i]), headers[2 * i + 1] as string]);
    for (const [name] of pairs) res.removeHeader(name);
    for (const [name, value] of pairs) if (name) res.appendHeader(name, value);
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value as string);
  }
}

/**
 * A response held back after the handler ended it: what it wrote (`status`, `headers`, `body`),
 * and the means to send it (`flush`) or drop it (`restore`). `body` is null when the response
 * outgrew `maxBodyBytes`: then it either streamed out live already (`streamed`) or is still held
 * whole, and `flush()` sends it either way.
 */
export class HeldResponse implements CapturedResponse {
  status = 0;
  headers: OutgoingHttpHeaders = {};
  body: Buffer | null = null;
  /** @internal */ mode = Mode.Holding;
  /** @internal */ wentLive = false;
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

  /** True when the body outgrew maxBodyBytes while being written and went out live. */
  get streamed(): boolean {
    return this.wentLive;
  }

  /**
   * Sends the response as the handler wrote it: the whole of it, or, for one that went out live,
   * its end (held back until the store had its say). A no-op once flushed or given back.
   */
  flush(): void {
    if (this.mode === Mode.Passing) return;
    const { sent, endCallback, mode } = this;
    this.mode = Mode.Passing;
    this.release();
    if (mode === Mode.Streaming || sent === undefined) this.end.call(this.res, endCallback);
    else this.end.call(this.res, sent, endCallback);
  }

  /**
   * Cuts off a response that went out live and must not end as if it succeeded (a transactional
   * store undid its effects): the connection is destroyed before the body's end, so the client
   * sees a broken response, never a complete success.
   */
  cutOff(reason: Error): void {
    this.mode = Mode.Passing;
    this.release();
    this.res.destroy(reason);
  }

  /** Gives the response back unsent, to answer something else instead: from now on writes go out. */
  restore(): void {
    this.mode = Mode.Passing;
    this.release();
  }

  // The stand-ins stay on res: let go of the bytes, which the caller keeps if it needs them.
  private release(): void {
    this.chunks = [];
    this.sent = undefined;
    this.endCallback = undefined;
  }
}

/**
 * Moves `res` to V8's dictionary mode before idem adds its stand-ins. Express sets the prototype of
 * every response (Object.setPrototypeOf per request), and V8 then gives each property later added
 * to that object a hidden class of its own, copying its ~50 descriptors: the three stand-ins cost
 * ~15 µs and their garbage per first execution (bench/FINDINGS.md, N). In dictionary mode an
 * addition is a hash insert; reads cost what they did, since no two responses shared a hidden class
 * (their property accesses were megamorphic already). Deleting a property other than the last one
 * added is what makes V8 switch; `sendDate` is one of ServerResponse's own fields, put back at once.
 */
function toDictionaryMode(res: ServerResponse): void {
  if (!Object.hasOwn(res, 'sendDate')) return;
  const { sendDate } = res;
  delete (res as { sendDate?: boolean }).sendDate;
  res.sendDate = sendDate;
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
 * given back: putting the methods back would write three more properties.
 */
export function holdResponse<Context>(
  res: ServerResponse,
  maxBodyBytes: number,
  onEnd: (held: HeldResponse, context: Context) => void,
  context: Context,
): HeldResponse {
  const held = new HeldResponse(res, res.write as Method, res.end as Method, res.writeHead as Method);
  toDictionaryMode(res);

  // The real head goes out with the body at flush time (Node's implicit writeHead); until then only
  // record what the handler asked for, so status and headers are captured too.
  res.writeHead = function writeHead(this: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown) {
    if (held.mode !== Mode.Holding) return held.writeHead.call(this, statusCode, reason, headers);
    recordHead(this, statusCode, reason, headers);
    return this;
  } as ServerResponse['writeHead'];

  res.write = function write(this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown) {
    if (held.mode === Mode.Passing) return held.write.call(this, chunk, encoding, callback);
    if (typeof encoding === 'function') callback = encoding;
    if (held.ended) {
      // Written after end() while the response waits to be stored: Node refuses it too.
      if (typeof callback === 'function')
        process.nextTick(
          callback as WriteCallback,
          Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' }),
        );
      return false;
    }
    if (held.mode === Mode.Streaming) return held.write.call(this, chunk, encoding, callback);
    const buffer = toBuffer(chunk, encoding);
    if (buffer !== undefined) {
      held.chunks.push(buffer);
      held.size += buffer.byteLength;
      if (held.size > maxBodyBytes) {
        // Too big to keep: send what is held and let the rest flow.
        held.mode = Mode.Streaming;
        held.wentLive = true;
        for (const kept of held.chunks) held.write.call(this, kept);
        held.chunks = [];
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
      // The last bytes go out, the end waits for flush(): the store decides first whether this
      // response may end as a success (a transactional store may have undone its effects).
      if (last !== undefined && last.byteLength > 0) held.write.call(this, last);
      held.endCallback = callback as WriteCallback | undefined;
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
