// The one place wakeport touches Node internals. Node has no public way to
// get the fd behind a listening socket, and a child can only be given a
// socket as an fd number (NODE-FACTS 2–3); a listening socket sent over IPC
// without starting to accept must go as libuv's bare handle; and a server
// cannot stop accepting for a while (NODE-FACTS 5). And the nowait hot path — accept
// a connection, start a process with it, forget it — goes below net.Socket
// and child_process, which build streams, events and option objects that a
// nowait host never uses, and below process.kill, which throws. Measured (3 interleaved rounds, 8 clients): a
// bare accept-and-spawn loop spends 0.33–0.41 ms of CPU per connection
// instead of 0.63–0.67 (the accept and the spawn save about equally), and
// wakeport's hosts 0.43–0.47 ms instead of 0.58–0.66.
// test/sockets/internals.test.ts fails loudly if a Node upgrade moves any
// of this.

import type dgram from 'node:dgram';
import net from 'node:net';
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { WakeportError } from '../errors.js';

interface HandleWithFd {
  readonly fd?: unknown;
}

function dgramHandle(socket: dgram.Socket): HandleWithFd | undefined {
  const stateKey = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'state symbol');
  const state = stateKey === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: HandleWithFd }>)[stateKey];
  return state?.handle;
}

// ---- sending a listening socket over IPC without it accepting ----

/**
 * libuv's handle of a listening socket, bare. Node's IPC sends a net.Server
 * as a server that starts accepting in the receiver, but a bare handle
 * (its "net.Native" and "dgram.Native") as it is: it arrives neither
 * accepting nor reading, an fd the receiver can hold idle and hand on.
 */
export interface RawHandle {
  readonly fd: number;
  close(): void;
}

/** The bare handle of a listening server or bound UDP socket, to send over IPC. */
export function rawHandleOf(socket: net.Server | dgram.Socket): RawHandle {
  const handle = socket instanceof net.Server ? serverHandle(socket) : dgramHandle(socket);
  return asRawHandle(handle, socket instanceof net.Server ? 'net.Server._handle' : 'dgram.Socket[state symbol].handle');
}

/** What arrived with an IPC message that carried a bare handle. */
export function receivedRawHandle(handle: unknown): RawHandle {
  return asRawHandle(handle, 'a bare handle received over IPC');
}

function asRawHandle(handle: unknown, where: string): RawHandle {
  const candidate = handle as Partial<RawHandle> | null | undefined;
  checkedFd(candidate?.fd, `${where}.fd`);
  if (typeof candidate?.close !== 'function') throw moved(`${where}.close`);
  return candidate as RawHandle;
}

function checkedFd(fd: unknown, where: string): number {
  if (typeof fd === 'number' && Number.isInteger(fd) && fd >= 0) return fd;
  throw moved(where);
}

function moved(where: string): WakeportError {
  return new WakeportError(
    'ERR_NODE_INTERNALS',
    `cannot find ${where} in Node ${process.version}; wakeport needs updating for this Node`,
  );
}

// ---- accepting without a net.Socket ----

export interface Address {
  readonly address: string;
  readonly family: string;
  readonly port: number;
}

/** libuv's TCP or pipe handle of an accepted connection (tcp_wrap, pipe_wrap). */
interface StreamHandle {
  readonly fd: number;
  getpeername?(out: object): number;
  getsockname?(out: object): number;
  close(): void;
}

interface ServerHandle extends HandleWithFd {
  onconnection: (status: number, client: StreamHandle | undefined) => void;
  readStart?(): number;
  readStop?(): number;
}

function serverHandle(server: net.Server): ServerHandle | null | undefined {
  return (server as unknown as { _handle?: ServerHandle | null })._handle;
}

/** A connection as libuv accepted it: an fd and its addresses, with no stream around it. */
export class AcceptedConnection {
  readonly #handle: StreamHandle;
  // Read once: both the admission (per-source limits, logs) and the program's environment need it.
  #peer: Address | null | undefined;

  constructor(handle: StreamHandle) {
    this.#handle = handle;
  }

  get fd(): number {
    return this.#handle.fd;
  }

