// Binding the table's sockets, in the launcher. Binding is separate from
// serving: the launcher binds, hands the fds to the supervisor, and closes its
// own copies (see launcher.ts for why that must happen without a turn of the
// event loop in between).

import dgram from 'node:dgram';
import { lstatSync, renameSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { formatSocket, type ServiceEntry, type SocketSpec } from '../config/entry.js';
import { errnoOf, WakeportError } from '../errors.js';
import { fdOfDgram, fdOfServer } from './internals.js';

export interface BoundSocket {
  readonly label: string;
  readonly fd: number;
  /** The real address: a port 0 in the table is the kernel's choice here. */
  readonly socket: SocketSpec;
  /** Closes the launcher's handle; the supervisor's copy of the fd stays open. */
  release(): void;
}

/** Called if the launcher's own handle ever serves a client: a bug, reported loudly. */
export type StrayTraffic = (label: string) => void;

export async function bindSocket(entry: ServiceEntry, onStray: StrayTraffic): Promise<BoundSocket> {
  try {
    const spec = entry.socket;
    if (spec.transport === 'udp') return await bindUdp(entry, spec, onStray);
    return await bindStream(entry, onStray);
  } catch (error) {
    throw bindError(entry, error);
  }
}

let temporaryCount = 0;

async function bindStream(entry: ServiceEntry, onStray: StrayTraffic): Promise<BoundSocket> {
  const server = net.createServer({ pauseOnConnect: true });
  server.on('connection', (socket) => {
    socket.destroy();
    onStray(entry.label);
  });
  const spec = entry.socket;
  if (spec.transport === 'unix') {
    // Bound under a temporary name and renamed into place: the rename
    // replaces a stale socket file atomically, and libuv's close() then
    // unlinks only the temporary name, leaving the supervisor's socket file.
    const temporary = path.join(path.dirname(spec.path), `.wp${process.pid}.${++temporaryCount}`);
    await listen(server, { path: temporary, backlog: entry.backlog });
    renameSync(temporary, spec.path);
    return { label: entry.label, fd: fdOfServer(server), socket: spec, release: () => server.close() };
  }
  await listen(server, { host: spec.host, port: spec.port, backlog: entry.backlog, ipv6Only: spec.family === 6, exclusive: true });
  const address = server.address() as net.AddressInfo;
  return {
    label: entry.label,
    fd: fdOfServer(server),
    socket: { ...spec, port: address.port },
    release: () => server.close(),
  };
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

type InetSpec = SocketSpec & { transport: 'tcp' | 'udp' };

async function bindUdp(entry: ServiceEntry, spec: InetSpec, onStray: StrayTraffic): Promise<BoundSocket> {
  const socket = dgram.createSocket({ type: spec.family === 6 ? 'udp6' : 'udp4', ipv6Only: spec.family === 6 });
  socket.on('message', () => onStray(entry.label));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: spec.host, port: spec.port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    label: entry.label,
    fd: fdOfDgram(socket),
    socket: { ...spec, port: socket.address().port },
    release: () => socket.close(),
  };
}

/**
 * Before binding a unix socket: a leftover socket file that nobody listens on
 * is stale and may be replaced; a live one, or a file of another kind, is an
 * error. This connects, so it must run before the binding starts.
 */
export async function checkUnixPath(entry: ServiceEntry): Promise<void> {
  if (entry.socket.transport !== 'unix') return;
  const socketPath = entry.socket.path;
  let isSocket: boolean;
  try {
    isSocket = lstatSync(socketPath).isSocket();
  } catch {
    return; // Nothing there.
  }
  const problem = !isSocket
    ? Object.assign(new Error('exists and is not a socket'), { code: 'EEXIST' })
    : (await isListenedOn(socketPath))
      ? Object.assign(new Error('in use'), { code: 'EADDRINUSE' })
      : null;
  if (problem) throw bindError(entry, problem);
}

function isListenedOn(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** `EADDRINUSE 127.0.0.1:8080 (service "web", services.conf:12): another program is listening there` */
export function bindError(entry: ServiceEntry, error: unknown): WakeportError {
  const errno = errnoOf(error) ?? 'EINVAL';
  const where = `${formatSocket(entry.socket)} (service "${entry.label}", ${entry.file}:${entry.line})`;
  const explanation = explainBindError(errno, entry.socket) ?? (error as Error | undefined)?.message ?? 'bind failed';
  return new WakeportError('ERR_BIND', `${errno} ${where}: ${explanation}`, { cause: error });
}

function explainBindError(errno: string, socket: SocketSpec): string | undefined {
  const unix = socket.transport === 'unix';
  switch (errno) {
    case 'EADDRINUSE':
      return unix
        ? 'another process is listening on this socket file'
        : 'another program is already bound to this address and port';
    case 'EACCES':
      return !unix && socket.port < 1024
        ? 'ports below 1024 need root (or CAP_NET_BIND_SERVICE)'
        : 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'this machine has no such address';
    case 'EEXIST':
      return 'the path exists and is not a socket; remove it or choose another path';
    case 'ENOENT':
      return "the socket's folder does not exist";
    default:
      return undefined;
  }
}
