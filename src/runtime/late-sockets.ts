// Sockets bound after start. A service whose socket could not be bound at
// start (a port in use, an address or folder not there yet) is tried again,
// as OpenBSD inetd does, after a pause that doubles from 1 s up to a minute,
// until it binds or wakeport stops; the other services are served meanwhile.
// Services a reloaded table adds are bound the same way (reload.ts), and
// those it moves to other sockets once the supervisor has let the old go.
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
import { bindSocket, checkUnixPath, removeSocketFiles, reportStrayTraffic, withoutPolling, type BoundSocket } from '../sockets/bind.js';
import { receivedRawHandle, type RawHandle } from '../sockets/internals.js';
import { hasType, type SocketAssignment } from './hello.js';
import { noteSocket, type ServedSocket } from './escapees.js';
import type { Inbox } from './lifecycle.js';

/** Launcher → supervisor, with the socket's bare handle. */
interface LateSocket {
  readonly type: 'late-socket';
  readonly label: string;
  readonly index: number;
  readonly socket: SocketSpec;
}

/** Supervisor → launcher: it holds the socket (error null), or why not; `served`: it serves the service already, nothing is to be bound. */
interface LateSocketTaken {
  readonly type: 'late-socket-taken';
  readonly label: string;
  readonly index: number;
  readonly error: string | null;
  readonly served?: boolean;
}

/** Supervisor → launcher: bind these services (a reload moved them, and their old sockets are let go). */
interface BindRequest {
  readonly type: 'bind';
  readonly entries: readonly ServiceEntry[];
}

/** Supervisor side: asks the launcher to bind `entries`. */
export function askToBind(entries: readonly ServiceEntry[]): void {
  const request: BindRequest = { type: 'bind', entries };
  process.send?.(request, () => {});
}

/** Launcher → supervisor: a later socket of the service failed; close the ones taken. */
interface LateSocketsDropped {
  readonly type: 'late-sockets-dropped';
  readonly label: string;
}

const firstRetryMs = 1000;
/** What follows a failed bind in the log. */
export const retryNote = `the other services go on; trying again in ${formatDuration(firstRetryMs)}, then less often`;
const maxRetryMs = 60_000;

/**
 * Launcher side: binds the services that could not be bound at start, and
 * those a reloaded table adds, and sends their sockets to the supervisor.
 */
export class BindRetries {
  readonly #supervisor: ChildProcess;
  readonly #log: Logger;
  /** Services not bound yet, by label, with their tries so far and when the first was. */
  readonly #waiting = new Map<string, { entry: ServiceEntry; tries: number; since: number }>();
  /** Unix socket files bound here, for the launcher to remove at exit. */
  readonly #socketFiles: string[];
  /** The sockets the supervisor serves, by inode: each one bound here is added (runtime/escapees.ts). */
  readonly #served: Map<string, ServedSocket>;
  #pauseMs = firstRetryMs;
  #timer: NodeJS.Timeout | null = null;
  /** A round of tries is running: another waits for it (one socket in flight at a time). */
  #trying: Promise<void> | null = null;
  #stopped = false;
  readonly #replies = new Map<string, (reply: LateSocketTaken) => void>();

  constructor(supervisor: ChildProcess, entries: readonly ServiceEntry[], socketFiles: string[], served: Map<string, ServedSocket>, log: Logger) {
    this.#supervisor = supervisor;
    this.#log = log;
    this.#socketFiles = socketFiles;
    this.#served = served;
    // Their first try was at start, and was logged there.
    for (const entry of entries) this.#waiting.set(entry.label, { entry, tries: 1, since: Date.now() });
    supervisor.on('message', (message) => {
      if (hasType<BindRequest>(message, 'bind')) this.#bindNow(message.entries);
      if (!hasType<LateSocketTaken>(message, 'late-socket-taken')) return;
      this.#replies.get(replyKey(message.label, message.index))?.(message);
    });
    supervisor.once('exit', () => this.stop());
    this.#schedule();
  }

  /** A reloaded table: `toBind` are to be bound now; those waiting that it no longer has are forgotten. */
  reload(entries: readonly ServiceEntry[], toBind: readonly string[]): void {
    const next = new Map(entries.map((entry) => [entry.label, entry]));
    for (const [label, waiting] of this.#waiting) {
      const entry = next.get(label);
      if (entry) waiting.entry = entry;
      else this.#waiting.delete(label);
    }
    this.#bindNow(toBind.flatMap((label) => next.get(label) ?? []));
  }

