// Serving connections on an inherited listening fd — as net.Sockets, or as
// bare accepted connections for a process to be given — and the one sentence
// for refusing a client when a service's waiting queue is full.

import net from 'node:net';
import { ReportThrottle, type Logger } from '../log.js';
import { takeAccepts, type AcceptedConnection, type Address } from '../sockets/internals.js';
import { listenOnFd } from '../sockets/listen-fds.js';

export interface AcceptOptions {
  /** Accept without reading, so that a spawned program gets every byte. */
  readonly pauseOnConnect: boolean;
  readonly allowHalfOpen: boolean;
  /** The service's backlog (see listenOnFd in sockets/listen-fds.ts). */
  readonly backlog: number;
}

/** Starts accepting on `fd`; resolves once the server is listening. */
export function acceptOn(fd: number, options: AcceptOptions, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(options, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listenOnFd(server, fd, options.backlog, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * Starts accepting on `fd` without making a net.Socket of each connection
 * (sockets/internals.ts): for connections that go straight to a process.
 */
export async function acceptConnectionsOn(
  fd: number,
  backlog: number,
  onConnection: (connection: AcceptedConnection) => void,
  onError: (code: string) => void,
): Promise<net.Server> {
  const server = await acceptOn(fd, { pauseOnConnect: true, allowHalfOpen: true, backlog }, () => {});
  takeAccepts(server, onConnection, onError);
  return server;
}

const acceptFailureReportMs = 60_000;

/** Logs a service's failed accepts (EMFILE, …): the first at once, the rest at most once a minute, with a count. */
export function acceptFailureReporter(label: string, log: Logger): (code: string) => void {
  const throttle = new ReportThrottle(acceptFailureReportMs);
  return (code) => {
    const more = throttle.heldBackNote();
    if (more !== null) log.error(label, `accept failed: ${code}${more}`);
  };
}

/** The address a client connected from, for per-source limits and logs. */
export function clientOf(socket: net.Socket): string {
  return clientName(socket.remoteAddress === undefined ? null : { address: socket.remoteAddress, family: socket.remoteFamily!, port: socket.remotePort! });
}

/** `clientOf` for a client's address; 'local' for a unix socket's (or a gone) client. */
export function clientName(peer: Address | null): string {
  if (peer === null) return 'local';
  return peer.family === 'IPv6' ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
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
    const more = this.#throttle.heldBackNote();
    if (more === null) return;
    this.log.warn(
      this.label,
      `reject client ${client}: ${this.queueLimit} clients are already waiting for a free slot; closed its connection${more}`,
    );
  }
}
