import type net from 'node:net';

/** One of inetd's internal services: how it serves a connection, and how it answers a datagram. */
export interface Builtin {
  /** Serves one connection. The caller handles socket errors. */
  stream(socket: net.Socket): void;
  /** The answer to one datagram, or null for none. */
  datagram(message: Buffer): Buffer | null;
}
