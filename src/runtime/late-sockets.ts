// Sockets bound after start. A service whose socket could not be bound at
// start (a port in use, an address or folder not there yet) is tried again,
// as OpenBSD inetd does, after a pause that doubles from 1 s up to a minute,
// until it binds or wakeport stops; the other services are served meanwhile.
//
// How a socket reaches the running supervisor: the launcher binds it and,
// before its event loop polls (so that it never accepts: NODE-FACTS 5),
// sends libuv's bare handle of it over IPC and closes its own copy. A bare
// handle arrives neither accepting nor reading (sockets/internals.ts), so
// the supervisor holds it as it holds an inherited fd. Node sends one
// handle at a time, the next once the receiver has acknowledged the last,
// and a handle queued that way would be closed before it is sent: so each
// socket goes alone, and the next is bound only once the supervisor has
// said it took the last. A service is served with all its sockets or not
// at all: if a later one fails, the supervisor closes those it took.

import type { ChildProcess, SendHandle } from 'node:child_process';
import { formatSocket, type ServiceEntry, type SocketSpec } from '../config/entry.js';
import { formatDuration, type Logger } from '../log.js';
import { bindSocket, checkUnixPath, type BoundSocket } from '../sockets/bind.js';
import { receivedRawHandle, type RawHandle } from '../sockets/internals.js';
import type { SocketAssignment } from './hello.js';

/** Launcher → supervisor, with the socket's bare handle. */
interface LateSocket {
  readonly type: 'late-socket';
  readonly label: string;
  readonly index: number;
  readonly socket: SocketSpec;
}

/** Supervisor → launcher: it holds the socket (error null), or why not. */
interface LateSocketTaken {
  readonly type: 'late-socket-taken';
  readonly label: string;
  readonly index: number;
  readonly error: string | null;
}

/** Launcher → supervisor: a later socket of the service failed; close the ones taken. */
interface LateSocketsDropped {
  readonly type: 'late-sockets-dropped';
  readonly label: string;
}

type Message = LateSocket | LateSocketTaken | LateSocketsDropped;

function isMessage<T extends Message['type']>(message: unknown, type: T): message is Extract<Message, { type: T }> {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

export const firstRetryMs = 1000;
const maxRetryMs = 60_000;
const replyTimeoutMs = 10_000;
const subject = 'wakeport';

/** Launcher side: binds the services that could not be bound at start, and sends their sockets to the supervisor. */
export class BindRetries {
  readonly #supervisor: ChildProcess;
  readonly #log: Logger;
  /** Services not bound yet, with their tries so far. */
  readonly #waiting: Map<ServiceEntry, number>;
  /** Unix socket files bound here, for the launcher to remove at exit. */
  readonly #socketFiles: string[];
  readonly #startedAt = Date.now();
  #pauseMs = firstRetryMs;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  readonly #replies = new Map<string, (reply: LateSocketTaken) => void>();

  constructor(supervisor: ChildProcess, entries: readonly ServiceEntry[], socketFiles: string[], log: Logger) {
    this.#supervisor = supervisor;
    this.#log = log;
    this.#socketFiles = socketFiles;
    this.#waiting = new Map(entries.map((entry) => [entry, 0]));
    supervisor.on('message', (message) => {
      if (!isMessage(message, 'late-socket-taken')) return;
      this.#replies.get(replyKey(message.label, message.index))?.(message);
    });
    supervisor.once('exit', () => this.stop());
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped || this.#waiting.size === 0) return;
    // Unreferenced: the launcher lives as long as its supervisor, and not for a retry.
    this.#timer = setTimeout(() => void this.#tryAll(), this.#pauseMs).unref();
    this.#pauseMs = Math.min(this.#pauseMs * 2, maxRetryMs);
  }

  async #tryAll(): Promise<void> {
    for (const [entry, tries] of this.#waiting) {
      if (this.#stopped) return;
      this.#waiting.set(entry, tries + 1);
      if (!(await this.#tryService(entry))) continue;
      this.#waiting.delete(entry);
      const after = formatDuration(Date.now() - this.#startedAt);
      this.#log.info(entry.label, `bound ${entry.sockets.map(({ spec }) => formatSocket(spec)).join(', ')} on try ${tries + 1}, ${after} after start`);
    }
    this.#schedule();
  }

  /** Binds and sends each socket of `entry` in turn; true once the supervisor holds them all. */
  async #tryService(entry: ServiceEntry): Promise<boolean> {
    for (let index = 0; index < entry.sockets.length; index++) {
      const problem = await this.#bindAndSend(entry, index);
      if (problem === null) continue;
      this.#log.debug(entry.label, `still cannot bind: ${problem}`);
      if (index > 0) this.#supervisor.send({ type: 'late-sockets-dropped', label: entry.label } satisfies LateSocketsDropped);
      return false;
    }
    return true;
  }

  /** Null once the supervisor holds socket `index` of `entry`; otherwise why not. */
  async #bindAndSend(entry: ServiceEntry, index: number): Promise<string | null> {
    try {
      await checkUnixPath(entry, index); // It connects: before the stretch without polling.
    } catch (error) {
      return (error as Error).message;
    }
    if (this.#stopped || !this.#supervisor.connected) return 'wakeport is stopping';
    // From here to release(), nothing may wait for I/O.
    let polled = false;
    const guard = setImmediate(() => (polled = true));
    let bound: BoundSocket;
    try {
      bound = await bindSocket(entry, index, () =>
        this.#log.error(entry.label, 'internal inconsistency: the launcher received traffic on its copy of the socket; please report'),
      );
    } catch (error) {
      clearImmediate(guard);
      return (error as Error).message;
    }
    const reply = this.#replyFor(entry.label, index);
    const message: LateSocket = { type: 'late-socket', label: entry.label, index, socket: bound.socket };
    this.#supervisor.send(message, bound.handle as unknown as SendHandle, {}, () => {});
    bound.release();
    clearImmediate(guard);
    if (polled) this.#log.error(subject, 'internal inconsistency: the event loop polled while the launcher held a socket; please report');
    if (bound.socket.transport === 'unix') this.#socketFiles.push(bound.socket.path);
    return (await reply).error;
  }

  #replyFor(label: string, index: number): Promise<LateSocketTaken> {
    const key = replyKey(label, index);
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer({ type: 'late-socket-taken', label, index, error: 'the supervisor did not answer' }), replyTimeoutMs).unref();
      const answer = (reply: LateSocketTaken) => {
        clearTimeout(timer);
        this.#replies.delete(key);
        resolve(reply);
      };
      this.#replies.set(key, answer);
    });
  }
}

