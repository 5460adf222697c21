import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { readUpTo } from '@idem/core/adapter';
import type { CapturedResponse } from '@idem/core';

/** A payload captured in onSend: what to store (`response`) and what Fastify sends on (`payload`). */
export interface CapturedPayload {
  response: CapturedResponse;
  payload: unknown;
}

// Statuses Fastify (and HTTP) send without a body, whatever the payload.
const EMPTY_STATUS = new Set([204, 205, 304]);
const NO_BYTES = Buffer.alloc(0);

function isNodeStream(payload: object): payload is Readable {
  return typeof (payload as Readable).pipe === 'function';
}

function isWebStream(payload: object): payload is ReadableStream<Uint8Array> {
  return typeof (payload as ReadableStream).getReader === 'function';
}

function isResponse(payload: object): payload is Response {
  return Object.prototype.toString.call(payload) === '[object Response]';
}

function captured(reply: FastifyReply, body: Buffer | null, payload: unknown): CapturedPayload {
  return { response: { status: reply.statusCode, headers: reply.getHeaders(), body }, payload };
}

/**
 * Turns the payload that reaches onSend into the bytes Fastify will send. By then Fastify has
 * serialised objects (to a string) and typed strings and Buffers; a stream (Node or web) is read
 * up to `maxBodyBytes` and sent on as the bytes read, or, past the cap, as a stream of everything
 * (not stored). A `Response` gives its status and headers to the reply first, as Fastify would.
 * Synchronous unless the payload is a stream.
 */
export function capturePayload(
  reply: FastifyReply,
  payload: unknown,
  maxBodyBytes: number,
): CapturedPayload | Promise<CapturedPayload> {
  if (EMPTY_STATUS.has(reply.statusCode) || payload === undefined || payload === null)
    return captured(reply, NO_BYTES, payload);
  if (typeof payload === 'string') return captured(reply, Buffer.from(payload), payload);
  if (Buffer.isBuffer(payload)) return captured(reply, payload, payload);
  if (typeof payload !== 'object') return captured(reply, null, payload);
  if (isResponse(payload)) {
    reply.code(payload.status);
    for (const [name, value] of payload.headers) reply.header(name, value);
    return payload.body === null ? captured(reply, NO_BYTES, null) : captureStream(reply, payload.body, maxBodyBytes);
  }
  if (isNodeStream(payload) || isWebStream(payload)) return captureStream(reply, payload, maxBodyBytes);
  // Nothing Fastify can send (it answers 500 for it): not stored.
  return captured(reply, null, payload);
}

async function captureStream(
  reply: FastifyReply,
  stream: AsyncIterable<unknown>,
  maxBodyBytes: number,
): Promise<CapturedPayload> {
  const read = await readUpTo(stream, maxBodyBytes);
  if ('bytes' in read) return captured(reply, read.bytes, read.bytes);
  return captured(reply, null, Readable.from(read.rest, { objectMode: false }));
}
