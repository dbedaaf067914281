// The supervisor's running services by label, and what a reloaded table
// (SIGHUP to the launcher, which sends the new one) changes:
//
//   unchanged  left alone: its programs, worker and clients go on
//   removed    stopped as at shutdown (a wait worker, an internal
//              service's clients), except that nowait programs are left to
//              finish; its sockets are closed
//   changed    a wait or nowait program service on the same sockets is
//              restarted on them (clients wait in the backlog meanwhile,
//              none is refused); any other change (an address, a backlog,
//              the mode, an internal service) is a removal and an addition,
//              bound once the old service has let its sockets go
//   added      the launcher binds it and sends it (late-sockets.ts)
//
// A reload during shutdown is ignored.
//
// A nowait service lives in a pool of hosts with others; a pool that loses
// or changes a service drains (its hosts stop accepting and exit once their
// programs have finished) and a new pool takes over its other services, on
// the same sockets.

import { closeSync } from 'node:fs';
import { formatSocket, isNowaitProgram, type ClientAccess, type ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { NowaitPool } from '../services/nowait-pool.js';
import { WaitService } from '../services/wait.js';
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

/** How the supervisor starts what a reload changes. */
export interface Starters {
  /** Whether a program service can start (its output files open); logged if not. */
  canStart(entry: ServiceEntry, sockets: readonly SocketAssignment[]): boolean;
  /** Starts a changed wait service on the sockets of the old one; null (logged) if it cannot. */
  restart(entry: ServiceEntry, sockets: readonly SocketAssignment[]): Promise<RunningService | null>;
  startPool(services: readonly { entry: ServiceEntry; sockets: readonly SocketAssignment[] }[]): NowaitPool;
}

export interface ReloadResult {
  /** Labels the launcher must bind now: new services. */
  readonly toBind: readonly string[];
  /** Labels of services whose sockets changed: to bind once `released`. */
  readonly moved: readonly string[];
  /** Resolves once services whose sockets changed have let the old ones go (a wait worker holds them until it exits). */
  readonly released: Promise<void>;
  /** Resolves once changed wait services have restarted. */
  readonly settled: Promise<void>;
}

export class ServiceTable {
  readonly #served = new Map<string, Served>();
  /** Labels whose sockets arrived after start and whose service is being started (it may await): a reload must not bind them again. */
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

  /** Whether `label` is served, or being started. */
  has(label: string): boolean {
    return this.#served.has(label) || this.#starting.has(label);
  }

  /** The service of `label` is being started on sockets bound after start; add() or notStarted() follows. */
  starting(label: string): void {
    this.#starting.add(label);
  }

  notStarted(label: string): void {
    this.#starting.delete(label);
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

  /** Shutdown begins: nothing is started or restarted from now on. */
  shutDown(): void {
    this.#shuttingDown = true;
  }

  /** The sockets of the services it serves, with the entry of each. */
  servedSockets(): { readonly entry: ServiceEntry; readonly assignment: SocketAssignment }[] {
    return [...this.#served.values()].flatMap(({ entry, sockets }) => sockets.map((assignment) => ({ entry, assignment })));
  }

  /** Everything a shutdown stops: the services serving the table, and what a reload took away that is still ending. */
  running(): RunningService[] {
    return [...new Set([...this.#served.values()].map(({ service }) => service)), ...this.#ending.values()];
  }

  /**
   * Makes `entries` the table: stops what it no longer has and restarts what
   * changed on the same sockets (see the top of this file).
   */
  reload(entries: readonly ServiceEntry[], starters: Starters, log: Logger): ReloadResult {
    if (this.#shuttingDown) {
      log.warn('wakeport', 'a reload came while stopping: ignored');
      return { toBind: [], moved: [], released: Promise.resolve(), settled: Promise.resolve() };
    }
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
    for (const { entry, sockets } of removed) {
      const addresses = sockets.map(({ socket }) => formatSocket(socket)).join(', ');
      const why = moved.has(entry.label) ? 'its addresses changed' : 'it is no longer in the table';
      log.info(entry.label, `${why}: stopping it, and closing ${addresses}`);
    }
    const toBind = entries.filter(({ label }) => !this.has(label) && !moved.has(label)).map(({ label }) => label);
    this.#entries = entries;
    // Pools still draining after an earlier reload let go of the clients the new rules refuse, as those drained now do.
    const access = new Map(entries.map(({ label, access }) => [label, access]));
    for (const ending of this.#ending.keys()) if (ending instanceof NowaitPool) ending.refuseAnew(access);
    const released = this.#replacePools(removed, changed, access, starters);
    const stops = removed.map((served) => ({ served, stopped: this.#remove(served, released) }));
    const restarts = changed.filter(([served]) => !isNowaitProgram(served.entry)).map(([served, entry]) => this.#restart(served, entry, starters));
    const movedReleased = Promise.all(stops.filter(({ served }) => moved.has(served.entry.label)).map(({ stopped }) => stopped)).then(() => {});
    return { toBind, moved: [...moved], released: movedReleased, settled: Promise.all(restarts).then(() => {}) };
  }

  /**
   * Pools that lose or change a service drain; a new pool serves the rest of
   * each on the same sockets (a changed service whose outputs cannot be
   * opened is left out, its sockets closed).
   */
  #replacePools(
    removed: readonly Served[],
    changed: readonly (readonly [Served, ServiceEntry])[],
    access: ReadonlyMap<string, ClientAccess>,
    starters: Starters,
  ): Map<NowaitPool, Promise<void>> {
    const released = new Map<NowaitPool, Promise<void>>();
    const gone = new Set(removed.map(({ entry }) => entry.label));
    const newEntry = new Map(changed.map(([served, entry]) => [served.entry.label, entry]));
    const touched = new Set([...removed, ...changed.map(([served]) => served)].filter(({ service }) => service instanceof NowaitPool).map(({ service }) => service as NowaitPool));
    for (const pool of touched) {
      const members = [...this.#served.values()].filter(({ service }) => service === pool);
      const stay = members.filter(({ entry }) => !gone.has(entry.label)).map((served) => ({ ...served, entry: newEntry.get(served.entry.label) ?? served.entry }));
      const drain = pool.drain(access);
      released.set(pool, drain.released);
      // Stopped at shutdown like any service: its hosts then stop their programs.
      this.#end(pool, drain.ended, pool);
      const startable = stay.filter((served) => {
        if (starters.canStart(served.entry, served.sockets)) return true;
        this.#served.delete(served.entry.label);
        served.closeSockets();
        return false;
      });
      if (startable.length === 0) continue;
      const replacement = starters.startPool(startable.map(({ entry, sockets }) => ({ entry, sockets })));
      for (const served of startable) this.add(served.entry, served.sockets, replacement, served.closeSockets);
    }
    return released;
  }

  /**
   * Resolves once nothing of the service holds its sockets: it has stopped,
   * or (a pool member) its pool's hosts no longer accept (`released`).
   */
  #remove(served: Served, released: ReadonlyMap<NowaitPool, Promise<void>>): Promise<void> {
    this.#served.delete(served.entry.label);
    // A program service's workers and hosts have their own copies; an internal service closed its own.
    served.closeSockets();
    if (served.service instanceof NowaitPool) return released.get(served.service) ?? Promise.resolve();
    const stopping = stopReleasing(served.service);
    this.#end(served.service, stopping.ended);
    return stopping.released;
  }

  /** The old service stops first; then the new one starts on the same sockets, unless wakeport is shutting down. */
  #restart(served: Served, entry: ServiceEntry, starters: Starters): Promise<void> {
    this.#served.delete(served.entry.label);
    const stopping = stopReleasing(served.service);
    const restarted = this.#startAfter(stopping.released, served, entry, starters);
    this.#end(served.service, Promise.all([restarted, stopping.ended]).then(() => {}));
    return restarted;
  }

  async #startAfter(released: Promise<void>, served: Served, entry: ServiceEntry, starters: Starters): Promise<void> {
    await released;
    const startable = !this.#shuttingDown && starters.canStart(entry, served.sockets);
    const service = startable ? await starters.restart(entry, served.sockets) : null;
    if (service && !this.#shuttingDown) return this.add(entry, served.sockets, service, served.closeSockets);
    if (service) await service.stop();
    served.closeSockets();
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

/**
 * Stops a service: `released` once nothing of it holds its sockets, `ended`
 * once all of it is gone (what a wait service's workers left in their groups
 * may outlast their sockets' release).
 */
function stopReleasing(service: RunningService): { released: Promise<void>; ended: Promise<void> } {
  if (service instanceof WaitService) return service.stopReleasing();
  const stopped = service.stop();
  return { released: stopped, ended: stopped };
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

/** A program service, in the same mode, on the same sockets (a backlog is a socket's; a name is only told to the worker). */
function canRestartInPlace(old: ServiceEntry, entry: ServiceEntry): boolean {
  const sockets = (e: ServiceEntry) => JSON.stringify([e.backlog, e.socketType, e.transport, e.sockets.map(({ spec }) => spec)]);
  return old.program.kind === 'exec' && entry.program.kind === 'exec' && old.mode === entry.mode && sockets(old) === sockets(entry);
}
