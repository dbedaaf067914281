// Programs a nowait host left running when it died (a crash, the OOM killer,
// a kill -9), and the process groups its ended programs left running (their
// background jobs) when it died or drained. Each is a process group of its
// own, and a program serves its client on: the supervisor takes them over
// from the host's last report (hello.ts, ProgramsReport), notes when each
// ends (polled: they are not its children), and stops them (SIGTERM, SIGKILL
// after the service's exit-timeout) when the pool stops, as their host
// would have.

import type { ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { signalGroup, stopGroup } from '../processes/stop.js';

const pollMs = 1000;

/** The programs taken over, by any pool: a reload starts new pools beside draining ones, on the same sockets. */
const takenOver = new Set<number>();

/** A program still running, or the group of one that ended. */
export type LeftKind = 'program' | 'group';

interface LeftProgram {
  readonly kind: LeftKind;
  readonly label: string;
  readonly host: number;
  readonly graceMs: number;
}

export class LeftPrograms {
  readonly #programs = new Map<number, LeftProgram>();
  readonly #log: Logger;
  #poll: NodeJS.Timeout | null = null;
  #whenNone: (() => void)[] = [];
  /** Once stopping: each program's stop, those taken over since included. */
  #stops: Promise<void>[] | null = null;
  /** Told to kill (a second stop signal): those taken over since are killed at once too. */
  #killed = false;

  readonly #onTakenOver: (pid: number, running: boolean, graceMs: number) => void;

  /** `onTakenOver` hears of each program taken over and of its end (the launcher stops them should the supervisor die). */
  constructor(log: Logger, onTakenOver: (pid: number, running: boolean, graceMs: number) => void = () => {}) {
    this.#log = log;
    this.#onTakenOver = onTakenOver;
  }

  /** Takes over what host `host` left of `kind`, still running and not taken over already; returns how many. */
  adopt(host: number, kind: LeftKind, running: readonly (readonly [number, string])[], entries: ReadonlyMap<string, ServiceEntry>): number {
    let adopted = 0;
    for (const [pid, label] of running) {
      if (takenOver.has(pid) || !signalGroup(pid, 0)) continue;
      takenOver.add(pid);
      const graceMs = entries.get(label)?.exitTimeoutMs ?? 0;
      this.#programs.set(pid, { kind, label, host, graceMs });
      this.#onTakenOver(pid, true, graceMs);
      this.#stops?.push(stopGroup(pid, this.#killed ? 0 : graceMs));
      adopted++;
    }
    if (adopted > 0) this.#poll ??= setInterval(() => this.#forgetEnded(), pollMs);
    return adopted;
  }

  /** Resolves once every program taken over has ended. */
  ended(): Promise<void> {
    if (this.#programs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#whenNone.push(resolve));
  }

  /** Stops every program taken over, and those taken over from now on; resolves once they have ended. */
  stop(): Promise<void> {
    this.#stops ??= [...this.#programs].map(([pid, { graceMs }]) => stopGroup(pid, graceMs));
    return Promise.all(this.#stops).then(() => this.#forgetEnded());
  }

  /** After stop(), a second stop signal: SIGKILL to every program taken over, and to those taken over from now on. */
  kill(): void {
    this.#killed = true;
    for (const pid of this.#programs.keys()) signalGroup(pid, 'SIGKILL');
  }

  #forgetEnded(): void {
    for (const [pid, { kind, label, host, graceMs }] of this.#programs) {
      if (signalGroup(pid, 0)) continue;
      this.#programs.delete(pid);
      takenOver.delete(pid);
      this.#onTakenOver(pid, false, graceMs);
      const what = kind === 'program' ? `pid ${pid} (left by` : `process group ${pid}, left by program pid ${pid} (of`;
      this.#log.info(label, `end ${what} nowait host pid ${host})`, { pid });
    }
    if (this.#programs.size > 0) return;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    for (const resolve of this.#whenNone.splice(0)) resolve();
  }
}
