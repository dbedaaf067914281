// Wait workers outlive a supervisor that dies by a signal (the OOM killer, a
// kill -9): each runs in a process group of its own and holds the listening
// sockets, so a new wakeport could not bind them. The supervisor tells the
// launcher of each worker that starts and ends (and of each nowait program
// it took over from a host that died, which would outlive it too); a
// launcher whose supervisor did not exit cleanly stops the ones it left
// (SIGTERM to each group, SIGKILL after their longest exit-timeout), as the
// supervisor would have. Nowait hosts and helpers need none of this: they
// exit when their IPC channel to the supervisor closes, and hosts stop their
// programs then.

import { setTimeout as sleep } from 'node:timers/promises';
import { signalGroup } from '../processes/stop.js';

export interface WorkerNotice {
  readonly type: 'worker';
  readonly pid: number;
  readonly running: boolean;
  /** Its service's exit-timeout. */
  readonly graceMs: number;
}

export function isWorkerNotice(message: unknown): message is WorkerNotice {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'worker';
}

/** Supervisor side: tells the launcher (a failed send only means it is gone, and stops everything then). */
export function tellLauncher(pid: number, running: boolean, graceMs: number): void {
  const notice: WorkerNotice = { type: 'worker', pid, running, graceMs };
  process.send?.(notice, () => {});
}

const pollMs = 50;

/** Launcher side: the workers the supervisor has running, with their grace periods. */
export class LeftWorkers {
  readonly #graceMs = new Map<number, number>();

  note(notice: WorkerNotice): void {
    if (notice.running) this.#graceMs.set(notice.pid, notice.graceMs);
    else this.#graceMs.delete(notice.pid);
  }

  /** Those still alive. */
  alive(): number[] {
    return [...this.#graceMs.keys()].filter((pid) => signalGroup(pid, 0));
  }

  /** SIGTERM to each one's group, and SIGKILL to the groups still there after the longest grace period of them. */
  async stop(): Promise<void> {
    let left = this.alive();
    const graceMs = Math.max(0, ...left.map((pid) => this.#graceMs.get(pid) ?? 0));
    for (const pid of left) signalGroup(pid, 'SIGTERM');
    for (const deadline = Date.now() + graceMs; left.length > 0 && Date.now() < deadline; left = this.alive()) await sleep(pollMs);
    for (const pid of left) signalGroup(pid, 'SIGKILL');
  }
}
