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
  let pipes = 0;
  let piped = false;
  let clientLeft = false;
  let closed = false;
  let given = false;
  function judge(): void {
    if (given || held.ended) return;
    if (clientLeft && (!piped || pipes > 0)) return;
    given = true;
    abandoned();
  }
  res.on('pipe', function piping() {
    if (!piped) {
      piped = true;
      // Registered only for responses that are piped to; the unpipe that follows a close comes
      // from the pipe's own 'close' listener, after this module's.
      res.on('unpipe', function unpiping() {
        pipes--;
        if (closed) judge();
      });
    }
    pipes++;
  });
  res.once('close', function closedEarly() {
    if (held.ended) return;
    closed = true;
    // Only the client ends the socket's readable side (FIN) or resets it; a socket this side
    // destroyed has neither, unless the server timed it out (the handler still works then). Without
    // a socket to ask, assume the client left: never abort on a guess.
    const current = (res.socket as Socket | null) ?? socket;
    clientLeft =
      res.errored == null &&
      (current === null || current.readableEnded || current.errored != null || timedOut.has(current));
    judge();
  });
}