  /** Binds `entries` at once (their first try), and those still waiting with them. */
  #bindNow(entries: readonly ServiceEntry[]): void {
    for (const entry of entries) {
      if (!this.#waiting.has(entry.label)) this.#waiting.set(entry.label, { entry, tries: 0, since: Date.now() });
    }
    this.#pauseMs = firstRetryMs;
    if (this.#timer) clearTimeout(this.#timer);
    void this.#tryAll();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#stopped || this.#waiting.size === 0) return;
    // Unreferenced: the launcher lives as long as its supervisor, and not for a retry.
    this.#timer = setTimeout(() => void this.#tryAll(), this.#pauseMs).unref();
    this.#pauseMs = Math.min(this.#pauseMs * 2, maxRetryMs);
  }

  async #tryAll(): Promise<void> {
    while (this.#trying) await this.#trying;
    this.#trying = this.#tryEach();
    await this.#trying;
    this.#trying = null;
    this.#schedule();
  }

  async #tryEach(): Promise<void> {
    for (const [label, waiting] of this.#waiting) {
      if (this.#stopped) return;
      waiting.tries++;
      const tried = await this.#tryService(waiting.entry);
      if (!this.#waiting.has(label)) continue; // The supervisor serves it already.
      // The first try of a service a reload added is logged as a failure at start is.
      if ('problem' in tried && waiting.tries === 1) this.#log.error('wakeport', `${tried.problem}; ${retryNote}`);
      if ('problem' in tried) continue;
      this.#waiting.delete(label);
      const sockets = tried.bound.map(formatSocket).join(', ');
      const after = waiting.tries === 1 ? '' : `, ${formatDuration(Date.now() - waiting.since)} after the first`;
      this.#log.info(label, `bound ${sockets} on try ${waiting.tries}${after}`);
    }
  }

  /**
   * Binds and sends each socket of `entry` in turn: what was bound (a port
   * 0 with the port the kernel chose) once the supervisor holds them all,
   * or why not.
   */
  async #tryService(entry: ServiceEntry): Promise<{ bound: SocketSpec[] } | { problem: string }> {
    const bound: SocketSpec[] = [];
    for (let index = 0; index < entry.sockets.length; index++) {
      const tried = await this.#bindAndSend(entry, index);
      if ('socket' in tried) {
        bound.push(tried.socket);
        continue;
      }
      this.#log.debug(entry.label, `not bound yet: ${tried.problem}`);
      if (index > 0) this.#supervisor.send({ type: 'late-sockets-dropped', label: entry.label } satisfies LateSocketsDropped, () => {});
      return tried;
    }
    return { bound };
  }

  /** The socket, once the supervisor holds socket `index` of `entry`; otherwise why not. */
  async #bindAndSend(entry: ServiceEntry, index: number): Promise<{ socket: SocketSpec } | { problem: string }> {
    try {
      await checkUnixPath(entry, index); // It connects: before the stretch without polling.
    } catch (error) {
      return { problem: (error as Error).message };
    }
    if (this.#stopped || !this.#supervisor.connected) return { problem: 'wakeport is stopping' };
    // From here to release(), nothing may wait for I/O.
    const endStretch = withoutPolling(this.#log);
    let bound: BoundSocket;
    try {
      bound = await bindSocket(entry, index, reportStrayTraffic(this.#log));
    } catch (error) {
      endStretch();
      return { problem: (error as Error).message };
    }
    const reply = this.#replyFor(entry.label, index);
    const message: LateSocket = { type: 'late-socket', label: entry.label, index, socket: bound.socket };
    this.#supervisor.send(message, bound.handle as unknown as SendHandle, {}, () => {});
    noteSocket(this.#served, bound.fd, { label: entry.label, socket: bound.socket, exitTimeoutMs: entry.exitTimeoutMs });
    bound.release();
    endStretch();
    const { error, served } = await reply;
    if (served) this.#waiting.delete(entry.label);
    if (bound.socket.transport === 'unix') {
      // The file is wakeport's while the supervisor holds the socket; one it refused goes now.
      if (error !== null) removeSocketFiles([bound.socket.path]);
      else if (!this.#socketFiles.includes(bound.socket.path)) this.#socketFiles.push(bound.socket.path);
    }
    return error === null ? { socket: bound.socket } : { problem: error };
  }

  /** The supervisor's answer about socket `index` of `label`: it always answers, unless it exits first. */
  #replyFor(label: string, index: number): Promise<LateSocketTaken> {
    const key = replyKey(label, index);
    return new Promise((resolve) => {
      const answer = (reply: LateSocketTaken) => {
        this.#supervisor.off('exit', onExit);
        this.#replies.delete(key);
        resolve(reply);
      };
      const onExit = () => answer({ type: 'late-socket-taken', label, index, error: 'the supervisor exited' });
      this.#supervisor.once('exit', onExit);
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
 * Supervisor side: takes the sockets the launcher binds after start, for
 * services of the table as it is now (`entries`) that are not served yet
 * (`isServed`); checks each (`check`: a sentence when the fd is not what the
 * table says, as for inherited fds); and calls `start` once a service has
 * all of its sockets. `stop()` refuses any that arrive later.
 */
export function receiveLateSockets(
  inbox: Inbox,
  entries: () => readonly ServiceEntry[],
  isServed: (label: string) => boolean,
  check: (assignment: SocketAssignment) => string | null,
  start: StartLate,
  log: Logger,
): { stop(): void } {
  /** The sockets of services not complete yet, by label and index. */
  const held = new Map<string, Map<number, { assignment: SocketAssignment; handle: RawHandle }>>();
  let stopped = false;
  const closeHeld = (label: string) => {
    for (const { handle } of held.get(label)?.values() ?? []) handle.close();
    held.delete(label);
  };
  const take = (message: LateSocket, received: unknown): string | null => {
    let handle: RawHandle;
    try {
      handle = receivedRawHandle(received);
    } catch (error) {
      return (error as Error).message;
    }
    const entry = entries().find(({ label }) => label === message.label);
    const assignment: SocketAssignment = { label: message.label, index: message.index, fd: handle.fd, socket: message.socket };
    const problem = stopped
      ? 'the supervisor is stopping'
      : !entry
        ? `no service "${message.label}" in the table`
        : isServed(entry.label)
          ? `service "${entry.label}" is already served`
          : !isBoundAs(message.socket, entry.sockets[message.index]?.spec)
            ? 'bound from an older table (a reload changed the address)'
            : check(assignment);
    if (problem !== null || !entry) {
      handle.close();
      return problem;
    }
    const sockets = held.get(entry.label) ?? new Map();
    sockets.get(message.index)?.handle.close(); // Sent again: the launcher's earlier try failed later on.
    sockets.set(message.index, { assignment, handle });
    held.set(entry.label, sockets);
    if (sockets.size < entry.sockets.length) return null;
    held.delete(entry.label);
    const complete = [...sockets.values()].sort((a, b) => a.assignment.index - b.assignment.index);
    void start(
      entry,
      complete.map(({ assignment }) => assignment),
      () => complete.forEach(({ handle }) => handle.close()),
    );
    return null;
  };
  inbox.listen((message, received) => {
    if (hasType<LateSocketsDropped>(message, 'late-sockets-dropped')) {
      if (held.has(message.label)) log.debug(message.label, 'a later socket of the service could not be bound: closing the ones bound so far');
      closeHeld(message.label);
      return;
    }
    if (!hasType<LateSocket>(message, 'late-socket')) return;
    const served = isServed(message.label);
    const error = take(message, received);
    if (error !== null && !stopped && !served) log.error(message.label, `cannot take ${formatSocket(message.socket)} bound after start: ${error}`);
    const reply: LateSocketTaken = { type: 'late-socket-taken', label: message.label, index: message.index, error, served };
    process.send?.(reply, () => {});
  });
  return {
    stop() {
      stopped = true;
      for (const label of [...held.keys()]) closeHeld(label);
    },
  };
}

/** Whether a socket bound as `actual` is the one the table's `spec` asks for (a port 0 is the kernel's choice). */
function isBoundAs(actual: SocketSpec, spec: SocketSpec | undefined): boolean {
  if (spec === undefined) return false;
  if (spec.transport === 'unix') return actual.transport === 'unix' && actual.path === spec.path;
  if (actual.transport === 'unix') return false;
  return spec.transport === actual.transport && spec.host === actual.host && spec.family === actual.family && (spec.port === 0 || spec.port === actual.port);
}
