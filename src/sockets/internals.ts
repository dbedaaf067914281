// The one place wakeport touches Node internals: the file descriptor number
// behind a listening net.Server or a bound dgram.Socket. Node has no public
// way to get it, and a child can only be given a socket as an fd number
// (NODE-FACTS 2–3). test/sockets/internals.test.ts fails loudly if a Node
// upgrade moves these.

import type dgram from 'node:dgram';
import type net from 'node:net';
import { WakeportError } from '../errors.js';

interface HandleWithFd {
  readonly fd?: unknown;
}

/** The fd of a listening TCP or unix-stream server. */
export function fdOfServer(server: net.Server): number {
  const handle = (server as unknown as { _handle?: HandleWithFd | null })._handle;
  return checkedFd(handle?.fd, 'net.Server._handle.fd');
}

/** The fd of a bound UDP socket, from the handle kept under dgram's "state symbol". */
export function fdOfDgram(socket: dgram.Socket): number {
  const stateKey = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'state symbol');
  const state = stateKey === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: HandleWithFd }>)[stateKey];
  return checkedFd(state?.handle?.fd, 'dgram.Socket[state symbol].handle.fd');
}

function checkedFd(fd: unknown, where: string): number {
  if (typeof fd === 'number' && Number.isInteger(fd) && fd >= 0) return fd;
  throw new WakeportError(
    'ERR_NODE_INTERNALS',
    `cannot find the file descriptor at ${where} in Node ${process.version}; wakeport needs updating for this Node`,
  );
}
