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
  /** Labels whose sockets arrived after start and whose service is starting. */
  readonly #starting = new Set<string>();
  /**
   * What a reload took away and is still ending: a draining pool (stopped
   * like any service at shutdown), or a service stopping (waited for at
   * shutdown, and killed only by a second signal), with what ends it.
   */
  readonly #ending = new Map<RunningService, RunningService>();
  #entries: readonly ServiceEntry[];
  #shuttingDown = false;

  constructor(entries: readonly ServiceEntry[]) {
    this.#entries = entries;
  }

  /** The table's entries, as last loaded. */
  get entries(): readonly ServiceEntry[] {
    return this.#entries;
  }

  /** Whether `label` is served, or starting. */
  has(label: string): boolean {
    return this.#served.has(label) || this.#starting.has(label);
  }

  /** The service of `label` is starting (its sockets arrived late): a reload leaves it be. */
  starting(label: string): void {
    this.#starting.add(label);
  }

  /**
   * `service` serves `entry` on `sockets`; `closeSockets` closes the
   * supervisor's copies. During shutdown it is stopped instead (a start
   * that was under way when the signal came).
   */
  add(entry: ServiceEntry, sockets: readonly SocketAssignment[], service: RunningService, closeSockets?: () => void): void {
    this.#starting.delete(entry.label);
    const close = closeSockets ?? (() => sockets.forEach(({ fd }) => closeSync(fd)));
    if (this.#shuttingDown) {
      this.#end(service, service.stop());
      return;
    }
    this.#served.set(entry.label, { entry, sockets, service, closeSockets: entry.program.kind === 'exec' ? close : () => {} });
  }

  /** A late start that did not come to a service. */
  notStarted(label: string): void {
    this.#starting.delete(label);
  }

  /** Shutdown begins: nothing is started or restarted from now on. */
  shutDown(): void {
    this.#shuttingDown = true;
  }

  /** Everything a shutdown stops: the services serving the table, and what a reload took away that is still ending. */
  running(): RunningService[] {
    return [...new Set([...this.#served.values()].map(({ service }) => service)), ...this.#ending.values()];
  }

  /**
   * Makes `entries` the table: stops what it no longer has and restarts what
   * changed on the same sockets. Returns at once the labels the launcher must
   * bind (new, or moved to other sockets), and `settled` once the changed
   * wait services have restarted (their old workers stop first).
   */
  reload(entries: readonly ServiceEntry[], restart: Restart, startPool: StartPool, log: Logger): { toBind: string[]; settled: Promise<void> } {
    log.info('wakeport', `reloaded the table: ${describeChanges(this.#entries, entries)}`);
    const next = new Map(entries.map((entry) => [entry.label, entry]));
    const removed: Served[] = [];
    const changed: [Served, ServiceEntry][] = [];
    for (const served of this.#served.values()) {
      const entry = next.get(served.entry.label);
      if (entry && sameEntry(served.entry, entry)) continue;
      if (entry && canRestartInPlace(served.entry, entry)) changed.push([served, entry]);
      else removed.push(served);
    }
    const moved = new Set(removed.filter(({ entry }) => next.has(entry.label)).map(({ entry }) => entry.label));
    const toBind = entries.filter(({ label }) => !this.has(label) || moved.has(label)).map(({ label }) => label);
    this.#entries = entries;
    this.#replacePools(removed, changed, startPool);
    for (const served of removed) this.#remove(served);
    const restarts = changed.filter(([served]) => !isNowaitProgram(served.entry)).map(([served, entry]) => this.#restart(served, entry, restart));
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
      // Stopped at shutdown like any service: its hosts then stop their programs.
      this.#end(pool, pool.drain(), pool);
      if (stay.length === 0) continue;
      const replacement = startPool(stay.map(({ entry, sockets }) => ({ entry, sockets })));
      for (const served of stay) this.add(served.entry, served.sockets, replacement, served.closeSockets);
    }
  }

  #remove(served: Served): void {
    this.#served.delete(served.entry.label);
    if (!(served.service instanceof NowaitPool)) this.#end(served.service, served.service.stop());
    // A program service's workers and hosts have their own copies; an internal service closed its own.
    served.closeSockets();
  }

  /** The old service stops first; then the new one starts on the same sockets, unless wakeport is shutting down. */
  async #restart(served: Served, entry: ServiceEntry, restart: Restart): Promise<void> {
    this.#served.delete(served.entry.label);
    const restarted = (async () => {
      await served.service.stop();
      const service = this.#shuttingDown ? null : await restart(entry, served.sockets);
      if (service && this.#shuttingDown) await service.stop();
      else if (service) return this.add(entry, served.sockets, service, served.closeSockets);
      served.closeSockets();
    })();
    this.#end(served.service, restarted);
    await restarted;
  }

  /**
   * `service` is ending (`ended` resolves when it has). Until then a
   * shutdown stops `atShutdown` if given (a draining pool), or waits for
   * `ended`, and only a second signal stops (kills) the service again.
   */
  #end(service: RunningService, ended: Promise<void>, atShutdown?: RunningService): void {
    let asked = false;
    const waiting: RunningService = atShutdown ?? { stop: () => (asked ? service.stop() : ((asked = true), ended)) };
    this.#ending.set(service, waiting);
    void ended.then(() => this.#ending.delete(service));
  }
}

/** `1 added, 2 removed, 2 changed, 1 unchanged`, by label, between two tables. */
function describeChanges(before: readonly ServiceEntry[], after: readonly ServiceEntry[]): string {
  const old = new Map(before.map((entry) => [entry.label, entry]));
  const added = after.filter(({ label }) => !old.has(label)).length;
  const unchanged = after.filter((entry) => old.has(entry.label) && sameEntry(old.get(entry.label)!, entry)).length;
  const kept = after.length - added;
  return `${added} added, ${before.length - kept} removed, ${kept - unchanged} changed, ${unchanged} unchanged`;
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
