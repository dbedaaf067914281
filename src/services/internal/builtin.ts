import type net from 'node:net';

/**
 * Makes the net.Socket of the connection a builtin serves, with net.Socket's
 * `onread` option for a builtin that reads into a buffer of its own. The
 * socket's errors are already handled.
 */
export type OpenSocket = (onread?: net.OnReadOpts) => net.Socket;

/** One of inetd's internal services: how it serves a connection, and how it answers a datagram. */
export interface Builtin {
  /** Serves one connection: calls `open` once, at once. */
  stream(open: OpenSocket): void;
  /** The answer to one datagram, or null for none. */
  datagram(message: Buffer): Buffer | null;
}

// After answering, how long a client may keep its side open before the
// connection is cut: daytime and time have nothing more to say, and every
// half-open connection holds one of the supervisor's fds.
const answeredLingerMs = 5000;

/**
 * Sends the one answer of a daytime or time connection and closes it, as
 * BSD inetd does. Closing at once would reset a connection whose client sent
 * something unread (and the reset can destroy the answer): input is read and
 * dropped until the client closes its side, or for answeredLingerMs.
 */
export function answerAndClose(socket: net.Socket, answer: Buffer): void {
  socket.resume();
  socket.end(answer);
  // Not socket.setTimeout: that waits for answeredLingerMs of silence, which a client that keeps sending never leaves.
  const cut = setTimeout(() => socket.destroy(), answeredLingerMs);
  socket.once('close', () => clearTimeout(cut));
}
