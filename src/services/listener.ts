// Serving connections on an inherited listening fd, and the one sentence
// for refusing a client when a service's waiting queue is full.

import net from 'node:net';
import { ReportThrottle, type Logger } from '../log.js';

export interface AcceptOptions {
  /** Accept without reading, so that a spawned program gets every byte. */
  readonly pauseOnConnect: boolean;
  readonly allowHalfOpen: boolean;
}

/** Starts accepting on `fd`; resolves once the server is listening. */
export function acceptOn(fd: number, options: AcceptOptions, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(options, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** The address a client connected from, for per-source limits and logs. */
export function clientOf(socket: net.Socket): string {
  if (socket.remoteAddress === undefined) return 'local';
  return socket.remoteFamily === 'IPv6' ? `[${socket.remoteAddress}]:${socket.remotePort}` : `${socket.remoteAddress}:${socket.remotePort}`;
}

export function sourceOf(socket: net.Socket): string {
  return socket.remoteAddress ?? 'local';
}

// How long a refused client has to hang up before its connection is cut.
const closeGraceMs = 2000;

/**
 * Closes a client's connection without a reset: ends our side, and reads
 * and discards whatever the client sent (closing a socket with unread bytes
 * makes the kernel send RST, which the client reports as an error).
 */
export function closeGently(socket: net.Socket): void {
  socket.on('error', () => socket.destroy());
  socket.on('end', () => socket.destroy());
  socket.setTimeout(closeGraceMs, () => socket.destroy());
  socket.end();
  socket.resume();
}

const reportEveryMs = 60_000;

/** Closes a client the queue has no room for, and says so (at most once a minute, with a count). */
export class QueueOverflow {
  readonly #throttle = new ReportThrottle(reportEveryMs);

  constructor(
    readonly label: string,
    readonly log: Logger,
    readonly queueLimit: number,
  ) {}

  refuse(socket: net.Socket): void {
    const client = clientOf(socket);
    closeGently(socket);
    const heldBack = this.#throttle.due();
    if (heldBack === null) return;
    const more = heldBack > 0 ? ` (${heldBack} more since the last report)` : '';
    this.log.warn(
      this.label,
      `reject client ${client}: ${this.queueLimit} clients are already waiting for a free slot; closed its connection${more}`,
    );
  }
}
