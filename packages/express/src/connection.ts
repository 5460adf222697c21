import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HeldResponse } from './capture.js';

/**
 * Calls `abandoned` once when the connection closes before the handler ended the response and
 * nothing is left that will end it (the rule is the README's "When the connection closes"):
 * - this side closed it (`res.destroy()`, with or without an error): the handler gave up (a socket
 *   the server timed out is not that: it counts as a client that left);
 * - the client left while a stream was piped into `res`, and no piped stream remains:
 *   `stream.pipe` and `stream.pipeline` unpipe from a closed response and never end it.
 * A client that left while the handler still works is no reason: a handler that ends the
 * response later has it stored (docs/design.md: a client disconnect does not cancel the store).
 * What stays undetectable (a handler that notices the close and returns) is bounded by `maxHold`.
 */
// Sockets the server timed out (`server.setTimeout`, a keep-alive or request timeout): Node destroys
// them from this side, yet the handler is still at work, as when the client leaves. One listener
// per socket, however many requests it carries; it does not change whether Node destroys it.
const timedOut = new WeakSet<Socket>();
const watched = new WeakSet<Socket>();
function markTimedOut(this: Socket): void {
  timedOut.add(this);
}

export function watchConnection(res: ServerResponse, held: HeldResponse, abandoned: () => void): void {
  const socket = res.socket;
  if (socket != null && !watched.has(socket)) {
    watched.add(socket);
    socket.on('timeout', markTimedOut);
  }
  // One listener per execution, and no closure for the pipes: the streams piped into `res` are
  // counted when it closes, by their 'unpipe' listeners (Readable.pipe and stream.pipeline add
  // one each, and remove it when they unpipe, which a closed response makes them do after this).
  res.on('close', function closedEarly() {
    if (held.ended) return;
    // Only the client ends the socket's readable side (FIN) or resets it; a socket this side
    // destroyed has neither, unless the server timed it out (the handler still works then). Without
    // a socket to ask, assume the client left: never abort on a guess.
    const current = (res.socket as Socket | null) ?? socket;
    const clientLeft =
      res.errored == null &&
      (current === null || current.readableEnded || current.errored != null || timedOut.has(current));
    if (!clientLeft) return abandoned();
    // The client left: the handler may still end the response, unless a stream was piping into
    // it: a pipe never ends a closed response, so the handler gave up once the last one unpipes.
    if (res.listenerCount('unpipe') === 0) return;
    res.on('unpipe', function unpiped() {
      if (held.ended || res.listenerCount('unpipe') > 1) return;
      res.off('unpipe', unpiped);
      abandoned();
    });
  });
}