function replyKey(label: string, index: number): string {
  return `${index}:${label}`;
}

/** Supervisor side: what to do with a service once all its sockets have arrived. */
export type StartLate = (entry: ServiceEntry, sockets: readonly SocketAssignment[], close: () => void) => Promise<void>;

/**
 * Supervisor side: takes the sockets the launcher binds after start, checks
 * each (`check`: a sentence when the fd is not what the table says, as for
 * inherited fds), and calls `start` once a service has all of its sockets.
 * `stop()` refuses any that arrive later.
 */
export function receiveLateSockets(
  entries: readonly ServiceEntry[],
  check: (assignment: SocketAssignment) => string | null,
  start: StartLate,
  log: Logger,
): { stop(): Promise<void> } {
  const held = new Map<string, { assignment: SocketAssignment; handle: RawHandle }[]>();
  // The handles of services started: they own the fds, so they are kept for the supervisor's life.
  const kept = new Set<RawHandle>();
  let stopped = false;
  const closeHeld = (label: string) => {
    for (const { handle } of held.get(label) ?? []) handle.close();
    held.delete(label);
  };
  const take = (message: LateSocket, received: unknown): string | null => {
    const entry = entries.find(({ label }) => label === message.label);
    if (!entry) return `no service "${message.label}"`;
    let handle: RawHandle;
    try {
      handle = receivedRawHandle(received);
    } catch (error) {
      return (error as Error).message;
    }
    const assignment: SocketAssignment = { label: message.label, index: message.index, fd: handle.fd, socket: message.socket };
    const problem = stopped ? 'the supervisor is stopping' : check(assignment);
    if (problem !== null) {
      handle.close();
      return problem;
    }
    const sockets = [...(held.get(entry.label) ?? []), { assignment, handle }];
    held.set(entry.label, sockets);
    if (sockets.length === entry.sockets.length) {
      held.delete(entry.label);
      for (const socket of sockets) kept.add(socket.handle);
      const assignments = sockets.map((socket) => socket.assignment).sort((a, b) => a.index - b.index);
      void start(entry, assignments, () => sockets.forEach((socket) => (kept.delete(socket.handle), socket.handle.close())));
    }
    return null;
  };
  process.on('message', (message: unknown, received: unknown) => {
    if (isMessage(message, 'late-sockets-dropped')) {
      if (held.has(message.label)) log.warn(message.label, 'a later socket of the service could not be bound: closing the ones bound so far');
      closeHeld(message.label);
      return;
    }
    if (!isMessage(message, 'late-socket')) return;
    const error = take(message, received);
    if (error !== null) log.error(message.label, `cannot take ${formatSocket(message.socket)} bound after start: ${error}`);
    const reply: LateSocketTaken = { type: 'late-socket-taken', label: message.label, index: message.index, error };
    process.send?.(reply, () => {});
  });
  return {
    stop() {
      stopped = true;
      for (const label of [...held.keys()]) closeHeld(label);
      return Promise.resolve();
    },
  };
}
