// The supervisor's running services by label, and what a reloaded table
// (SIGHUP to the launcher, which sends the new one) changes:
//
//   unchanged  left alone: its programs, worker and clients go on
//   removed    stopped as at shutdown (a wait worker, an internal
//              service's clients), except that nowait programs are left to
//              finish; its sockets are closed
//   changed    a wait or nowait program service on the same sockets is
//              restarted on them (clients wait in the backlog meanwhile,
//              none is refused); any other change (an address, an internal
//              service) is a removal and an addition
//   added      the launcher binds it and sends it (late-sockets.ts)
//
// A nowait service lives in a pool of hosts with others; a pool that loses
// or changes a service drains (its hosts stop accepting and exit once their
// programs have finished) and a new pool takes over its other services, on
// the same sockets.

import { closeSync } from 'node:fs';
import { isNowaitProgram, type ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { NowaitPool } from '../services/nowait-pool.js';
import type { SocketAssignment } from './hello.js';
import type { RunningService } from './lifecycle.js';

interface Served {
  readonly entry: ServiceEntry;
  readonly sockets: readonly SocketAssignment[];
  /** Closes the supervisor's copies of a program service's sockets (an internal service closes its own). */
  readonly closeSockets: () => void;
  /** What serves it; a nowait pool serves several. */
  readonly service: RunningService;
}

/** How a changed wait service is started on the sockets of the old one; null (logged) if it cannot. */
export type Restart = (entry: ServiceEntry, sockets: readonly SocketAssignment[]) => Promise<RunningService | null>;

/** How a new pool is started for nowait services. */
export type StartPool = (services: readonly { entry: ServiceEntry; sockets: readonly SocketAssignment[] }[]) => NowaitPool;

export class ServiceTable {
  readonly #served = new Map<string, Served>();
  /** Everything to stop at shutdown: what serves the table, and what is still draining or stopping after a reload. */
  readonly #running = new Set<RunningService>();
  #entries: readonly ServiceEntry[];

  constructor(entries: readonly ServiceEntry[]) {
    this.#entries = entries;
  }

  /** The table's entries, as last loaded. */
  get entries(): readonly ServiceEntry[] {
    return this.#entries;
  }

  running(): RunningService[] {
    return [...this.#running];
  }

  has(label: string): boolean {
    return this.#served.has(label);
  }

  /** `service` serves `entry` on `sockets`; `closeSockets` closes the supervisor's copies. */
  add(entry: ServiceEntry, sockets: readonly SocketAssignment[], service: RunningService, closeSockets?: () => void): void {
    const close = closeSockets ?? (() => sockets.forEach(({ fd }) => closeSync(fd)));
    this.#served.set(entry.label, { entry, sockets, service, closeSockets: entry.program.kind === 'exec' ? close : () => {} });
    this.#running.add(service);
  }

  /**
   * Makes `entries` the table: stops what it no longer has and restarts what
   * changed on the same sockets. Returns at once the labels the launcher must
   * bind (new, or moved to other sockets), and `settled` once the changed
   * wait services have restarted (their old workers stop first).
   */
  reload(entries: readonly ServiceEntry[], restart: Restart, startPool: StartPool, log: Logger): { toBind: string[]; settled: Promise<void> } {
    const next = new Map(entries.map((entry) => [entry.label, entry]));
    const removed: Served[] = [];
    const changed: [Served, ServiceEntry][] = [];
    let unchanged = 0;
    for (const served of this.#served.values()) {
      const entry = next.get(served.entry.label);
      if (entry && sameEntry(served.entry, entry)) unchanged++;
      else if (entry && canRestartInPlace(served.entry, entry)) changed.push([served, entry]);
      else removed.push(served);
    }
    const moved = new Set(removed.filter(({ entry }) => next.has(entry.label)).map(({ entry }) => entry.label));
    const toBind = entries.filter(({ label }) => !this.#served.has(label) || moved.has(label)).map(({ label }) => label);
    this.#entries = entries;
    this.#replacePools(removed, changed, startPool);
    for (const served of removed) this.#remove(served);
    const restarts = changed.filter(([served]) => !isNowaitProgram(served.entry)).map(([served, entry]) => this.#restart(served, entry, restart));
    const counts = [
      `${toBind.length - moved.size} added`,
      `${removed.length - moved.size} removed`,
      `${changed.length + moved.size} changed`,
      `${unchanged} unchanged`,
    ];
    log.info('wakeport', `reloaded the table: ${counts.join(', ')}`);
    return { toBind, settled: Promise.all(restarts).then(() => {}) };
  }

  /** Pools that lose or change a service drain; a new pool serves the rest of each on the same sockets. */
  #replacePools(removed: readonly Served[], changed: readonly (readonly [Served, ServiceEntry])[], startPool: StartPool): void {
    const gone = new Set(removed.map(({ entry }) => entry.label));
    const newEntry = new Map(changed.map(([served, entry]) => [served.entry.label, entry]));
    const touched = new Set([...removed, ...changed.map(([served]) => served)].filter(({ service }) => service instanceof NowaitPool).map(({ service }) => service as NowaitPool));
    for (const pool of touched) {
      const members = [...this.#served.values()].filter(({ service }) => service === pool);
      const stay = members.filter(({ entry }) => !gone.has(entry.label)).map((served) => ({ ...served, entry: newEntry.get(served.entry.label) ?? served.entry }));
      this.#retire(pool, () => pool.drain());
      if (stay.length === 0) continue;
      const replacement = startPool(stay.map(({ entry, sockets }) => ({ entry, sockets })));
      for (const served of stay) this.add(served.entry, served.sockets, replacement, served.closeSockets);
    }
  }

  #remove(served: Served): void {
    this.#served.delete(served.entry.label);
    if (!(served.service instanceof NowaitPool)) this.#retire(served.service, () => served.service.stop());
    // A program service's workers and hosts have their own copies; an internal service closed its own.
    served.closeSockets();
  }

  async #restart(served: Served, entry: ServiceEntry, restart: Restart): Promise<void> {
    this.#served.delete(served.entry.label);
    await this.#retire(served.service, () => served.service.stop());
    const service = await restart(entry, served.sockets);
    if (service) this.add(entry, served.sockets, service, served.closeSockets);
    else served.closeSockets();
  }

  /** Ends `service` (drain or stop); it is stopped at shutdown until then. */
  #retire(service: RunningService, end: () => Promise<void>): Promise<void> {
    return end().then(() => void this.#running.delete(service));
  }
}

/** The same entry, wherever its line is now. */
function sameEntry(a: ServiceEntry, b: ServiceEntry): boolean {
  return JSON.stringify(withoutLines(a)) === JSON.stringify(withoutLines(b));
}

function withoutLines(entry: ServiceEntry): unknown {
  return { ...entry, file: '', line: 0, sockets: entry.sockets.map((socket) => ({ ...socket, line: 0 })) };
}

/** A program service, in the same mode, on the same sockets (a backlog is a socket's). */
function canRestartInPlace(old: ServiceEntry, entry: ServiceEntry): boolean {
  const sockets = (e: ServiceEntry) => JSON.stringify([e.backlog, e.socketType, e.transport, e.sockets.map(({ spec, name }) => [spec, name])]);
  return old.program.kind === 'exec' && entry.program.kind === 'exec' && old.mode === entry.mode && sockets(old) === sockets(entry);
}
