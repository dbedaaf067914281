// The nowait pool: the supervisor's nowait services are served by a few
// small "host" processes (runtime/nowait-host.ts) that share the listening
// sockets, each accepting and starting programs on its own.
//
// Why: Node's spawn() is a fork() that blocks the calling event loop until
// the child has exec'd, and libuv serialises spawns across the threads of a
// process; the fork costs more the larger the process. One event loop
// therefore cannot start more than a few hundred programs a second. Hosts
// are small, and there is one per core (at most four), so their spawns run
// side by side.
//
// The supervisor holds the sockets as raw fds and starts the hosts when the
// first client waits (watched like a wait service's first client), so an
// idle wakeport runs none (the first client after a quiet spell waits about
// a tenth of a second longer); a host exits after --host-idle (default ten
// minutes) without work, and the pool watches again once all have.
//
// Limits stay exact: a service that sets max-connections, max-per-source or
// a nowait.max spawn limit is served by the first host only (per-source and
// spawn counts cannot be split, and a host keeps clients over its limits
// in its own queue). A service with none of them is served by every host,
// its default max-connections divided among them; a host at its part stops
// accepting that service's clients, leaving them in the backlog for a host
// with room.
// So that such a service is never left without a host while others run, a
// host that dies is replaced (after a pause that doubles while replacements
// die within restartGapMs), and one that goes idle is started again at the
// next client of the services only it served.
//
// Hosts that all end (not by --host-idle) within restartGapMs of starting,
// or cannot be started at all (the node binary gone, no fds or processes
// left), are started again at the next client after a pause that doubles each
// time, up to a minute; meanwhile clients wait in the backlog, and the
// failures are logged once a minute with a count.
//
// States: watching (no host; a client starts them) → running → stopping →
// stopped; or, when a reloaded table replaces the pool, → draining (hosts
// stop accepting and exit once their programs have finished) → stopped.

import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { defaultProgramConnections, type ClientAccess, type ServiceEntry } from '../config/entry.js';
import { counted, formatDuration, ReportThrottle, type LogOptions, type Logger } from '../log.js';
import { hasType, type DrainRequest, type DrainStarted, type Hello, type ProgramsReport, type SocketAssignment } from '../runtime/hello.js';
import { watchForClients, type ClientWatch } from '../sockets/helper.js';
import { acceptedConnections } from '../sockets/inspect.js';
import { firstListenFd } from '../sockets/listen-fds.js';
import { runtimeEnvironment } from '../processes/environment.js';
import { forEachLine } from '../processes/output.js';
import { sessionLeadersHolding } from '../processes/group.js';
import { needsLogPipe } from '../processes/program.js';
import { signalGroup } from '../processes/stop.js';
import { LeftPrograms } from './left-programs.js';
import { isSpawnFailure, SpawnFailureLog } from './spawn-failures.js';
import { StopWaiters } from './stop-waiters.js';

type State = 'watching' | 'running' | 'draining' | 'stopping' | 'stopped';

export interface PoolSettings {
  readonly log: LogOptions;
  /** How long a host runs without work before it exits; 0: never. */
  readonly idleExitMs: number;
  /** Hears of each program taken over from a host that died, and of its end (left-programs.ts). */
  readonly onTakenOver?: (pid: number, running: boolean, graceMs: number) => void;
}

export interface PoolService {
  readonly entry: ServiceEntry;
  readonly sockets: readonly SocketAssignment[];
}

