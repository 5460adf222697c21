import { replayMarks, type OutgoingResponse } from '@idem/core/adapter';
import type { KoaContext } from './types.js';

/**
 * True when idem can no longer answer on this context: something else sent the response (a
 * request-timeout middleware mounted before idem, say), took it over (`ctx.respond = false`), or
 * the connection is gone. Such a response is left alone.
 */
export function answered(ctx: KoaContext): boolean {
  return ctx.headerSent === true || ctx.respond === false || ctx.res.writableEnded || ctx.res.destroyed;
}

/** Drops every response header, to answer with something other than what the handler wrote. */
export function clearHeaders(ctx: KoaContext): void {
  for (const name of Object.keys(ctx.response.headers)) ctx.remove(name);
}

/** Writes a response the engine answers with (a replay, a problem), unless it was {@link answered} already. */
export function sendOutgoing(ctx: KoaContext, response: OutgoingResponse): void {
  if (answered(ctx)) return;
  const { headers, body } = response;
  // Status first: it is then explicit, and setting the body keeps it.
  ctx.status = response.status;
  for (const name in headers) ctx.set(name, headers[name] as string | string[]);
  ctx.body = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // Koa types a Buffer body as application/octet-stream; a response stored without a type has none.
  if (headers['content-type'] === undefined) ctx.remove('Content-Type');
  if (response.replayed) {
    for (const [name, value] of replayMarks((name) => ctx.response.get(name) || undefined)) ctx.set(name, value);
  }
}
