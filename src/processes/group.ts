// Who is in a process group, and which processes hold given files open:
// read from /proc, since Node can list neither. Used when a wait worker
// exits leaving processes in its group (see services/wait.ts), and when a
// nowait host dies leaving programs it had not reported yet (see
// services/nowait-pool.ts).

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The pids of process group `pgid`'s members that have one of the sockets `inodes` open. */
export function membersHolding(pgid: number, inodes: ReadonlySet<string>): number[] {
  const sockets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  return processIds().filter((pid) => statFields(pid)?.pgrp === pgid && openFiles(pid).some((file) => sockets.has(file)));
}

/**
 * Session leaders other than this process (every program wakeport starts
 * leads one) that hold one of `files` open, each with the first of them it
 * holds; a file as /proc names it (`pipe:[123]`, see openFile).
 */
export function sessionLeadersHolding(files: ReadonlySet<string>): (readonly [pid: number, file: string])[] {
  return processIds().flatMap((pid) => {
    if (pid === process.pid || statFields(pid)?.session !== pid) return [];
    const file = openFiles(pid).find((open) => files.has(open));
    return file === undefined ? [] : [[pid, file] as const];
  });
}

/** What process `pid`'s descriptor `fd` refers to, as /proc names it (`pipe:[123]`, `socket:[456]`); null when it cannot be read. */
export function openFile(pid: number, fd: number): string | null {
  return readOrNull(() => readlinkSync(`/proc/${pid}/fd/${fd}`));
}

function processIds(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

function statFields(pid: number): { readonly pgrp: number; readonly session: number } | null {
  // pid (comm) state ppid pgrp session …: comm may hold spaces and parentheses, so count from the last ')'.
  const stat = readOrNull(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(fields[2]), session: Number(fields[3]) };
}

/** Every file process `pid` has open; none when it is gone or not ours to read. */
function openFiles(pid: number): string[] {
  const fds = readOrNull(() => readdirSync(`/proc/${pid}/fd`)) ?? [];
  return fds.flatMap((fd) => openFile(pid, Number(fd)) ?? []);
}

/** A /proc read, or null when the process went meanwhile (or is not ours to read). */
function readOrNull<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}