const hostMain = fileURLToPath(new URL(`../runtime/nowait-host-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
const hostCount = Math.max(1, Math.min(os.availableParallelism(), 4));
// A fork costs more the more memory the forking process has written and the
// more of its threads are awake on other cores (they must be interrupted to
// flush their TLBs). A host allocates a little for every connection: a small
// young generation keeps its heap small; without the optimizing compiler and
// with garbage collection on the main thread, V8's helper threads stay
// asleep and their malloc arenas unwritten. Measured against the default
// flags (when hosts still used child_process), three interleaved rounds at
// 8 connections: host RSS (anonymous)
// 21–23 MB instead of 26–37 MB, 0.72–0.76 ms of host CPU per connection
// instead of 0.80–0.91, 3.8–5.2% more connections a second.
// --expose-gc: a host collects its garbage once it goes quiet (see nowait-host.ts).
const hostFlags = ['--max-semi-space-size=1', '--no-opt', '--single-threaded-gc', '--expose-gc'];

const restartGapMs = 1000;
/** How long hosts told to stop a second time have to kill their programs and exit. */
const hostKillGraceMs = 1000;
const maxRestartGapMs = 60_000;
const reportEveryMs = 60_000;
const subject = 'wakeport';

interface RunningHost {
  /** The services it serves, with its part of each limit. */
  readonly share: readonly ServiceEntry[];
  /** When it was started: one that dies within restartGapMs of it is replaced after a longer pause. */
  readonly startedAt: number;
}

/** The nowait hosts running, of every pool: a reload starts new pools beside draining ones. */
const runningHostPids = new Set<number>();
/**
 * Each host's last report of its programs, for when it dies; of every pool,
 * so that a scan for one dead host's unreported programs can leave out
 * those another (dead too, or draining) reported.
 */
const reports = new Map<ChildProcess, ProgramsReport>();

export class NowaitPool {
  #state: State = 'watching';
  /** A stop() came: the next one kills (its state may be 'stopped' already, while what hosts left is being stopped). */
  #stopAsked = false;
  readonly #services: readonly PoolService[];
  readonly #logOptions: LogOptions;
  readonly #idleExitMs: number;
  readonly #log: Logger;
  /** Each running host, with the services it serves (its share) and when it started. */
  readonly #hosts = new Map<ChildProcess, RunningHost>();
  /** Watches for the next client of services left without a host by one that went idle (see #keepServed). */
  readonly #orphanWatches = new Set<ClientWatch>();
  /** Hosts started in a row to take over from one that died, each of which died within restartGapMs. */
  #quickReplacements = 0;
  #watch: ClientWatch | null = null;
  #watchGeneration = 0;
  #startedAt = 0;
  /** Starts in a row whose hosts all failed within restartGapMs. */
  #failedStarts = 0;
  /** How hosts of the current start ended within restartGapMs of it. */
  #earlyEnds: string[] = [];
  readonly #problems = new ReportThrottle(reportEveryMs, (count) => this.#log.error(subject, `${counted(count, 'more problem')} with the nowait hosts since the last report`));
  readonly #stopWaiters = new StopWaiters();
  readonly #spawnFailures: SpawnFailureLog;
  readonly #entries: ReadonlyMap<string, ServiceEntry>;
  readonly #left: LeftPrograms;
  readonly #probeFailed = (error: Error): void => this.#log.error(subject, `nowait client probe failed: ${error.message}`);

  private constructor(services: readonly PoolService[], settings: PoolSettings, log: Logger) {
    this.#services = services;
    this.#logOptions = settings.log;
    this.#idleExitMs = settings.idleExitMs;
    this.#log = log;
    this.#entries = new Map(services.map(({ entry }) => [entry.label, entry]));
    this.#spawnFailures = new SpawnFailureLog(this.#entries, log);
    this.#left = new LeftPrograms(log, settings.onTakenOver);
  }

  static start(services: readonly PoolService[], settings: PoolSettings, log: Logger): NowaitPool {
    const pool = new NowaitPool(services, settings, log);
    pool.#watchForClients();
    return pool;
  }

  /**
   * Stops accepting: hosts serve the clients they have taken and exit once
   * their programs have finished (a stop() meanwhile stops them). `access`:
   * the reloaded table's only-from/no-access, by label; the hosts let go of
   * the clients those refuse in the services it has. `released`
   * resolves once no host accepts any more (each has closed its copies of
   * the sockets, or exited), `ended` once every host has exited.
   */
  drain(access: ReadonlyMap<string, ClientAccess> = new Map()): { released: Promise<void>; ended: Promise<void> } {
    const hosts = new Set(this.#hosts.keys());
    const released = new Promise<void>((resolve) => {
      const done = (host: ChildProcess) => {
        hosts.delete(host);
        if (hosts.size === 0) resolve();
      };
      if (hosts.size === 0) resolve();
      for (const host of hosts) {
        host.on('message', (message) => {
          if (hasType<DrainStarted>(message, 'drain-started')) done(host);
        });
        host.once('exit', () => done(host));
      }
    });
    const ended = this.#stopWaiters.wait(() => {
      if (this.#state !== 'watching' && this.#state !== 'running') return;
      this.#state = 'draining';
      this.#closeWatch();
      if (this.#hosts.size === 0) return this.#stopped();
      const request: DrainRequest = { type: 'drain', access: this.#accessOfOwn(access) };
      for (const host of this.#hosts.keys()) host.send(request, () => {});
    });
    return { released, ended };
  }

  /**
   * A later reload while the pool drains: its hosts let go of the clients
   * `access` (the new rules, by label) refuses, as at the drain.
   */
  refuseAnew(access: ReadonlyMap<string, ClientAccess>): void {
    if (this.#state !== 'draining') return;
    const request: DrainRequest = { type: 'drain', access: this.#accessOfOwn(access) };
    for (const host of this.#hosts.keys()) host.send(request, () => {});
  }

  /** The rules of the services this pool serves, out of `access` (by label). */
  #accessOfOwn(access: ReadonlyMap<string, ClientAccess>): DrainRequest['access'] {
    return Object.fromEntries(this.#services.flatMap(({ entry: { label } }) => (access.has(label) ? [[label, access.get(label)!]] : [])));
  }

  /** Stops every host (they stop their programs); a second call kills them. */
  stop(): Promise<void> {
    return this.#stopWaiters.wait(() => {
      if (this.#stopAsked) {
        // Told a second time, each host kills its programs (those not reported yet too) and exits; one that does not is killed.
        for (const host of this.#hosts.keys()) host.kill('SIGTERM');
        setTimeout(() => this.#killHosts(), hostKillGraceMs).unref();
        this.#left.kill();
        return;
      }
      this.#stopAsked = true;
      this.#state = 'stopping';
      this.#closeWatch();
      void this.#left.stop();
      if (this.#hosts.size === 0) return this.#stopped();
      for (const host of this.#hosts.keys()) host.kill('SIGTERM');
    });
  }

  /** Hosts that outlive a second stop: killed, they cannot stop their programs, so those reported are killed too. */
  #killHosts(): void {
    for (const host of this.#hosts.keys()) {
      if (host.pid !== undefined) signalGroup(host.pid, 'SIGKILL');
      const report = reports.get(host);
      for (const pid of report ? reportedPids(report) : []) signalGroup(pid, 'SIGKILL');
    }
  }

  #watchForClients(): void {
    const generation = ++this.#watchGeneration;
    const fds = this.#services.flatMap(({ sockets }) => sockets.map(({ fd }) => fd));
    const onClient = () => {
      if (generation === this.#watchGeneration && this.#state === 'watching') this.#startHosts();
    };
    watchForClients(fds, onClient, this.#probeFailed).then(
      (watch) => {
        if (generation === this.#watchGeneration && this.#state === 'watching') this.#watch = watch;
        else watch.close();
      },
      (error: Error) => {
        this.#report(`cannot watch the nowait services for clients: ${error.message}; starting their hosts now`);
        if (generation === this.#watchGeneration && this.#state === 'watching') this.#startHosts();
      },
    );
  }

  #closeWatch(): void {
    this.#watchGeneration++;
    this.#watch?.close();
    this.#watch = null;
    for (const watch of this.#orphanWatches) watch.close();
    this.#orphanWatches.clear();
  }

  #startHosts(): void {
    this.#closeWatch();
    this.#state = 'running';
    this.#startedAt = Date.now();
    setTimeout(() => this.#reportEarlyEnds(), restartGapMs);
    for (let index = 0; index < hostCount; index++) {
      const share = this.#share(index);
      if (share.length > 0) this.#startHost(share);
    }
    this.#log.debug(subject, `started ${this.#hosts.size} nowait hosts`);
  }

  /** The services host `index` serves, with its part of each limit. */
  #share(index: number): ServiceEntry[] {
    const share: ServiceEntry[] = [];
    for (const { entry } of this.#services) {
      if (hasLimits(entry)) {
        if (index === 0) share.push(entry);
        continue;
      }
      const max = defaultProgramConnections;
      const part = Math.floor(max / hostCount) + (index < max % hostCount ? 1 : 0);
      if (part > 0) share.push({ ...entry, maxConnections: part });
    }
    return share;
  }

  #startHost(entries: readonly ServiceEntry[]): void {
    const given = this.#socketsOf(entries);
    // Services whose programs write into the log share one pipe per host.
    const logged = entries.filter(needsLogPipe).map(({ label }) => label);
    const host = spawn(process.execPath, [...process.execArgv, ...hostFlags, hostMain], {
      stdio: ['ignore', 'inherit', 'inherit', ...given.map(({ fd }) => fd), ...logged.map(() => 'pipe' as const), 'ipc'],
      // Its own process group: stopping the pool reaches the programs only through the host.
      detached: true,
      env: runtimeEnvironment(),
    });
    this.#hosts.set(host, { share: entries, startedAt: Date.now() });
    // Only a host that could not be started has no pid; any other error (a send after its end) comes with an exit.
    host.on('error', (error) => {
      if (host.pid === undefined) this.#hostEnded(host, `could not be started: ${error.message}`);
    });
    if (host.pid !== undefined) runningHostPids.add(host.pid);
    host.once('exit', (code, signal) => {
      runningHostPids.delete(host.pid!);
      const died = code === 0 ? null : `pid ${host.pid} ended (${signal ?? `exitcode ${code}`})`;
      void channelClosed(host).then(() => this.#hostEnded(host, died));
    });
    // Nor stdio, nor (after EMFILE or ENFILE) a channel.
    if (host.pid === undefined) return;
    const sockets = given.map((socket, position) => ({ ...socket, fd: firstListenFd + position }));
    const firstPipe = firstListenFd + given.length;
    const stderrFds = Object.fromEntries(logged.map((label, position) => [label, firstPipe + position]));
    // Read until every holder has closed it, so programs that outlive their host are still heard.
    for (const [label, fd] of Object.entries(stderrFds)) {
      forEachLine(host.stdio[fd] as Readable, (line) => this.#log.output(label, null, line));
    }
    const shared = hostCount === 1 ? [] : entries.filter(({ label }) => !hasLimits(this.#entries.get(label)!)).map(({ label }) => label);
    const hello: Hello = { type: 'hello', log: this.#logOptions, entries, sockets, stderrFds, shared, idleExitMs: this.#idleExitMs };
    host.send(hello);
    host.on('message', (message) => {
      if (isSpawnFailure(message)) this.#spawnFailures.add(message);
      else if (hasType<ProgramsReport>(message, 'programs')) reports.set(host, message);
    });
  }

  /** `failure` says how, for a host that did not exit 0 (which it does only after --host-idle). */
  #hostEnded(host: ChildProcess, died: string | null): void {
    const ended = this.#hosts.get(host);
    if (!ended) return;
    this.#hosts.delete(host);
    const failure = died === null ? null : `${died}${this.#takeOverPrograms(host, ended)}`;
    if (died === null) this.#takeOverLeftGroups(host);
    reports.delete(host);
    if (this.#state === 'stopping' || this.#state === 'draining') {
      // One that dies while stopping may have been killed by a second stop; one that dies while draining is news.
      if (failure !== null && this.#state === 'draining') this.#report(`nowait host ${failure}`);
      if (this.#hosts.size === 0) this.#stopped();
      return;
    }
    const early = failure !== null && Date.now() - this.#startedAt < restartGapMs;
    if (early) this.#earlyEnds.push(failure);
    else if (failure !== null) this.#report(`nowait host ${failure}; ${this.#goOn()}`);
    if (this.#hosts.size > 0) return this.#keepServed(ended, failure !== null);
    this.#closeWatch();
    this.#quickReplacements = 0;
    this.#state = 'watching';
    this.#failedStarts = early ? this.#failedStarts + 1 : 0;
    if (!early) return this.#watchForClients();
    const pauseMs = Math.min(restartGapMs * 2 ** (this.#failedStarts - 1), maxRestartGapMs);
    const inARow = this.#failedStarts > 1 ? ` (${this.#failedStarts} starts in a row)` : '';
    this.#report(
      `${this.#takeEarlyEnds()}: no nowait host lasted ${formatDuration(restartGapMs)}${inARow}; ` +
        `starting them again at the next client in ${formatDuration(pauseMs)}, a pause that doubles while this goes on`,
    );
    setTimeout(() => {
      if (this.#state === 'watching') this.#watchForClients();
    }, pauseMs);
  }

  /** A host died: its programs run on, taken over (left-programs.ts); its waiting clients are lost with it. Says so. */
  #takeOverPrograms(host: ChildProcess, ended: RunningHost): string {
    if (host.pid === undefined) return '';
    const report = reports.get(host);
    const runsOn = this.#takeOver(host.pid, [...(report?.running ?? []), ...this.#unreportedPrograms(host, ended)], report?.left ?? []);
    const waiting = report?.waiting ?? 0;
    const lost = waiting > 0 ? `; ${counted(waiting, 'client')} waiting in its queue closed with it` : '';
    return `${runsOn === null ? '' : `; ${runsOn}`}${lost}`;
  }

  /**
   * A host that drained exits 0 once its programs have ended, leaving what
   * they left in their groups running: its last report names those, and
   * they are stopped when wakeport stops. (A host exits 0 otherwise only
   * after --host-idle, which it does not reach while such groups run.)
   */
  #takeOverLeftGroups(host: ChildProcess): void {
    if ((this.#state !== 'draining' && this.#state !== 'stopping') || host.pid === undefined) return;
    const report = reports.get(host);
    const runsOn = this.#takeOver(host.pid, report?.running ?? [], report?.left ?? []);
    if (runsOn !== null && this.#state === 'draining') this.#log.info(subject, `nowait host pid ${host.pid} has drained; ${runsOn}`);
  }

  /** Takes over the programs and the groups ended programs left, of host `pid`; says what runs on, or null for nothing. */
  #takeOver(pid: number, programs: ProgramsReport['running'], groups: ProgramsReport['left']): string | null {
    const running = this.#left.adopt(pid, 'program', programs, this.#entries);
    const left = this.#left.adopt(pid, 'group', groups, this.#entries);
    const what = [running > 0 ? `its ${counted(running, 'program')}` : '', left > 0 ? `${counted(left, 'process group')} its programs left` : ''];
    if (running + left === 0) return null;
    return `${what.filter(Boolean).join(' and ')} ${running + left === 1 ? 'runs' : 'run'} on, and will be stopped when wakeport stops`;
  }

  /**
   * The programs a host that died started after its last report (at most a
   * tenth of a second before it died): /proc shows them as session leaders
   * holding a connection accepted from its services' sockets, whose parent
   * is no host still running, of any pool (the dead host's children now
   * have another; a reload leaves old hosts draining on the same sockets),
   * and which another host did not report (one that died with it: its
   * programs have lost their parent too). Those it reported, or a pool took
   * over already (an old pool, from its own host that died), are among
   * them: LeftPrograms.adopt skips them.
   * One that has let go of its connection, or whose /proc wakeport may not
   * read (another user's, or one not dumpable), is not found.
   */
  #unreportedPrograms(host: ChildProcess, { share }: RunningHost): [pid: number, label: string][] {
    const labels = new Map<string, string>();
    for (const { entry, sockets } of this.#services.filter(({ entry }) => share.some(({ label }) => label === entry.label))) {
      for (const connection of acceptedConnections(sockets.map(({ fd }) => fd))) labels.set(connection, entry.label);
    }
    if (labels.size === 0) return [];
    const hosts = new Set([host.pid, ...runningHostPids]);
    const othersPrograms = new Set([...reports].filter(([other]) => other !== host).flatMap(([, report]) => reportedPids(report)));
    return sessionLeadersHolding(new Set(labels.keys()))
      .filter(({ pid, ppid }) => !hosts.has(pid) && !hosts.has(ppid) && !othersPrograms.has(pid))
      .map(({ pid, file }) => [pid, labels.get(file)!]);
  }

  /**
   * A host ended while others go on. Services that only it served (those
   * with limits of their own) would have no host until all the others end
   * too: a host that died is replaced after a pause (doubling while its
   * replacements die within restartGapMs), one that went idle at their next
   * client.
   */
  #keepServed(ended: RunningHost, died: boolean): void {
    const served = new Set([...this.#hosts.values()].flatMap(({ share }) => share.map(({ label }) => label)));
    const orphans = ended.share.filter(({ label }) => !served.has(label));
    if (orphans.length === 0) return;
    if (!died) return this.#watchOrphans(orphans, ended.share);
    const quick = Date.now() - ended.startedAt < restartGapMs;
    this.#quickReplacements = quick ? this.#quickReplacements + 1 : 0;
    const pauseMs = Math.min(restartGapMs * 2 ** this.#quickReplacements, maxRestartGapMs);
    const running = this.#running();
    setTimeout(() => {
      if (running()) this.#startHost(ended.share);
    }, pauseMs);
  }

  /** Starts a host for `share` at the next client of `orphans` (the part of it no other host serves). */
  #watchOrphans(orphans: readonly ServiceEntry[], share: readonly ServiceEntry[]): void {
    const fds = this.#socketsOf(orphans).map(({ fd }) => fd);
    const running = this.#running();
    let watch: ClientWatch | null = null;
    let started = false;
    const startHost = () => {
      if (started || !running()) return;
      started = true;
      if (watch) this.#orphanWatches.delete(watch);
      watch?.close();
      this.#startHost(share);
    };
    watchForClients(fds, startHost, this.#probeFailed).then(
      (made) => {
        watch = made;
        if (started || !running()) return made.close();
        this.#orphanWatches.add(made);
      },
      (error: Error) => {
        this.#report(`cannot watch the nowait services for clients: ${error.message}; starting their host now`);
        startHost();
      },
    );
  }

  /** The listening sockets of `entries`, in the pool's order. */
  #socketsOf(entries: readonly ServiceEntry[]): SocketAssignment[] {
    const labels = new Set(entries.map(({ label }) => label));
    return this.#services.filter(({ entry }) => labels.has(entry.label)).flatMap(({ sockets }) => sockets);
  }

  /** Whether the hosts running now are still running (not stopped, nor all ended and started again since). */
  #running(): () => boolean {
    const generation = this.#watchGeneration;
    return () => this.#state === 'running' && this.#watchGeneration === generation;
  }

  /** Hosts that ended early while others went on are reported once the others have lasted. */
  #reportEarlyEnds(): void {
    if (this.#state === 'running' && this.#earlyEnds.length > 0) this.#report(`${this.#takeEarlyEnds()}; ${this.#goOn()}`);
  }

  /** The early ends so far, each way once: "nowait host could not be started: … (2 hosts)". */
  #takeEarlyEnds(): string {
    const counts = new Map<string, number>();
    for (const failure of this.#earlyEnds.splice(0)) counts.set(failure, (counts.get(failure) ?? 0) + 1);
    return [...counts].map(([failure, count]) => `nowait host ${failure}${count > 1 ? ` (${count} hosts)` : ''}`).join('; ');
  }

  #goOn(): string {
    const left = this.#hosts.size;
    if (left === 0) return 'hosts start again at the next client';
    return left === 1 ? 'the other host goes on' : `the other ${left} hosts go on`;
  }

  /** The pool's problems can repeat every second: the first is logged, the rest counted for a minute. */
  #report(problem: string): void {
    const more = this.#problems.heldBackNote('problems');
    if (more === null) return;
    this.#log.error(subject, `${problem}${more}; further problems are counted, not logged, for ${formatDuration(reportEveryMs)}`);
  }

  /** Every host has ended: the pool has, once the programs taken over from hosts that died have too. */
  #stopped(): void {
    const stopping = this.#state === 'stopping';
    this.#state = 'stopped';
    void (stopping ? this.#left.stop() : this.#left.ended()).then(() => this.#stopWaiters.release());
  }
}

/**
 * Resolves once `host`'s IPC channel has closed, so that every message it
 * sent has come (its exit and the channel's end come in either order), or
 * a second after this is asked at most.
 */
function channelClosed(host: ChildProcess): Promise<void> {
  if (!host.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    host.once('disconnect', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The programs and groups a host reported. */
function reportedPids({ running, left }: ProgramsReport): number[] {
  return [...running, ...left].map(([pid]) => pid);
}

/** Whether a service sets limits of its own: then one host serves it, so that they are exact. */
function hasLimits(entry: ServiceEntry): boolean {
  return entry.maxConnections !== null || entry.maxPerSource !== null || entry.maxSpawns !== null;
}
