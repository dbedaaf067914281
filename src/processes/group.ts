// Who is in a process group, and which processes hold given sockets open:
// read from /proc, since Node can list neither. Used when a wait worker
// exits leaving processes in its group (see services/wait.ts), when a
// nowait host dies leaving programs it had not reported yet (see
// services/nowait-pool.ts), and at shutdown for what a wait worker left
// holding its sockets outside its group (see runtime/escapees.ts).

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The pids of process group `pgid`'s members that have one of the sockets `inodes` open. */
export function membersHolding(pgid: number, inodes: ReadonlySet<string>): number[] {
  const sockets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  return processIds().filter((pid) => statFields(pid)?.pgrp === pgid && openFiles(pid).some((file) => sockets.has(file)));
}

/**
 * Session leaders other than this process (every program wakeport starts
 * leads one) that hold one of `files` open, each with its parent and the
 * first of them it holds; a file as /proc names it (`socket:[123]`).
 */
export function sessionLeadersHolding(files: ReadonlySet<string>): Holder[] {
  return holding(files).filter(({ pid, session }) => session === pid);
}

export interface Holder {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  /** The first of the files it holds. */
  readonly file: string;
}

/** Processes other than this one that hold one of `files` open (as /proc names them: `socket:[123]`). */
export function holding(files: ReadonlySet<string>): Holder[] {
  return processIds().flatMap((pid) => {
    const stat = pid === process.pid ? null : statFields(pid);
    const file = stat === null ? undefined : openFiles(pid).find((open) => files.has(open));
    return file === undefined ? [] : [{ pid, ...stat!, file }];
  });
}

/** Whether process `pid`'s environment has `NAME=value` (false when it is gone or not ours to read). */
export function environmentHas(pid: number, assignment: string): boolean {
  const environ = readOrNull(() => readFileSync(`/proc/${pid}/environ`, 'latin1'));
  return environ !== null && environ.split('\0').includes(assignment);
}

/** A process's command name (`sleep`), or `gone`. */
export function commandName(pid: number): string {
  return readOrNull(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim()) ?? 'gone';
}

function processIds(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

function statFields(pid: number): { readonly ppid: number; readonly pgrp: number; readonly session: number } | null {
  // pid (comm) state ppid pgrp session …: comm may hold spaces and parentheses, so count from the last ')'.
  const stat = readOrNull(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]) };
}

/** Every file process `pid` has open, as /proc names it; none when it is gone or not ours to read. */
function openFiles(pid: number): string[] {
  const fds = readOrNull(() => readdirSync(`/proc/${pid}/fd`)) ?? [];
  return fds.flatMap((fd) => readOrNull(() => readlinkSync(`/proc/${pid}/fd/${fd}`)) ?? []);
}

/** A /proc read, or null when the process went meanwhile (or is not ours to read). */
function readOrNull<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}
