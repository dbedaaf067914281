// A parent's one message to the process it starts with sockets (launcher →
// supervisor, supervisor → nowait host), over the IPC channel: the table,
// and which inherited fd serves which service. The sockets themselves
// travel as inherited fds (those the launcher binds after start go as bare
// handles: runtime/late-sockets.ts).

import type { ClientAccess, ServiceEntry, SocketSpec } from '../config/entry.js';
import type { LogOptions } from '../log.js';

export interface SocketAssignment {
  readonly label: string;
  /** Which of the entry's sockets. */
  readonly index: number;
  /** The fd number in the supervisor. */
  readonly fd: number;
  /** The real address (a port the kernel chose, for port 0). */
  readonly socket: SocketSpec;
}

export interface Hello {
  readonly type: 'hello';
  readonly log: LogOptions;
  /** How long a nowait host runs without a client or a running program before it exits; 0: never. */
  readonly idleExitMs?: number;
  readonly entries: readonly ServiceEntry[];
  readonly sockets: readonly SocketAssignment[];
  /** For the supervisor: the mark its wait workers carry (processes/environment.ts), which the launcher knows too. */
  readonly invocationId?: string;
  /** For a nowait host: the inherited pipe each service's programs share as stderr, by label. */
  readonly stderrFds?: Readonly<Record<string, number>>;
  /**
   * For a nowait host: the services other hosts serve too, by label. At its
   * part of their connections it stops accepting, so that a host with room
   * takes the next client.
   */
  readonly shared?: readonly string[];
}

/** Whether an IPC message is one of wakeport's of this type. */
export function hasType<T extends { readonly type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

export function isHello(message: unknown): message is Hello {
  return hasType<Hello>(message, 'hello');
}

/**
 * Supervisor → nowait host: stop accepting, and exit once every program has
 * finished. `access`: for each label the reloaded table still has, its
 * only-from/no-access, by which the host lets go of clients now refused.
 */
export interface DrainRequest {
  readonly type: 'drain';
  readonly access: Readonly<Record<string, ClientAccess>>;
}

/** Nowait host → supervisor: it no longer accepts (its copies of the listening sockets are closed). */
export interface DrainStarted {
  readonly type: 'drain-started';
}

/** Supervisor → launcher: it handles SIGTERM and SIGINT now, so the launcher may forward them. */
export interface Stoppable {
  readonly type: 'stoppable';
}

/**
 * Nowait host → supervisor, when it changes (at most ten times a second):
 * the programs it runs and the process groups ended programs left running,
 * by pid (or group id) and service label, and how many clients wait in its
 * queues. Should the host die, the supervisor still knows what to stop
 * (services/left-programs.ts).
 */
export interface ProgramsReport {
  readonly type: 'programs';
  readonly running: readonly (readonly [pid: number, label: string])[];
  readonly left: readonly (readonly [pgid: number, label: string])[];
  readonly waiting: number;
}

export function isDrainRequest(message: unknown): message is DrainRequest {
  return hasType<DrainRequest>(message, 'drain');
}
