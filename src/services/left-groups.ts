// What programs left running in their process groups when they exited by
// themselves: a wait worker's processes that do not hold the service's
// sockets (a tftpd's transfers, each on a socket of its own), a nowait
// program's background jobs. They run on, as under inetd, and the service
// stops them when it stops. The groups are polled and forgotten once gone,
// before their id can be reused; until then a wait service keeps the
// launcher told of each, and a nowait host reports each to the supervisor,
// so that they are stopped should either die.

import { signalGroup, stopGroup } from '../processes/stop.js';

const pollMs = 1000;

/** `T`: what the service keeps about each group (a nowait program's client); nothing by default. */
export class LeftGroups<T = void> {
  /** Each group, by id, with what the service keeps about it. */
  readonly #groups = new Map<number, T>();
  readonly #onGone: (pgid: number) => void;
  #poll: NodeJS.Timeout | null = null;
  #stopped: Promise<void> | null = null;

  /** `onGone` hears of each group once it is gone. */
  constructor(onGone: (pgid: number) => void = () => {}) {
    this.#onGone = onGone;
  }

  add(pgid: number, detail: T): void {
    this.#groups.set(pgid, detail);
    this.#poll ??= setInterval(() => this.#forgetGone(), pollMs).unref();
  }

  /** Forgets a group someone else now stops. */
  remove(pgid: number): void {
    this.#groups.delete(pgid);
  }

  has(pgid: number): boolean {
    return this.#groups.has(pgid);
  }

  get size(): number {
    return this.#groups.size;
  }

  groups(): number[] {
    return [...this.#groups.keys()];
  }

  /** Each group with what the service keeps about it. */
  entries(): [number, T][] {
    return [...this.#groups];
  }

  /** SIGTERM to every group, SIGKILL after `graceMs`; resolves once all are gone. The same promise on each call. */
  stop(graceMs: number): Promise<void> {
    this.#stopped ??= Promise.all([...this.#groups.keys()].map((pgid) => stopGroup(pgid, graceMs))).then(() => this.#forgetGone());
    return this.#stopped;
  }

  /** SIGKILL to every group (a second stop). */
  kill(): void {
    for (const pgid of this.#groups.keys()) signalGroup(pgid, 'SIGKILL');
  }

  #forgetGone(): void {
    for (const pgid of this.#groups.keys()) {
      if (signalGroup(pgid, 0)) continue;
      this.#groups.delete(pgid);
      this.#onGone(pgid);
    }
    if (this.#groups.size > 0 || !this.#poll) return;
    clearInterval(this.#poll);
    this.#poll = null;
  }
}
