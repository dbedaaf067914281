// A nowait service: one process per connection, with the connection as its
// stdin and stdout (inetd nowait, launchd inetdCompatibility, systemd
// Accept=yes).
//
// States:
//   serving    each admitted connection gets a process at once (a service
//              that other nowait hosts serve too stops accepting while this
//              host serves its part of the connections: see #shareAccepts)
//   throttled  nowait.max spawns happened within rate-window: connections
//              wait in the queue until the window has room again
//   draining   no new connections (a reloaded table took the service away
//              or changed it); those waiting are still served, and
//              running processes are left to finish, except those of
//              clients the reloaded table's only-from/no-access refuse
//   drained    every process has exited after a drain; what they left in
//              their groups runs on (a stop still stops it)
//   stopping   no new connections; processes got SIGTERM (SIGKILL after
//              exit-timeout, or at once on a second stop)
//   stopped    every process has exited (after a stop, stop() resolves
//              once what they left in their groups is gone too)
//
// A program that exits leaving processes in its group (a background job)
// leaves them running, as inetd does: a stop stops them with the running
// programs; after a drain they run on, reported to the supervisor, which
// stops them when wakeport stops (unless the host is told to stop first).
//
// Events are connection, exit (a process ended), window (the throttle's
// timer fired), revoked (a program a reload refused is gone, group and
// all), drain and stop. The table at the bottom is every transition.

import type net from 'node:net';
import { defaultProgramConnections, type ClientAccess, type ServiceEntry } from '../config/entry.js';
import { counted, formatDuration, ReportThrottle, type Logger } from '../log.js';
import { ProgramRecipe, type ConnectionProcess } from '../processes/program.js';
import { setAccepting, type AcceptedConnection, type Address } from '../sockets/internals.js';
import { StopWaiters } from './stop-waiters.js';
import { signalGroup, stopChild, stopGroup } from '../processes/stop.js';
import { LeftGroups } from './left-groups.js';
import { ClientFilter } from './access.js';
import { Admission } from './admission.js';
import { connectionBudget, type BudgetHolder } from './connection-budget.js';
import type { SpawnFailure } from './spawn-failures.js';
import {
  acceptConnectionsOn,
  acceptFailureReporter,
  clientName,
  closeGently,
  GoneSweep,
  letGo,
  QueueOverflow,
  waitingConnection,
  type WaitingConnection,
} from './listener.js';

type State = 'serving' | 'throttled' | 'draining' | 'drained' | 'stopping' | 'stopped';

interface Run {
  readonly child: ConnectionProcess;
  readonly pid: number;
  readonly peer: Address | null;
  readonly client: string;
  readonly source: string;
  readonly startedAt: number;
}

type Event =
  | { readonly type: 'connection'; readonly connection: WaitingConnection }
  | { readonly type: 'exit'; readonly run: Run; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly type: 'window' }
  /** `access`: the reloaded table's only-from/no-access for the service's label, if it still has it. */
  | { readonly type: 'drain'; readonly access: ClientAccess | null }
  /** The group of a program stopped after a reload is gone. */
  | { readonly type: 'revoked' }
  | { readonly type: 'stop' };

const overBudgetReportMs = 60_000;

