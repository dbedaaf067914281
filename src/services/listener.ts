// Accepting connections on an inherited listening fd as bare connections
// (no net.Socket until one is needed), the queue's sweep of clients that
// went while they waited, and the one sentence for refusing a client when a
// service's waiting queue is full.

import net from 'node:net';
import { counted, ReportThrottle, type Logger } from '../log.js';
import { takeAccepts, type AcceptedConnection, type Address } from '../sockets/internals.js';
import { listenOnFd } from '../sockets/listen-fds.js';
import type { Admission } from './admission.js';
import { connectionBudget, type BudgetHolder } from './connection-budget.js';

/**
 * Starts accepting on `fd` without making a net.Socket of each connection
 * (sockets/internals.ts), and without reading from it: a program started for
 * it gets every byte. Resolves once the server is listening.
 */
export function acceptConnectionsOn(
  fd: number,
  backlog: number,
  onConnection: (connection: AcceptedConnection) => void,
  onError: (code: string) => void,
): Promise<net.Server> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listenOnFd(server, fd, backlog, () => {
      server.off('error', reject);
      takeAccepts(server, onConnection, onError);
      resolve(server);
    });
  });
}

/** A client accepted and waiting for its turn, with who it is from (read once, at accept). */
export interface WaitingConnection {
  readonly connection: AcceptedConnection;
  readonly peer: Address | null;
  readonly client: string;
  readonly source: string;
}

export function waitingConnection(connection: AcceptedConnection, peer: Address | null): WaitingConnection {
  return { connection, peer, client: clientName(peer), source: peer?.address ?? 'local' };
}

/** The connection as a socket to close gently, its fd counted in `holder`'s budget until it is closed. */
export function letGo(connection: AcceptedConnection, holder: BudgetHolder): net.Socket {
  const socket = connection.toSocket();
  socket.once('close', () => connectionBudget.give(holder));
  return socket;
}

const goneSweepEveryMs = 1000;

/**
 * Before a full queue refuses anyone, the TCP clients in it that went while
 * they waited (reset: the kernel knows no peer for them any more) leave it;
 * a unix socket's clients never count as gone (see isGone).
 * Nothing reads a waiting client, so nothing else would notice before its
 * turn. At most once a second: a sweep asks the kernel about every client
 * in the queue.
 */
export class GoneSweep {
  #nextAt = 0;

  /** The gone clients taken out of `admission`'s queue if it is full, for the caller to close. */
  sweep(admission: Admission<WaitingConnection>): WaitingConnection[] {
    const now = performance.now();
    if (!admission.queueFull || now < this.#nextAt) return [];
    this.#nextAt = now + goneSweepEveryMs;
    return admission.withdrawWhere(({ connection }) => connection.isGone());
  }
}

const acceptFailureReportMs = 60_000;

/** Logs a service's failed accepts (EMFILE, …): the first at once, the rest at most once a minute, with a count. */
export function acceptFailureReporter(label: string, log: Logger): (code: string) => void {
  const throttle = new ReportThrottle(acceptFailureReportMs, (count) =>
    log.error(label, `accept failed ${counted(count, 'more time')} since the last report`),
  );
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
  // Not socket.setTimeout, which waits for closeGraceMs of silence: a client that keeps sending would never be cut.
  const cut = setTimeout(() => socket.destroy(), closeGraceMs);
  socket.once('close', () => clearTimeout(cut));
  socket.end();
  socket.resume();
}

const reportEveryMs = 60_000;

/** Closes a client the queue has no room for, and says so (at most once a minute, with a count). */
export class QueueOverflow {
  readonly #throttle = new ReportThrottle(reportEveryMs, (count) =>
    this.log.warn(this.label, `rejected ${counted(count, 'more client')} since the last report: ${this.queueLimit} clients were already waiting for a free slot`),
  );

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
