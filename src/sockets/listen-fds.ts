// The socket-activation protocol of systemd (and of wakeport itself towards
// its workers): sockets at fd 3, 4, … with LISTEN_FDS = how many,
// LISTEN_PID = the pid they are meant for, LISTEN_FDNAMES = their names,
// colon-separated.

import { fstatSync } from 'node:fs';
import type net from 'node:net';
import { WakeportError } from '../errors.js';

export const firstListenFd = 3;

/**
 * server.listen() on an inherited listening socket. Node calls listen()
 * again on it, with a backlog of 511 unless told otherwise, which would
 * undo the one it was bound with: it is passed as the second argument, as
 * Node 20 ignores a `backlog` beside `fd` in the options. Undefined: the
 * one wakeport gave its worker (WAKEPORT_BACKLOG), else Node's 511.
 */
export function listenOnFd(server: net.Server, fd: number, backlog = backlogFromEnvironment(), onListening?: () => void): void {
  server.listen({ fd }, backlog, onListening);
}

function backlogFromEnvironment(): number | undefined {
  const given = Number(process.env.WAKEPORT_BACKLOG);
  return Number.isInteger(given) && given > 0 ? given : undefined;
}

export interface ListenFd {
  readonly fd: number;
  /** null when unnamed (systemd's placeholder name "unknown" counts as unnamed). */
  readonly name: string | null;
}

/**
 * The sockets this process was given, or [] when none were, or when they were
 * meant for another process (LISTEN_PID is someone else's; without
 * LISTEN_PID they are taken, as systemfd and wakeport's listen-pid = no give
 * them). Removes the variables from `env`, as sd_listen_fds(1) does, so that
 * no child mistakes them for its own. Throws ERR_LISTEN_FDS when the
 * variables make no sense, or an fd they name is not an open socket:
 * whatever is at that fd then is not ours to close or serve.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ListenFd[] {
  const { LISTEN_FDS: countText, LISTEN_PID: pidText, LISTEN_FDNAMES: namesText } = env;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (pidText !== undefined && !/^\d+$/.test(pidText)) throw listenFdsError(`LISTEN_PID=${pidText} is not a process id`);
  if (pidText !== undefined && Number(pidText) !== pid) return [];
  if (countText === undefined || countText === '' || countText === '0') return [];
  if (!/^\d+$/.test(countText)) throw listenFdsError(`LISTEN_FDS=${countText} is not a number of fds`);
  const names = namesText?.split(':') ?? [];
  return Array.from({ length: Number(countText) }, (_, index) => {
    const fd = firstListenFd + index;
    const problem = notASocket(fd);
    if (problem) throw listenFdsError(`LISTEN_FDS=${countText}, but fd ${fd} ${problem}`);
    const name = names[index];
    return { fd, name: name && name !== 'unknown' ? name : null };
  });
}

/** Why `fd` is not an open socket, or null when it is one. */
function notASocket(fd: number): string | null {
  try {
    return fstatSync(fd).isSocket() ? null : 'is not a socket';
  } catch {
    return 'is not open';
  }
}

function listenFdsError(problem: string): WakeportError {
  return new WakeportError('ERR_LISTEN_FDS', `${problem}: the sockets handed over are not where the socket-activation variables say`);
}