export class NowaitService implements BudgetHolder {
  #state: State = 'serving';
  readonly #entry: ServiceEntry;
  readonly #log: Logger;
  readonly #recipe: ProgramRecipe;
  readonly #admission: Admission<WaitingConnection>;
  readonly #overflow: QueueOverflow;
  readonly #runs = new Set<Run>();
  /** Groups its ended programs left running, each with the program that left it (a reload may refuse its client). */
  readonly #left = new LeftGroups<Run>();
  /** The groups of the programs running when it began to stop, each being stopped. */
  #stoppingGroups: { readonly pid: number; readonly stopped: Promise<void> }[] = [];
  /** Once it began to stop: the groups its ended programs left, being stopped. */
  #leftStopping: Promise<void> | null = null;
  /** Start times of the spawns inside the current rate window, oldest first. */
  readonly #spawnTimes: number[] = [];
  readonly #overBudget = new ReportThrottle(overBudgetReportMs, (count) =>
    this.#log.warn(
      this.#entry.label,
      `rejected ${counted(count, 'more client')} since the last report: nowait host pid ${process.pid} already held ${connectionBudget.limit} connections`,
    ),
  );
  readonly #goneSweep = new GoneSweep();
  #filter: ClientFilter;
  /**
   * The groups of programs being stopped because a reload refused their
   * clients, by pid, until each group is gone: a drain waits for them, so
   * that what a program leaves in its group still gets its SIGKILL.
   */
  readonly #revocations = new Map<number, Promise<void>>();
  #servers: net.Server[] = [];
  /** Served by other hosts too (see #shareAccepts). */
  readonly #shared: boolean;
  #accepting = true;
  /** When the service last had a connection waiting or a process running. */
  #lastBusyAt = Date.now();
  #onSpawnFailure: (failure: SpawnFailure) => void = () => {};
  #windowTimer: NodeJS.Timeout | null = null;
  readonly #stopWaiters = new StopWaiters();
  readonly #drainWaiters = new StopWaiters();

  private constructor(entry: ServiceEntry, recipe: ProgramRecipe, log: Logger, shared: boolean) {
    this.#entry = entry;
    this.#shared = shared;
    this.#recipe = recipe;
    this.#log = log;
    const queueLimit = entry.backlog;
    const maxConnections = entry.maxConnections ?? defaultProgramConnections;
    this.#admission = new Admission({ maxConnections, maxPerSource: entry.maxPerSource, queueLimit });
    this.#overflow = new QueueOverflow(entry.label, log, queueLimit);
    this.#filter = new ClientFilter(entry.access, entry.label, log, 'connection');
  }

  /**
   * Starts serving on the listening `fds`. Throws a sentence when the service cannot start.
   * `stderrFd`: a pipe every process shares as its stderr (see ProgramRecipe), or null.
   * `shared`: other nowait hosts serve it too, each with its part of max-connections.
   * `onSpawnFailure`: where programs that cannot be started are reported (spawn-failures.ts).
   */
  static async start(
    entry: ServiceEntry,
    { fds, stderrFd, shared }: { readonly fds: readonly number[]; readonly stderrFd: number | null; readonly shared: boolean },
    log: Logger,
    onSpawnFailure: (failure: SpawnFailure) => void,
  ): Promise<NowaitService> {
    if (entry.program.kind !== 'exec') throw new Error(`internal: ${entry.label} is not a program service`);
    const service = new NowaitService(entry, new ProgramRecipe(entry, entry.program, log, stderrFd), log, shared);
    service.#onSpawnFailure = onSpawnFailure;
    const onConnection = (connection: AcceptedConnection) => {
      const peer = connection.peer();
      // Closed at once, as xinetd does: a refused client is not given time to hold a connection.
      if (!service.#filter.admits(peer)) return connection.close();
      if (!connectionBudget.take(service)) return service.#refuseOverBudget(connection);
      if (peer === null && entry.transport === 'tcp') return service.#dropGone(connection, 'before it was accepted');
      service.#dispatch({ type: 'connection', connection: waitingConnection(connection, peer) });
    };
    const onError = acceptFailureReporter(entry.label, log);
    for (const fd of fds) service.#servers.push(await acceptConnectionsOn(fd, entry.backlog, onConnection, onError));
    return service;
  }

  /**
   * Since when it has had no connection waiting and no process running; null
   * while it has. With nowait.max, not before its spawns have left the rate
   * window: a host that exited would forget them, and its successor would
   * start more than the limit allows.
   */
  idleSince(): number | null {
    if (this.#runs.size > 0 || this.#admission.waiting > 0 || this.#left.size > 0) return null;
    const newest = this.#spawnTimes.at(-1);
    return newest === undefined ? this.#lastBusyAt : Math.max(this.#lastBusyAt, newest + this.#entry.rateWindowMs);
  }

  get label(): string {
    return this.#entry.label;
  }

  /** The pids of its programs running. */
  runningPrograms(): number[] {
    return [...this.#runs].map(({ pid }) => pid);
  }

  /** The process groups its ended programs left running (or that are being stopped). */
  leftGroups(): number[] {
    // A program stopped after a reload may have ended, leaving processes in its group that are still being stopped.
    const ended = [...this.#revocations.keys()].filter((pid) => !this.#left.has(pid) && ![...this.#runs].some((run) => run.pid === pid));
    return [...this.#left.groups(), ...ended];
  }

  /** How many of its clients wait in the queue. */
  get waiting(): number {
    return this.#admission.waiting;
  }

  /** Stops the service; resolves once every process has exited. A second call kills what is left. */
  stop(): Promise<void> {
    return this.#stopWaiters.wait(() => this.#dispatch({ type: 'stop' }));
  }

  /**
   * Stops accepting, serves those waiting and lets every process finish;
   * resolves once they have (or it has stopped). With `access` (the
   * reloaded table's rules for this label), clients it refuses are let go
   * first (see #revokeRefused); a drain while draining (a later reload)
   * only does that.
   */
  drain(access: ClientAccess | null = null): Promise<void> {
    return this.#drainWaiters.wait(() => this.#dispatch({ type: 'drain', access }));
  }

  #dispatch(event: Event): void {
    this.#lastBusyAt = Date.now();
    const handler = NowaitService.#transitions[this.#state][event.type] as (s: NowaitService, e: Event) => State;
    const next = handler(this, event);
    if (this.#shared && (next === 'serving' || next === 'throttled')) this.#shareAccepts();
    if (next === this.#state) return;
    this.#state = next;
    if (next === 'throttled') this.#announceThrottle();
    if (next === 'drained') this.#finishDrain();
    if (next === 'stopped') this.#finishStop();
  }

  // ---- effects, called from the transition table ----

  /** `serveNext`: the queue is served right after (not held back by the spawn limit). */
  #queue(waiting: WaitingConnection, serveNext = !this.#spawnLimitReached()): void {
    for (const gone of this.#goneSweep.sweep(this.#admission)) this.#dropGone(gone.connection, 'while it waited');
    const refused = this.#admission.offer(waiting, waiting.source, serveNext);
    if (refused) this.#overflow.refuse(letGo(refused.connection, this));
  }

  /**
   * Starts a process for every connection the limits admit; says whether
   * the spawn limit stopped it. A TCP client that waited is checked first:
   * one that has gone meanwhile gets no process, nor a place under the
   * limits (`arrived`, the connection being offered now, has not waited).
   */
  #serveQueue(arrived?: WaitingConnection): 'serving' | 'throttled' {
    for (;;) {
      if (this.#spawnLimitReached()) return 'throttled';
      const admitted = this.#admission.admit();
      if (!admitted) return 'serving';
      const waiting = admitted.client;
      if (waiting !== arrived && waiting.connection.isGone()) {
        this.#admission.release(waiting.source);
        this.#dropGone(waiting.connection, 'while it waited');
      } else this.#spawn(waiting);
    }
  }

  /** Closes a connection accepted and not handed to a program, and gives its fd back to the budget. */
  #closeAccepted(connection: AcceptedConnection): void {
    connection.close();
    connectionBudget.give(this);
  }

  /** A client that has gone is closed, its fd given back to the budget. */
  #dropGone(connection: AcceptedConnection, when: string): void {
    this.#closeAccepted(connection);
    this.#log.debug(this.#entry.label, `a client went ${when}: no process started for it`);
  }

  #spawn({ connection, peer, client, source }: WaitingConnection): void {
    if (this.#entry.maxSpawns !== null) this.#spawnTimes.push(Date.now());
    const child = this.#recipe.spawnForConnection(connection);
    if ('errno' in child) {
      closeGently(letGo(connection, this));
      this.#admission.release(source);
      const message = `spawn ${this.#recipe.path} ${child.errno}`;
      this.#onSpawnFailure({ type: 'spawn-failure', label: this.#entry.label, errno: child.errno, message, client });
      return;
    }
    connectionBudget.give(this); // The program has the connection; the host closed its copy.
    const run: Run = { child, pid: child.pid, peer, client, source, startedAt: performance.now() };
    this.#runs.add(run);
    this.#log.debug(this.#entry.label, `accept client ${client} pid ${run.pid}`);
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#dispatch({ type: 'exit', run, code, signal }));
  }

  #finish(event: Event & { type: 'exit' }): void {
    const { run, code, signal } = event;
    this.#runs.delete(run);
    this.#admission.release(run.source);
    const how = signal === null ? `exitcode ${code}` : `signal ${signal}`;
    const ms = Math.round(performance.now() - run.startedAt);
    // While stopping, or for a program stopped after a reload, stopChild takes care of the group already.
    const leftGroup = this.#state !== 'stopping' && !this.#revocations.has(run.pid) && signalGroup(run.pid, 0);
    if (leftGroup) this.#left.add(run.pid, run);
    const left = leftGroup ? '; processes it left in its group run on, and are stopped when wakeport stops' : '';
    this.#log.info(this.#entry.label, `end pid ${run.pid} client ${run.client} ${how} after ${ms}ms${left}`, {
      pid: run.pid,
      client: run.client,
      exitCode: code,
      signal,
      durationMs: ms,
    });
  }

  #spawnLimitReached(): boolean {
    const max = this.#entry.maxSpawns;
    if (max === null) return false;
    const now = Date.now();
    const windowStart = now - this.#entry.rateWindowMs;
    while (this.#spawnTimes.length > 0 && this.#spawnTimes[0]! <= windowStart) this.#spawnTimes.shift();
    if (this.#spawnTimes.length < max) return false;
    const waitMs = this.#spawnTimes[0]! - windowStart;
    this.#windowTimer ??= setTimeout(() => {
      this.#windowTimer = null;
      this.#dispatch({ type: 'window' });
    }, waitMs);
    return true;
  }

  #announceThrottle(): void {
    const window = formatDuration(this.#entry.rateWindowMs);
    const waitMs = this.#spawnTimes[0]! + this.#entry.rateWindowMs - Date.now();
    this.#log.warn(
      this.#entry.label,
      `${this.#spawnTimes.length} processes started in the last ${window} (limit nowait.${this.#entry.maxSpawns}): ` +
        `pausing new spawns for ${formatDuration(waitMs)}; clients wait in the queue`,
    );
  }

  /**
   * A service other hosts serve too stops accepting while this host serves
   * its part of the connections, and starts again when one ends: a client
   * it accepted then would wait in its queue while another host has room.
   * While full, the pause is made again after each connection it still
   * gets: libuv's accept restarts the poll.
   */
  #shareAccepts(): void {
    const full = this.#admission.full;
    if (!full && this.#accepting) return;
    for (const server of this.#servers) setAccepting(server, !full);
    this.#accepting = !full;
  }

  #closeServers(): void {
    for (const server of this.#servers) server.close();
  }

  #beginDrain(access: ClientAccess | null): 'draining' | 'drained' {
    this.#closeServers();
    if (access !== null) this.#revokeRefused(access);
    return this.#serveDraining();
  }

  /**
   * A reload may change who is served: as xinetd does, the clients the new
   * only-from/no-access refuse are let go. Those waiting are closed, and
   * the programs serving the others are stopped as at shutdown (SIGTERM to
   * the group, SIGKILL after exit-timeout); connections accepted before the
   * servers closed are checked by the new rules too.
   */
  #revokeRefused(access: ClientAccess): void {
    const label = this.#entry.label;
    this.#filter = new ClientFilter(access, label, this.#log, 'connection');
    const refused = this.#admission.withdrawWhere(({ peer }) => this.#filter.refusal(peer) !== null);
    for (const { connection } of refused) this.#closeAccepted(connection);
    const [first] = refused;
    if (first) {
      const example = `${first.client}: ${this.#filter.refusal(first.peer)}`;
      this.#log.warn(label, `closed ${counted(refused.length, 'waiting client')} the reloaded table refuses (${example})`);
    }
    const graceMs = this.#entry.exitTimeoutMs;
    for (const run of this.#runs) this.#revoke(run, run.pid, `stop pid ${run.pid} client ${run.client}`, () => stopChild(run.child, graceMs));
    // A program that ended may have left its connection to a job in its group.
    for (const [pgid, run] of this.#left.entries()) {
      this.#revoke(run, pgid, `stop process group ${pgid}, left by a program for client ${run.client}`, () => {
        this.#left.remove(pgid);
        return stopGroup(pgid, graceMs);
      });
    }
  }

  /**
   * Stops group `pgid` with `stop` if the new rules refuse `run`'s client,
   * unless it is being stopped already (an earlier reload refused it).
   */
  #revoke(run: Run, pgid: number, what: string, stop: () => Promise<void>): void {
    const why = this.#filter.refusal(run.peer);
    if (why === null || this.#revocations.has(pgid)) return;
    this.#log.warn(this.#entry.label, `${what}: after the reload, ${why}`);
    const stopped = stop().then(() => {
      this.#revocations.delete(pgid);
      this.#dispatch({ type: 'revoked' });
    });
    this.#revocations.set(pgid, stopped);
  }

  /** While draining: serves what the limits let in, and says whether anything is left. */
  #serveDraining(): 'draining' | 'drained' {
    this.#serveQueue();
    if (this.#runs.size > 0 || this.#admission.waiting > 0 || this.#revocations.size > 0) return 'draining';
    if (this.#windowTimer) clearTimeout(this.#windowTimer);
    return 'drained';
  }

  #beginStop(): 'stopping' | 'stopped' {
    this.#closeServers();
    if (this.#windowTimer) clearTimeout(this.#windowTimer);
    const waiting = this.#admission.takeQueue();
    for (const { connection } of waiting) this.#closeAccepted(connection);
    if (waiting.length > 0) {
      this.#log.info(this.#entry.label, `closed ${counted(waiting.length, 'waiting client')}: the service is stopping`);
    }
    // Those a reload refused are being stopped already (#revocations): not signalled again.
    const running = [...this.#runs].filter(({ pid }) => !this.#revocations.has(pid));
    this.#stoppingGroups = running.map(({ pid, child }) => ({ pid, stopped: stopChild(child, this.#entry.exitTimeoutMs) }));
    this.#leftStopping = this.#left.stop(this.#entry.exitTimeoutMs);
    return this.#runs.size === 0 ? 'stopped' : 'stopping';
  }

  /** A second stop: SIGKILL to every group still being stopped, and to those programs left. */
  #killAll(): void {
    for (const pid of [...this.#stoppingGroups.map(({ pid }) => pid), ...this.#revocations.keys()]) signalGroup(pid, 'SIGKILL');
    this.#left.kill();
  }

  #refuseWhileStopping({ connection, client }: WaitingConnection): void {
    this.#log.info(this.#entry.label, `reject client ${client}: the service is stopping`);
    closeGently(letGo(connection, this));
  }

  /** Closed at once, not gently and never counted: the point is to keep fds for the host's other work. */
  #refuseOverBudget(connection: AcceptedConnection): void {
    const client = clientName(connection.peer());
    connection.close();
    this.#reportOverBudget(client);
  }

  /** The budget needs room for another service's client: this service's newest waiting client goes. */
  evictNewest(): boolean {
    const newest = this.#admission.takeNewest();
    if (newest === undefined) return false;
    this.#closeAccepted(newest.connection);
    this.#reportOverBudget(newest.client);
    return true;
  }

  #reportOverBudget(client: string): void {
    const more = this.#overBudget.heldBackNote();
    if (more === null) return;
    this.#log.warn(
      this.#entry.label,
      `reject client ${client}: nowait host pid ${process.pid} already holds ${connectionBudget.limit} connections, ` +
        `all that its open-file limit (ulimit -n) leaves room for; closed its connection${more}`,
    );
  }

  /** What programs left runs on: a drain is done once they have ended. */
  #finishDrain(): void {
    this.#recipe.close();
    this.#drainWaiters.release();
  }

  /** Once the groups of the programs, and those they left, are gone too. */
  #finishStop(): void {
    this.#recipe.close();
    const groupsGone = [...this.#stoppingGroups.map(({ stopped }) => stopped), this.#leftStopping, ...this.#revocations.values()];
    void Promise.all(groupsGone).then(() => {
      this.#stopWaiters.release();
      this.#drainWaiters.release();
    });
  }

  // The transition table: every state, every event. Each handler carries out
  // the effects and names the next state.
  static readonly #transitions = {
    serving: {
      connection: (s, e) => (s.#queue(e.connection), s.#serveQueue(e.connection)),
      exit: (s, e) => (s.#finish(e), s.#serveQueue()),
      window: () => 'serving',
      revoked: () => 'serving',
      drain: (s, e) => s.#beginDrain(e.access),
      stop: (s) => s.#beginStop(),
    },
    throttled: {
      connection: (s, e) => (s.#queue(e.connection, false), 'throttled'),
      exit: (s, e) => (s.#finish(e), 'throttled'),
      window: (s) => {
        const next = s.#serveQueue();
        if (next === 'serving') s.#log.info(s.#entry.label, 'spawn rate back under the limit: serving again');
        return next;
      },
      revoked: () => 'throttled',
      drain: (s, e) => s.#beginDrain(e.access),
      stop: (s) => s.#beginStop(),
    },
    // Connections accepted just before the servers closed still come in; the throttle's window still fires.
    draining: {
      connection: (s, e) => (s.#queue(e.connection), s.#serveDraining()),
      exit: (s, e) => (s.#finish(e), s.#serveDraining()),
      window: (s) => s.#serveDraining(),
      revoked: (s) => s.#serveDraining(),
      // Another reload while it drains: its rules apply to the clients still here.
      drain: (s, e) => (e.access !== null && s.#revokeRefused(e.access), s.#serveDraining()),
      stop: (s) => s.#beginStop(),
    },
    // Its servers are closed: a connection accepted before that was served while draining.
    drained: {
      connection: (s, e) => (s.#refuseWhileStopping(e.connection), 'drained'),
      exit: () => 'drained',
      window: () => 'drained',
      revoked: () => 'drained',
      drain: () => 'drained',
      stop: (s) => s.#beginStop(),
    },
    stopping: {
      connection: (s, e) => (s.#refuseWhileStopping(e.connection), 'stopping'),
      exit: (s, e) => (s.#finish(e), s.#runs.size === 0 ? 'stopped' : 'stopping'),
      window: () => 'stopping',
      revoked: () => 'stopping',
      drain: () => 'stopping',
      stop: (s) => (s.#killAll(), 'stopping'),
    },
    stopped: {
      connection: (s, e) => (s.#refuseWhileStopping(e.connection), 'stopped'),
      exit: () => 'stopped',
      window: () => 'stopped',
      revoked: () => 'stopped',
      drain: () => 'stopped',
      stop: (s) => (s.#killAll(), 'stopped'),
    },
  } satisfies { [S in State]: { [T in Event['type']]: (s: NowaitService, e: Extract<Event, { type: T }>) => State } };
}
