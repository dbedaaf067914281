// Wait workers outlive a supervisor that dies by a signal (the OOM killer, a
// kill -9): each runs in a process group of its own and holds the listening
// sockets, so a new wakeport could not bind them. The supervisor tells the
// launcher of each worker that starts and ends; a launcher whose supervisor
// did not exit cleanly stops the workers it left (SIGTERM to each group,
// SIGKILL after the grace period), as the supervisor would have. Nowait
// hosts and helpers need none of this: they exit when their IPC channel to
// the supervisor closes.

import { setTimeout as sleep } from 'node:timers/promises';
import { signalGroup } from '../processes/stop.js';

export interface WorkerNotice {
  readonly type: 'worker';
  readonly pid: number;
  readonly running: boolean;
}

export function isWorkerNotice(message: unknown): message is WorkerNotice {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'worker';
}

/** Supervisor side: tells the launcher (a failed send only means it is gone, and stops everything then). */
export function tellLauncher(pid: number, running: boolean): void {
  const notice: WorkerNotice = { type: 'worker', pid, running };
  process.send?.(notice, () => {});
}

const pollMs = 50;

/** Launcher side: the workers the supervisor has running. */
export class LeftWorkers {
  readonly #pids = new Set<number>();

  note(notice: WorkerNotice): void {
    if (notice.running) this.#pids.add(notice.pid);
    else this.#pids.delete(notice.pid);
  }

  /** Those still alive. */
  alive(): number[] {
    return [...this.#pids].filter((pid) => signalGroup(pid, 0));
  }

  /** SIGTERM to each one's group, and SIGKILL to the groups still there after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    let left = this.alive();
    for (const pid of left) signalGroup(pid, 'SIGTERM');
    for (const deadline = Date.now() + graceMs; left.length > 0 && Date.now() < deadline; left = this.alive()) await sleep(pollMs);
    for (const pid of left) signalGroup(pid, 'SIGKILL');
  }
}
