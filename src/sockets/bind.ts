// Binding the table's sockets, in the launcher. Binding is separate from
// serving: the launcher binds, hands the fds to the supervisor, and closes its
// own copies (see launcher.ts for why that must happen without a turn of the
// event loop in between).

import dgram from 'node:dgram';
import { existsSync, lchownSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { formatSocket, type ServiceEntry, type SocketSpec } from '../config/entry.js';
import { errnoOf, WakeportError } from '../errors.js';
import type { Logger } from '../log.js';
import { rawHandleOf, type RawHandle } from './internals.js';

export interface BoundSocket {
  readonly label: string;
  /** Which of the entry's sockets. */
  readonly index: number;
  readonly fd: number;
  /** libuv's handle of it, to send to a running supervisor (see runtime/late-sockets.ts). */
  readonly handle: RawHandle;
  /** The real address: a port 0 in the table is the kernel's choice here. */
  readonly socket: SocketSpec;
  /** Closes the launcher's handle; the supervisor's copy of the fd stays open. */
  release(): void;
}

/** Called if the launcher's own handle ever serves a client: a bug, reported loudly. */
export type StrayTraffic = (label: string) => void;

export function reportStrayTraffic(log: Logger): StrayTraffic {
  return (label) => log.error(label, 'internal inconsistency: the launcher received traffic on its copy of the socket; please report');
}

/**
 * Starts the stretch from binding to closing the launcher's copies, in which
 * its event loop must not poll (it would accept); the function returned ends
 * it, and reports loudly if the loop did poll.
 */
export function withoutPolling(log: Logger): () => void {
  let polled = false;
  const guard = setImmediate(() => (polled = true));
  return () => {
    clearImmediate(guard);
    if (polled) log.error('wakeport', 'internal inconsistency: the event loop polled while the launcher held sockets; please report');
  };
}

/** Binds socket `index` of `entry`; throws ERR_BIND. */
export async function bindSocket(entry: ServiceEntry, index: number, onStray: StrayTraffic): Promise<BoundSocket> {
  const spec = entry.sockets[index]!.spec;
  const release = (handle: { close(): unknown }) => () => void handle.close();
  try {
    if (spec.transport === 'udp') {
      const socket = await bindUdp(spec, entry.label, onStray);
      const handle = rawHandleOf(socket);
      return { label: entry.label, index, fd: handle.fd, handle, socket: { ...spec, port: socket.address().port }, release: release(socket) };
    }
    const server = await bindStream(spec, entry, onStray);
    const actual = spec.transport === 'unix' ? spec : { ...spec, port: (server.address() as net.AddressInfo).port };
    const handle = rawHandleOf(server);
    return { label: entry.label, index, fd: handle.fd, handle, socket: actual, release: release(server) };
  } catch (error) {
    throw bindError(entry, index, error);
  }
}

let temporaryCount = 0;

async function bindStream(spec: SocketSpec, entry: ServiceEntry, onStray: StrayTraffic): Promise<net.Server> {
  const server = net.createServer({ pauseOnConnect: true });
  server.on('connection', (socket) => {
    socket.destroy();
    onStray(entry.label);
  });
  if (spec.transport === 'unix') {
    // Bound under a temporary name and renamed into place: the rename
    // replaces a stale socket file atomically, and libuv's close() then
    // unlinks only the temporary name, leaving the supervisor's socket file.
    const temporary = path.join(path.dirname(spec.path), `.wp${process.pid}.${++temporaryCount}`);
    await withUmask(spec.mode, () => listen(server, { path: temporary, backlog: entry.backlog }));
    try {
      // The folder may be another user's, who could put a symlink in the socket's place by now: nothing here follows one.
      if (spec.uid !== undefined || spec.gid !== undefined) lchownSync(temporary, spec.uid ?? -1, spec.gid ?? -1);
      renameSync(temporary, spec.path);
    } catch (error) {
      server.close();
      throw error;
    }
  } else {
    await listen(server, { host: spec.host, port: spec.port, backlog: entry.backlog, ipv6Only: spec.family === 6, exclusive: true });
  }
  return server;
}

/**
 * Runs `bind` (which binds at once: Node's listen() on a path calls bind()
 * before it returns) under the umask that gives a new socket file `mode`:
 * the file is created with it, where a chmod afterwards would follow a
 * symlink put in its place. The launcher runs no other code meanwhile.
 */
function withUmask<T>(mode: number | undefined, bind: () => T): T {
  if (mode === undefined) return bind();
  const before = process.umask(0o777 & ~mode);
  try {
    return bind();
  } finally {
    process.umask(before);
  }
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

async function bindUdp(spec: SocketSpec & { transport: 'tcp' | 'udp' }, label: string, onStray: StrayTraffic): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: spec.family === 6 ? 'udp6' : 'udp4', ipv6Only: spec.family === 6 });
  socket.on('message', () => onStray(label));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: spec.host, port: spec.port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // libuv keeps the fd of a failed bind in the handle: each retry would leak one.
    socket.close();
    throw error;
  }
  return socket;
}

/**
 * Before binding a unix socket: a leftover socket file that nobody listens on
 * is stale and may be replaced; a live one, or a file of another kind, is an
 * error. This connects, so it must run before the binding starts.
 */
export async function checkUnixPath(entry: ServiceEntry, index: number): Promise<void> {
  const spec = entry.sockets[index]!.spec;
  if (spec.transport !== 'unix') return;
  const socketPath = spec.path;
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
  if (problem) throw bindError(entry, index, problem);
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
function bindError(entry: ServiceEntry, index: number, error: unknown): WakeportError {
  const { spec: given } = entry.sockets[index]!;
  // libuv reports a unix socket's missing folder as EACCES.
  const folderGone = given.transport === 'unix' && errnoOf(error) === 'EACCES' && !existsSync(path.dirname(given.path));
  const errno = folderGone ? 'ENOENT' : (errnoOf(error) ?? 'EINVAL');
  const { spec, line } = entry.sockets[index]!;
  const where = `${formatSocket(spec)} (service "${entry.label}", ${entry.file}:${line})`;
  const explanation = explainBindError(errno, spec) ?? (error as Error | undefined)?.message ?? 'bind failed';
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

/** Only the socket files wakeport made: adopted ones belong to whoever made them. */
export function removeSocketFiles(socketFiles: readonly string[]): void {
  for (const file of socketFiles) {
    try {
      unlinkSync(file);
    } catch {
      // Already gone, or never bound.
    }
  }
}
