// Who is in a process group, and which of them hold given sockets: read
// from /proc, since Node can list neither. Used when a wait worker exits
// leaving processes in its group (see services/wait.ts).

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The pids of process group `pgid`'s members that have one of the sockets `inodes` open. */
export function membersHolding(pgid: number, inodes: ReadonlySet<string>): number[] {
  return groupMembers(pgid).filter((pid) => openSockets(pid).some((inode) => inodes.has(inode)));
}

function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so count from the last ')'.
    const stat = readOrNull(() => readFileSync(`/proc/${name}/stat`, 'utf8'));
    const pgrp = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[2];
    if (pgrp === String(pgid)) members.push(Number(name));
  }
  return members;
}

/** The socket inodes process `pid` has open; none when it is gone or not ours to read. */
function openSockets(pid: number): string[] {
  const fds = readOrNull(() => readdirSync(`/proc/${pid}/fd`)) ?? [];
  return fds.flatMap((fd) => /^socket:\[(\d+)\]$/.exec(readOrNull(() => readlinkSync(`/proc/${pid}/fd/${fd}`)) ?? '')?.[1] ?? []);
}

/** A /proc read, or null when the process went meanwhile (or is not ours to read). */
function readOrNull<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}
