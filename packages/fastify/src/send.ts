import type { FastifyReply } from 'fastify';
import { replayMarks, type OutgoingResponse } from '@idem/core/adapter';

/**
 * True when idem can no longer answer on this reply: something else sent it (a request-timeout
 * hook, say), hijacked it, or the connection is gone. Such a reply is left alone.
 */
export function answered(reply: FastifyReply): boolean {
  const res = reply.raw;
  return reply.sent || res.headersSent || res.writableEnded || res.destroyed;
}

// Replies idem answered with a response that was kept without a Content-Type: Fastify types a
// Buffer payload as application/octet-stream before onSend, and the onSend hook takes it off again,
// so that a replay carries the headers of the original and no others.
const untyped = new WeakSet<FastifyReply>();

/** In onSend: takes off the Content-Type Fastify added to an untyped answer of {@link send}. */
export function untype(reply: FastifyReply): void {
  if (untyped.delete(reply)) reply.removeHeader('content-type');
}

/** Drops every header the reply carries, to answer with something other than what the handler wrote. */
export function clearHeaders(reply: FastifyReply): void {
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
}

/**
 * Writes a response idem answers with (a replay, a problem, a cached response) through
 * `reply.send`, so that the app's other onSend hooks see it too, unless the reply was
 * {@link answered} already.
 */
export function send(
  reply: FastifyReply,
  response: Omit<OutgoingResponse, 'replayed'>,
  marks: readonly (readonly [string, string])[] = [],
): void {
  if (answered(reply)) return;
  const { headers, body } = response;
  reply.code(response.status);
  for (const name in headers) reply.header(name, headers[name]);
  for (const [name, value] of marks) reply.header(name, value);
  if (headers['content-type'] === undefined) untyped.add(reply);
  reply.send(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** {@link send} for the engine's answers: a replay is marked, and exposed to CORS clients. */
export function sendOutgoing(reply: FastifyReply, response: OutgoingResponse): void {
  send(reply, response, response.replayed ? replayMarks((name) => reply.getHeader(name)) : []);
}
