import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { replayMarks, type OutgoingResponse } from '@idem/core/adapter';
import { toHeaders } from './response.js';

/**
 * The response idem answers with (a replay, a problem, a cached response), built with `c.body` so
 * that headers set before idem (CORS, say) are on it too. Exactly the stored headers and bytes:
 * `c.body` adds no Content-Type of its own.
 */
export function respond(
  c: Context,
  response: Omit<OutgoingResponse, 'replayed'>,
  marks: readonly (readonly [string, string])[] = [],
): Response {
  checkStatus(response.status);
  const headers: Record<string, string | string[]> = { ...response.headers };
  for (const [name, value] of marks) headers[name] = value;
  const { body } = response;
  return c.body(body as Uint8Array<ArrayBuffer>, response.status as ContentfulStatusCode, headers);
}

/**
 * Refuses a status a `Response` cannot have (the Fetch standard's 200–599), as the Response
 * constructor does, so that a cached or stored response with one goes to Hono's error handling
 * (a 500) on every runtime; @hono/node-server's own Response would only fail when writing it.
 */
function checkStatus(status: number): void {
  if (!Number.isInteger(status) || status < 200 || status > 599)
    throw new RangeError(`idem: a Response cannot have status ${status}`);
}

/** A response idem puts in place of the handler's (`c.res`): exactly these headers, none kept from before. */
export function replacement(
  response: Omit<OutgoingResponse, 'replayed'>,
  marks: readonly (readonly [string, string])[] = [],
): Response {
  checkStatus(response.status);
  const headers = toHeaders(response.headers);
  for (const [name, value] of marks) headers.set(name, value);
  return new Response(response.body as Uint8Array<ArrayBuffer>, { status: response.status, headers });
}

/** {@link respond} for the engine's answers: a replay is marked, and exposed to CORS clients. */
export function respondOutgoing(c: Context, response: OutgoingResponse): Response {
  return respond(c, response, response.replayed ? replayMarks((name) => c.res.headers.get(name) ?? undefined) : []);
}
