import type { ServerResponse } from 'node:http';
import { replayMarks, type OutgoingResponse } from '@idem/core/adapter';

/**
 * True when idem can no longer answer on this response: something else sent it (a request-timeout
 * middleware mounted before idem, say) or the connection is gone. Such a response is left alone.
 */
export function answered(res: ServerResponse): boolean {
  return res.headersSent || res.writableEnded || res.destroyed;
}

/**
 * Writes a response idem answers with (a replay, a problem, a cached response), unless the
 * response was {@link answered} already. A throw (Node refusing a status or a header value) leaves
 * the status and the headers it set as they were, for the framework's error handler to answer.
 */
export function send(
  res: ServerResponse,
  response: Omit<OutgoingResponse, 'replayed'>,
  marks: readonly (readonly [string, string])[] = [],
): void {
  if (answered(res)) return;
  const { headers } = response;
  const statusBefore = res.statusCode;
  try {
    res.statusCode = response.status;
    for (const name in headers) res.setHeader(name, headers[name] as string | string[]);
    for (const [name, value] of marks) res.setHeader(name, value);
    res.end(response.body);
  } catch (error) {
    res.statusCode = statusBefore;
    for (const name in headers) res.removeHeader(name);
    for (const [name] of marks) res.removeHeader(name);
    throw error;
  }
}

/** {@link send} for the engine's answers: a replay is marked, and exposed to CORS clients. */
export function sendOutgoing(res: ServerResponse, response: OutgoingResponse): void {
  send(res, response, response.replayed ? replayMarks((name) => res.getHeader(name)) : []);
}
