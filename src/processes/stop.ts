// Stopping a process wakeport started: SIGTERM to its whole process group
// (every program runs in a group of its own, whose id is its pid), then
// SIGKILL if anything of the group is still there after the grace period.
// What counts is the group, not only the process wakeport started: a child
// it forked keeps the sockets it inherited (a wait worker's listening ones),
// and outliving wakeport it would keep a new wakeport from binding them.

import { setTimeout as sleep } from 'node:timers/promises';
import { processGroupExists } from '../sockets/internals.js';

/** What stopping needs of a process: a ChildProcess, or a connection's process (program.ts). */
export interface StoppableProcess {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  once(event: 'exit', listener: () => void): unknown;
}

const pollMs = 50;
// After the SIGKILL, how long to wait for the group to go: a child reparented
// to a pid 1 that never reaps stays a zombie for ever.
const afterKillMs = 1000;

/** Signals process group `pgid`; false when the group is gone (ESRCH). 0 only asks whether it is there (without an exception: it is asked once per nowait program). */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  // -1 would be every process wakeport may signal, and 1 init's group: no program's.
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  if (signal === 0) return processGroupExists(pgid);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Stops the child and what it left in its group; resolves once the group is gone (or a second after the SIGKILL). */
export function stopChild(child: StoppableProcess, graceMs: number): Promise<void> {
  if (child.pid === undefined) return Promise.resolve();
  const exited = child.exitCode !== null || child.signalCode !== null;
  return stopGroupOf(child.pid, graceMs, exited ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve())));
}

/**
 * Stops what is left of process group `pgid` after its leader has exited,
 * as stopChild does. Resolves once the group is gone: at once, if it is.
 */
export function stopGroup(pgid: number, graceMs: number): Promise<void> {
  return signalGroup(pgid, 0) ? stopGroupOf(pgid, graceMs, Promise.resolve()) : Promise.resolve();
}

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves once `leaderExited` and the group is gone. */
function stopGroupOf(pgid: number, graceMs: number, leaderExited: Promise<void>): Promise<void> {
  const giveUpAt = Date.now() + graceMs + afterKillMs;
  if (!signalGroup(pgid, 'SIGTERM')) return leaderExited;
  const kill = setTimeout(() => signalGroup(pgid, 'SIGKILL'), graceMs);
  return leaderExited.then(() => groupGone(pgid, giveUpAt)).finally(() => clearTimeout(kill));
}

/** Polls until the group is gone (polled, so that the id is never signalled long after it may have been reused), or until `giveUpAt`. */
async function groupGone(pgid: number, giveUpAt: number): Promise<void> {
  while (signalGroup(pgid, 0) && Date.now() < giveUpAt) await sleep(pollMs);
}