  /** The client's address; null for a unix socket, or when the client was gone by the first call. */
  peer(): Address | null {
    if (this.#peer === undefined) this.#peer = this.#address('getpeername');
    return this.#peer;
  }

  /**
   * Whether a TCP client has gone (reset, or closed before it was accepted):
   * the kernel then knows no peer. Always false for a unix socket, which
   * has no peer address to ask for.
   */
  isGone(): boolean {
    return typeof this.#handle.getpeername === 'function' && this.#address('getpeername') === null;
  }

  /** The address the client connected to; null for a unix socket. */
  local(): Address | null {
    return this.#address('getsockname');
  }

  /**
   * The connection as a net.Socket: for refusals, and for internal services.
   * `onread` is net.Socket's option of that name (reads go into the caller's
   * buffer and to its callback, not through the stream).
   */
  toSocket(onread?: net.OnReadOpts): net.Socket {
    return new net.Socket({ handle: this.#handle, allowHalfOpen: true, onread } as net.SocketConstructorOpts);
  }

  close(): void {
    this.#handle.close();
  }

  #address(which: 'getpeername' | 'getsockname'): Address | null {
    const out: Partial<Address> = {};
    const status = this.#handle[which]?.call(this.#handle, out);
    return status === 0 && typeof out.address === 'string' ? (out as Address) : null;
  }
}

/**
 * Takes over a listening server's accepts: each connection arrives as an
 * AcceptedConnection — unread, as with pauseOnConnect, and not counted by
 * the server — and a failed accept as its error code (EMFILE, …). Throws
 * ERR_NODE_INTERNALS when this Node lacks the accept hook, or the binding
 * spawnDirect needs for those connections: before the first client, not on it.
 */
export function takeAccepts(server: net.Server, onConnection: (connection: AcceptedConnection) => void, onError: (code: string) => void): void {
  const handle = serverHandle(server);
  if (typeof handle?.onconnection !== 'function') throw moved('net.Server._handle.onconnection');
  if (typeof handle.readStart !== 'function' || typeof handle.readStop !== 'function') throw moved('net.Server._handle.readStart');
  processBinding();
  handle.onconnection = (status, client) => {
    if (status < 0 || !client) onError(errorCode(status));
    else onConnection(new AcceptedConnection(client));
  };
}

/**
 * Stops (false) or starts again (true) accepting on a server listening on
 * an inherited fd: clients wait in the kernel's backlog meanwhile, where
 * another process sharing the socket may accept them. Node has no public
 * way (NODE-FACTS 5). libuv polls a listening stream for its accepts, and
 * stops and restarts that poll when a stream's reading stops and starts
 * (reading itself never happens: a listening socket's poll calls its
 * accepts). A socket Node bound itself cannot start reading (ENOTCONN).
 * libuv restarts the poll with each accept: a pause must be made again
 * after any client accepted while paused.
 */
export function setAccepting(server: net.Server, accepting: boolean): void {
  const handle = serverHandle(server);
  if (!handle) return; // Closed: nothing accepts.
  // EALREADY when it is reading already: what counts is the stop after it.
  handle.readStart!();
  if (!accepting) handle.readStop!();
}

/**
 * Checks, before any client comes, that this Node still has what nowait
 * hosts use: the accept hook (on a server listening on an abstract unix
 * socket, which leaves no file and takes no port) and the process binding.
 * Throws ERR_NODE_INTERNALS; otherwise a host would fail on every client.
 */
export async function checkNowaitInternals(): Promise<void> {
  const server = net.createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(`\0wakeport-check-${process.pid}`, () => resolve(true));
  });
  try {
    if (listening) takeAccepts(server, () => {}, () => {});
    else processBinding();
  } finally {
    if (listening) server.close();
  }
}

// ---- starting a process without child_process ----

interface ProcessHandle {
  pid?: number;
  onexit: (exitCode: number, signalCode: string) => void;
  spawn(options: object): number;
  close(): void;
}

type ProcessConstructor = new () => ProcessHandle;

let processConstructor: ProcessConstructor | undefined;

/** The binding child_process itself spawns with. */
function processBinding(): ProcessConstructor {
  if (processConstructor) return processConstructor;
  const binding = (process as unknown as { binding(name: string): { Process?: unknown } }).binding('process_wrap');
  const found = binding.Process;
  if (typeof found !== 'function' || typeof (found.prototype as { spawn?: unknown }).spawn !== 'function') {
    throw moved("process.binding('process_wrap').Process");
  }
  return (processConstructor = found as ProcessConstructor);
}

export interface DirectSpawn {
  readonly file: string;
  /** The whole argv, argv[0] included. */
  readonly args: readonly string[];
  /** NAME=value */
  readonly envPairs: readonly string[];
  readonly cwd?: string;
  readonly uid?: number;
  readonly gid?: number;
  /** The fds the child gets as its 0, 1, 2, …; null leaves that one closed. */
  readonly stdio: readonly (number | null)[];
  readonly detached: boolean;
}

/**
 * Starts a process; returns its pid, or the error code (ENOENT, EACCES, …)
 * when it could not start. `onExit` is called once, as child_process's
 * 'exit' is: (code, null) or (null, signal).
 */
export function spawnDirect(
  request: DirectSpawn,
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void,
): { readonly pid: number } | { readonly errno: string } {
  const handle = new (processBinding())();
  handle.onexit = (exitCode, signalCode) => {
    handle.close();
    if (signalCode) onExit(null, signalCode as NodeJS.Signals);
    else onExit(exitCode, null);
  };
  const status = handle.spawn({
    ...request,
    stdio: request.stdio.map((fd) => (fd === null ? { type: 'ignore' } : { type: 'fd', fd })),
  });
  if (status === 0 && handle.pid !== undefined) return { pid: handle.pid };
  handle.close();
  return { errno: errorCode(status) };
}

/**
 * Whether process group `pgid` still has a member (one wakeport may not
 * signal counts). process.kill() throws when it has none, the usual answer
 * once a program has ended: about 10 µs for the exception, 0.5 for
 * process._kill below it, which returns the error. Without it (a Node that
 * moved it), the same answer the slow way.
 */
export function processGroupExists(pgid: number): boolean {
  const kill = (process as unknown as { _kill?: unknown })._kill;
  if (typeof kill !== 'function') return processGroupExistsSlowly(pgid);
  const status = (kill as (pid: number, signal: number) => number).call(process, -pgid, 0);
  return status === 0 || status === -constants.errno.EPERM;
}

function processGroupExistsSlowly(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** ENOENT, EMFILE, … for libuv's negative status; EINVAL for a failure without one. */
function errorCode(status: number): string {
  return getSystemErrorName(status < 0 ? status : -constants.errno.EINVAL);
}
