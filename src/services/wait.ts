// A wait service: one worker is handed the listening sockets and accepts on
// them itself (inetd wait, launchd on-demand, systemd Accept=no). The
// supervisor holds the sockets as raw fds it never wraps, so they outlive
// every worker: clients that arrive while no worker runs wait in the kernel's
// backlog, with the bytes they sent, for the next one.
//
// States:
//   idle       no worker; probes watch for a waiting client (stream sockets)
//   starting   a worker was started and has not checked in yet (ready = notify)
//   ready      the worker is up
//   replacing  watched files changed: a new worker is starting beside the
//              ready one, which gets SIGTERM once the new one is ready
//   killing    the worker did not check in within start-timeout and is being stopped
//   backoff    waiting before the next start, after a failure (or a too quick exit)
//   failed     too many failures within start-limit-interval: clients are
//              accepted and closed until failed-cooldown has passed
//   stopping   wakeport is stopping: the workers got SIGTERM
//   stopped    every worker has exited
//
// Events: client (a probe saw a waiting client), probes (fresh probe copies
// arrived), ready (READY=1), exit, start-timeout, timer (back-off or cooldown
// over), changed (watched files), stop. The table at the bottom is every
// transition; effects are the methods it calls.

import type { ChildProcess } from 'node:child_process';
import type net from 'node:net';
import type { ServiceEntry } from '../config/entry.js';
import { errnoOf } from '../errors.js';
import { counted, formatDuration, ReportThrottle, type LogFields, type Logger } from '../log.js';
import { ProgramRecipe } from '../processes/program.js';
import { membersHolding } from '../processes/group.js';
import { signalGroup, stopChild, stopGroup } from '../processes/stop.js';
import { startRefuser, watchForClients, type ClientWatch, type Refuser } from '../sockets/helper.js';
import { socketInode, waitingConnections } from '../sockets/inspect.js';
import { LeftGroups } from './left-groups.js';
import { explainSpawnFailure } from './spawn-failures.js';
import { watchTree, type TreeWatch } from './watch-tree.js';
import { StopWaiters } from './stop-waiters.js';

type State = 'idle' | 'starting' | 'ready' | 'replacing' | 'killing' | 'backoff' | 'failed' | 'stopping' | 'stopped';

interface Worker {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  ready: boolean;
  /** Its exit (or failure to start) has been dispatched: nothing is left to stop. */
  ended: boolean;
  startTimer: NodeJS.Timeout | null;
  /** Why it could not be started (no process), for the one line that reports its end. */
  startError: string | null;
  /** wakeport is stopping it and its group: resolves once they are gone. */
  stopping: Promise<void> | null;
}

type Event =
  | { readonly type: 'client' }
  | { readonly type: 'probes'; readonly generation: number; readonly watch: ClientWatch | null }
  | { readonly type: 'ready'; readonly worker: Worker }
  | { readonly type: 'exit'; readonly worker: Worker; readonly code: number | null; readonly signal: string | null }
  | { readonly type: 'start-timeout'; readonly worker: Worker }
  | { readonly type: 'timer' }
  | { readonly type: 'changed' }
  | { readonly type: 'stop' };

type ExitEvent = Event & { type: 'exit' };

// A worker that exits cleanly is not started again sooner than this after its
// last start (s6-supervise's rule), so a program that exits at once cannot
// spin; nor, started by its clients, one that never accepts them (see #tookNoClient).
const minimumRestartGapMs = 1000;
// Changes to watched files within this long of each other restart once.
const watchSettleMs = 200;
const probeRetryMs = 1000;
const watchFailureReportMs = 60_000;

export class WaitService {
  #state: State;
  readonly #entry: ServiceEntry;
  readonly #fds: readonly number[];
  readonly #log: Logger;
  readonly #recipe: ProgramRecipe;
  readonly #canProbe: boolean;
  #current: Worker | null = null;
  #next: Worker | null = null;
  readonly #retiring = new Set<Worker>();
  #clientWatch: ClientWatch | null = null;
  #probeGeneration = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Why the worker starts when the back-off timer fires, for the log. */
  #restartWhy = 'restart';
  /** Failure times within start-limit-interval, oldest first. */
  #failures: number[] = [];
  #consecutiveFailures = 0;
  /** Watched files changed while a worker (or a replacement) was starting: a replacement follows once it is ready. */
  #changedWhileStarting = false;
  /** The replacement starting was started for a change while the one before it started (#afterReplacement). */
  #followUp = false;
  /** The clients waiting when the last worker exited cleanly within a second of its start (see #tookNoClient). */
  #leftWaiting: Set<string> | null = null;
  /** What workers that exited left running in their groups (see #afterWorker). */
  readonly #left = new LeftGroups((pgid) => this.#onWorker(pgid, false));
  #refuser: Refuser | null = null;
  /** The refuser is stopping: nothing starts until it has (it would take the new worker's clients). */
  #refuserStopping = false;
  /** Resolves once the last refuser stopped has exited. */
  #refuserGone: Promise<void> = Promise.resolve();
  #refused = 0;
  readonly #watchers: TreeWatch[] = [];
  readonly #stopWaiters = new StopWaiters();
  #onWorker: (pid: number, running: boolean) => void = () => {};
  readonly #watchFailures = new ReportThrottle(watchFailureReportMs, (count) =>
    this.#log.error(this.#entry.label, `cannot watch for clients: ${counted(count, 'more failure')} since the last report`),
  );

  private constructor(entry: ServiceEntry, fds: readonly number[], recipe: ProgramRecipe, log: Logger) {
    this.#entry = entry;
    this.#fds = fds;
    this.#recipe = recipe;
    this.#log = log;
    this.#canProbe = entry.transport !== 'udp';
    this.#state = 'idle';
  }

  /**
   * Holds `fds` (never wrapping them) and starts the worker now or at the
   * first client. `onWorker` hears of every worker that starts and ends
   * (runtime/left-workers.ts).
   */
  static start(
    entry: ServiceEntry,
    fds: readonly number[],
    log: Logger,
    onWorker: (pid: number, running: boolean) => void = () => {},
  ): Promise<WaitService> {
    if (entry.program.kind !== 'exec') throw new Error(`internal: ${entry.label} is not a program service`);
    const service = new WaitService(entry, fds, new ProgramRecipe(entry, entry.program, log), log);
    service.#onWorker = onWorker;
    service.#watchFiles();
    if (entry.worker.runAtLoad) service.#state = service.#startWorker('at load');
    else service.#becomeIdle();
    return Promise.resolve(service);
  }

  /** Stops the service; resolves once every worker, and what workers left in their groups, has exited. A second call kills what is left. */
  stop(): Promise<void> {
    return this.stopReleasing().ended;
  }

  /**
   * stop(), telling apart `released`: no worker holds the sockets any more
   * (a reload may start the service's successor on them), and `ended`: what
   * workers left in their groups, which do not hold them, is gone too.
   */
  stopReleasing(): { released: Promise<void>; ended: Promise<void> } {
    // A second stop once no worker runs: what they left goes at once too.
    if (this.#state === 'stopped') this.#left.kill();
    // A successor on the same sockets must not start while a refuser could still close its clients.
    const released = this.#stopWaiters.wait(() => this.#dispatch({ type: 'stop' })).then(() => this.#refuserGone);
    return { released, ended: released.then(() => this.#left.stop(this.#entry.exitTimeoutMs)) };
  }

  #dispatch(event: Event): void {
    if ((event.type === 'exit' || event.type === 'start-timeout' || event.type === 'ready') && this.#retiring.has(event.worker)) {
      if (event.type === 'exit') this.#retired(event);
      return;
    }
    const handler = WaitService.#transitions[this.#state][event.type] as (s: WaitService, e: Event) => State;
    const next = handler(this, event);
    if (next === this.#state) return;
    this.#state = next;
    if (next === 'stopped') this.#finishStop();
  }

  // ---- effects, called from the transition table ----

  /** Starts a worker as the current one, or (`asReplacement`) beside it. */
  #startWorker(why: string, asReplacement = false): 'starting' | 'ready' {
    this.#disarmProbes();
    const notify = this.#entry.worker.ready === 'notify';
    const { child, notifyFd } = this.#recipe.spawnWorker(this.#fds, notify);
    const worker: Worker = { child, pid: child.pid ?? -1, startedAt: performance.now(), ready: !notify, ended: false, startTimer: null, startError: null, stopping: null };
    const ended = (code: number | null, signal: string | null) => {
      worker.ended = true;
      // A group left running stays the launcher's to stop should the supervisor die, until it is gone.
      if (child.pid !== undefined && !this.#left.has(child.pid)) this.#onWorker(child.pid, false);
      this.#dispatch({ type: 'exit', worker, code, signal });
    };
    if (child.pid === undefined) {
      child.once('error', (error) => {
        const errno = errnoOf(error);
        worker.startError = `${this.#recipe.path}: ${errno ?? ''} ${explainSpawnFailure(this.#entry, errno, error.message)}`;
        ended(null, null);
      });
    } else {
      this.#onWorker(child.pid, true);
      child.once('exit', (code, signal) => void this.#afterWorker(worker).then(() => ended(code, signal)));
      this.#log.info(this.#entry.label, `start worker pid ${worker.pid} (${why})`, { pid: worker.pid });
    }
    if (notifyFd !== null && child.pid !== undefined) this.#readNotifications(worker, child, notifyFd);
    if (asReplacement) this.#next = worker;
    else this.#current = worker;
    return worker.ready ? 'ready' : 'starting';
  }

  /**
   * Once the worker has exited: what it left in its process group. Those
   * that hold the service's sockets would accept on them beside the next
   * worker: they are stopped (SIGTERM, SIGKILL after exit-timeout) before
   * the worker counts as ended. The others (a tftpd's transfers, each on a
   * socket of its own) run on, as under inetd, and are stopped with the
   * service. Resolves once the worker counts as ended.
   */
  #afterWorker(worker: Worker): Promise<void> {
    if (worker.stopping) return worker.stopping; // wakeport stops its group already.
    if (!signalGroup(worker.pid, 0)) return Promise.resolve();
    const sockets = new Set(this.#fds.map(socketInode).filter((inode) => inode !== undefined));
    const holders = membersHolding(worker.pid, sockets);
    const left = `worker pid ${worker.pid} has exited, leaving processes in its group`;
    if (holders.length > 0) {
      this.#log.warn(this.#entry.label, `${left} that hold its sockets (pid ${holders.join(', ')}): stopping them`);
      return stopGroup(worker.pid, this.#entry.exitTimeoutMs);
    }
    this.#log.info(this.#entry.label, `${left}, none holding its sockets: they run on, and are stopped when the service stops`);
    this.#left.add(worker.pid);
    return Promise.resolve();
  }

  #readNotifications(worker: Worker, child: ChildProcess, notifyFd: number): void {
    const pipe = child.stdio[notifyFd] as net.Socket | null;
    if (!pipe) return;
    worker.startTimer = setTimeout(() => this.#dispatch({ type: 'start-timeout', worker }), this.#entry.worker.startTimeoutMs);
    pipe.setEncoding('utf8');
    // sd_notify() sends a message without a newline (it is a datagram there):
    // here a write on the pipe is a message, of newline-separated assignments.
    pipe.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line !== '') this.#onNotification(worker, line);
    });
  }

  #onNotification(worker: Worker, line: string): void {
    const [key, value] = line.split(/=(.*)/s) as [string, string | undefined];
    if (key === 'READY' && value === '1' && !worker.ready) {
      worker.ready = true;
      if (worker.startTimer) clearTimeout(worker.startTimer);
      this.#log.info(this.#entry.label, `worker pid ${worker.pid} is ready (after ${formatDuration(performance.now() - worker.startedAt)})`);
      this.#dispatch({ type: 'ready', worker });
    } else if (key === 'STATUS') this.#log.info(this.#entry.label, `worker pid ${worker.pid} status: ${value ?? ''}`);
    else if (key === 'STOPPING' && value === '1') this.#log.info(this.#entry.label, `worker pid ${worker.pid} is stopping`);
    else if (key !== 'WATCHDOG') this.#log.debug(this.#entry.label, `worker pid ${worker.pid} sent ${JSON.stringify(line)}`);
  }

  /** After a worker's exit in starting, ready or killing: decide what comes next. */
  #afterExit(event: ExitEvent, timedOut = false): State {
    const { worker, code, signal } = event;
    this.#current = null;
    this.#changedWhileStarting = false; // The next worker starts with the files as they are now.
    if (worker.startTimer) clearTimeout(worker.startTimer);
    const uptimeMs = performance.now() - worker.startedAt;
    const who = worker.pid === -1 ? 'the worker' : `worker pid ${worker.pid}`;
    // A clean exit is a failure too before the worker checked in (ready = notify): the log says why.
    const unready = code === 0 && signal === null && !worker.ready ? ' before it sent READY=1' : '';
    const what =
      code === null && signal === null
        ? `${who} could not start (${worker.startError ?? 'no reason given'})`
        : `${who} ${howItExited(event)}${unready} after ${formatDuration(uptimeMs)}`;
    const failed = timedOut || signal !== null || code !== 0 || !worker.ready;
    const left = this.#leftWaiting;
    this.#leftWaiting = null;
    const fields = exitFields(event);
    if (failed) return this.#afterFailure(what, uptimeMs, fields);
    const untaken = uptimeMs < minimumRestartGapMs ? this.#tookNoClient(left) : null;
    if (untaken !== null) return this.#afterFailure(`${what} without accepting a client: ${untaken}`, uptimeMs, fields);
    if (this.#entry.worker.restart === 'always') {
      const gapMs = minimumRestartGapMs - uptimeMs;
      this.#log.info(this.#entry.label, `${what}; restarting${gapMs > 0 ? ` in ${formatDuration(gapMs)}` : ''} (kept alive)`, fields);
      if (gapMs <= 0) return this.#startWorker('kept alive');
      this.#restartWhy = 'kept alive';
      this.#arm(gapMs);
      return 'backoff';
    }
    this.#log.info(this.#entry.label, `${what}; waiting for the next client`, fields);
    return this.#becomeIdle();
  }

  /**
   * After a clean exit within a second of the start: why the worker took
   * none of its clients, or null. inetd calls such a worker looping; it
   * would be started again and again for ever, so it counts as a failure.
   * It took none when every client that waited as it started (`left` by the
   * worker before it, which also exited that soon) waits still: the kernel
   * hands out connections oldest first. A worker that takes one client and
   * exits, leaving the others, and one that exits before a client comes
   * (a dev server with a short idle timeout), are not looping. The first
   * quick exit with clients waiting only notes them: one start more.
   * Noted on every such exit (those found looping too), until a worker
   * lives a second or exits otherwise.
   */
  #tookNoClient(left: Set<string> | null): string | null {
    if (!this.#canProbe) return null;
    let waiting: Set<string>;
    try {
      waiting = waitingConnections(this.#fds);
    } catch {
      return null; // /proc cannot tell (not Linux's, or hidden): such a worker is not caught.
    }
    if (waiting.size === 0) return null;
    this.#leftWaiting = waiting;
    if (left === null || ![...left].every((key) => waiting.has(key))) return null;
    const clients = left.size === 1 ? 'the client that was waiting when it started still waits' : `the ${left.size} clients that were waiting when it started still wait`;
    return `${clients} (a wait worker must accept its clients)`;
  }

  #afterFailure(what: string, uptimeMs: number, fields: LogFields): 'backoff' | 'failed' {
    const policy = this.#entry.worker;
    const now = Date.now();
    this.#failures = [...this.#failures.filter((time) => time > now - policy.startLimitIntervalMs), now];
    const window = formatDuration(policy.startLimitIntervalMs);
    if (this.#failures.length >= policy.startLimitBurst) {
      this.#log.error(
        this.#entry.label,
        `${what}: ${counted(this.#failures.length, 'failure')} within ${window}, giving up for ${formatDuration(policy.failedCooldownMs)}` +
          (this.#canProbe ? '; waiting clients are closed until then' : ''),
        fields,
      );
      this.#giveUp();
      return 'failed';
    }
    // A worker that stayed up longer than the longest back-off was healthy: start counting again.
    this.#consecutiveFailures = uptimeMs >= policy.restartMaxDelayMs ? 1 : this.#consecutiveFailures + 1;
    const delayMs = Math.min(policy.restartDelayMs * 2 ** (this.#consecutiveFailures - 1), policy.restartMaxDelayMs);
    const after = policy.restart === 'no' ? 'waiting for clients again' : 'restarting';
    this.#log.warn(
      this.#entry.label,
      `${what}; ${after} in ${formatDuration(delayMs)} (failure ${this.#failures.length} of ${policy.startLimitBurst} within ${window})`,
      fields,
    );
    this.#restartWhy = 'restart after a failure';
    this.#arm(delayMs);
    return 'backoff';
  }

  /** The back-off or the cooldown is over: start again, or wait for a client. */
  #resume(): State {
    if (this.#entry.worker.restart !== 'no') return this.#startWorker(this.#restartWhy);
    return this.#becomeIdle();
  }

  /** Watched files changed while a failure holds the service back: the change may be the fix, so it is tried at once. */
  #tryChange(): State {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#restartWhy = 'watched files changed';
    if (this.#state === 'failed') return this.#endCooldown();
    this.#log.info(this.#entry.label, 'watched files changed: trying again');
    return this.#resume();
  }

  #giveUp(): void {
    this.#consecutiveFailures = 0;
    this.#failures = [];
    this.#restartWhy = 'cooldown over';
    this.#arm(this.#entry.worker.failedCooldownMs);
    if (!this.#canProbe) return;
    this.#refused = 0;
    const onClosed = (count: number) => {
      if (this.#refused === 0) this.#log.warn(this.#entry.label, `closed ${counted(count, 'waiting client')}: the service has failed`);
      this.#refused += count;
    };
    const onError = (error: Error) =>
      this.#log.error(this.#entry.label, `cannot close waiting clients: ${error.message}; they wait until the cooldown is over`);
    this.#refuser = startRefuser(this.#fds, this.#entry.backlog, onClosed, onError);
  }

  /** The cooldown is over: the refuser is stopped first, so that it takes no client the next worker should get. */
  #endCooldown(): State {
    // A change while the refuser stops: the start comes once it has.
    if (this.#refuserStopping) return 'failed';
    if (this.#refuser) {
      this.#stopRefuser();
      this.#refuserStopping = true;
      void this.#refuserGone.then(() => {
        this.#refuserStopping = false;
        if (this.#refused > 0) this.#log.info(this.#entry.label, `closed ${counted(this.#refused, 'client')} in all while failed`);
        this.#dispatch({ type: 'timer' });
      });
      return 'failed';
    }
    this.#log.info(this.#entry.label, `${this.#restartWhy}: trying again`);
    return this.#resume();
  }

  /** Stops the refuser, if one runs; #refuserGone resolves once it has exited. */
  #stopRefuser(): void {
    if (!this.#refuser) return;
    this.#refuserGone = this.#refuser.stop();
    this.#refuser = null;
  }

  #becomeIdle(): 'idle' {
    if (this.#canProbe) this.#armProbes();
    return 'idle';
  }

  #armProbes(): void {
    const generation = ++this.#probeGeneration;
    const onClient = () => {
      if (generation === this.#probeGeneration) this.#dispatch({ type: 'client' });
    };
    const onError = (error: Error) => this.#log.error(this.#entry.label, `client probe failed: ${error.message}`);
    watchForClients(this.#fds, onClient, onError).then(
      (watch) => this.#dispatch({ type: 'probes', generation, watch }),
      (error: Error) => {
        this.#reportWatchFailure(error);
        this.#dispatch({ type: 'probes', generation, watch: null });
      },
    );
  }

  /** A failure that can repeat every probeRetryMs: the first is logged, the rest counted for a minute. */
  #reportWatchFailure(error: Error): void {
    const more = this.#watchFailures.heldBackNote('failures');
    if (more === null) return;
    this.#log.error(
      this.#entry.label,
      `cannot watch for clients: ${error.message}${more}; trying again every ${formatDuration(probeRetryMs)}, ` +
        `further failures counted, not logged, for ${formatDuration(watchFailureReportMs)}`,
    );
  }

  /** Keeps the new client watch, unless it is stale; retries a failed one. */
  #attachProbes(event: Event & { type: 'probes' }): void {
    if (event.generation !== this.#probeGeneration) {
      event.watch?.close();
      return;
    }
    if (event.watch === null) {
      setTimeout(() => {
        if (this.#state === 'idle' && event.generation === this.#probeGeneration) this.#armProbes();
      }, probeRetryMs);
      return;
    }
    this.#clientWatch = event.watch;
    this.#log.debug(this.#entry.label, 'waiting for a client');
  }

  #disarmProbes(): void {
    this.#probeGeneration++;
    this.#clientWatch?.close();
    this.#clientWatch = null;
  }

  #arm(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#dispatch({ type: 'timer' });
    }, delayMs);
  }

  /**
   * With ready = spawn, a new worker that started counts as ready: the old
   * one is stopped at once. One that could not start ends (as an exit)
   * before it replaces anything.
   */
  #startReplacement(): 'replacing' | 'ready' {
    const when = this.#entry.worker.ready === 'notify' ? 'once it is ready' : 'once it has started';
    this.#log.info(this.#entry.label, `watched files changed: starting a new worker; the running one stops ${when}`);
    const started = this.#startWorker('watched files changed', true);
    return started === 'ready' && this.#next?.pid !== -1 ? this.#promoteReplacement() : 'replacing';
  }

  /** The replacement is ready: it becomes the current worker, and the old one is stopped. */
  #promoteReplacement(): 'ready' {
    this.#leftWaiting = null; // Who waited when a worker before it exited says nothing of this one.
    if (this.#current) this.#retire(this.#current);
    this.#current = this.#next;
    this.#next = null;
    return 'ready';
  }

  #howItEnded(worker: Worker): string {
    return worker.pid === -1 ? 'could not start' : `pid ${worker.pid} exited before it was ready`;
  }

  #abandonReplacement(why: string): 'ready' {
    this.#log.warn(this.#entry.label, `the new worker ${why}; the running worker stays`);
    if (this.#next) this.#retire(this.#next);
    this.#next = null;
    return 'ready';
  }

  /** The current worker died while its replacement was starting: the replacement takes over. */
  #replacementTakesOver(event: ExitEvent): 'ready' | 'replacing' | 'starting' {
    this.#log.warn(this.#entry.label, `worker pid ${event.worker.pid} ${howItExited(event)} while its replacement was starting`, exitFields(event));
    this.#leftWaiting = null;
    this.#current = this.#next;
    this.#next = null;
    return this.#current?.ready ? this.#afterReplacement() : 'starting';
  }

  /**
   * A replacement is settled (promoted, abandoned, or taken over): a change
   * while it started is one more replacement, unless this one was such a
   * follow-up too. A worker that writes under its own watched path as it
   * starts (a pid file, a cache) would otherwise be replaced for ever.
   */
  #afterReplacement(): 'ready' | 'replacing' {
    if (!this.#changedWhileStarting) {
      this.#followUp = false;
      return 'ready';
    }
    this.#changedWhileStarting = false;
    if (this.#followUp) {
      this.#followUp = false;
      this.#log.warn(
        this.#entry.label,
        'watched files changed again while the new worker started, as while the one before it did: the worker may write ' +
          'under its own watched path; no new worker for that change (the next one starts one)',
      );
      return 'ready';
    }
    this.#followUp = true;
    return this.#startReplacement();
  }

  #retire(worker: Worker): void {
    if (worker.startTimer) clearTimeout(worker.startTimer);
    // One that has ended would never leave #retiring, and stopping would wait for it for ever.
    if (worker.ended) return;
    this.#retiring.add(worker);
    worker.stopping ??= stopChild(worker.child, this.#entry.exitTimeoutMs);
  }

  #retired(event: ExitEvent): void {
    this.#retiring.delete(event.worker);
    const how = event.signal !== null ? `signal ${event.signal}` : `exitcode ${event.code}`;
    this.#log.info(this.#entry.label, `worker pid ${event.worker.pid} ended (${how})`, exitFields(event));
    if (this.#state === 'stopping' && this.#workerCount() === 0) this.#dispatch({ type: 'stop' });
  }

  #onReady(): 'ready' | 'replacing' {
    if (!this.#changedWhileStarting) return 'ready';
    this.#changedWhileStarting = false;
    return this.#startReplacement();
  }

  #killUnready(): 'killing' {
    this.#log.warn(
      this.#entry.label,
      `worker pid ${this.#current?.pid} did not check in within ${formatDuration(this.#entry.worker.startTimeoutMs)}; stopping it`,
    );
    if (this.#current) this.#current.stopping ??= stopChild(this.#current.child, this.#entry.exitTimeoutMs);
    return 'killing';
  }

  #beginStop(): 'stopping' | 'stopped' {
    this.#disarmProbes();
    if (this.#timer) clearTimeout(this.#timer);
    for (const watcher of this.#watchers) watcher.close();
    this.#stopRefuser();
    for (const worker of [this.#current, this.#next]) if (worker) this.#retire(worker);
    this.#current = this.#next = null;
    void this.#left.stop(this.#entry.exitTimeoutMs);
    return this.#workerCount() === 0 ? 'stopped' : 'stopping';
  }

  #workerCount(): number {
    return this.#retiring.size + (this.#current ? 1 : 0) + (this.#next ? 1 : 0);
  }

  #killAll(): void {
    for (const worker of this.#retiring) signalGroup(worker.pid, 'SIGKILL');
    this.#left.kill();
  }

  #finishStop(): void {
    this.#recipe.close();
    this.#stopWaiters.release();
  }

  #watchFiles(): void {
    let settle: NodeJS.Timeout | null = null;
    const changed = () => {
      if (settle) clearTimeout(settle);
      settle = setTimeout(() => this.#dispatch({ type: 'changed' }), watchSettleMs);
    };
    for (const target of this.#entry.worker.watch) {
      try {
        this.#watchers.push(watchTree(target, changed));
      } catch (error) {
        this.#log.warn(this.#entry.label, `cannot watch ${target}: ${errnoOf(error) ?? (error as Error).message}`);
      }
    }
  }

  // The transition table: every state, every event. Each handler carries out
  // the effects and names the next state; "same" handlers ignore the event.
  static readonly #transitions = {
    idle: {
      client: (s) => s.#startWorker('a client is waiting'),
      probes: (s, e) => (s.#attachProbes(e), 'idle'),
      ready: () => 'idle',
      exit: () => 'idle',
      'start-timeout': () => 'idle',
      timer: () => 'idle',
      changed: () => 'idle',
      stop: (s) => s.#beginStop(),
    },
    starting: {
      client: () => 'starting',
      probes: (s, e) => (s.#attachProbes(e), 'starting'),
      ready: (s) => s.#onReady(),
      exit: (s, e) => s.#afterExit(e),
      'start-timeout': (s) => s.#killUnready(),
      timer: () => 'starting',
      changed: (s) => ((s.#changedWhileStarting = true), 'starting'),
      stop: (s) => s.#beginStop(),
    },
    ready: {
      client: () => 'ready',
      probes: (s, e) => (s.#attachProbes(e), 'ready'),
      ready: () => 'ready',
      exit: (s, e) => s.#afterExit(e),
      'start-timeout': () => 'ready',
      timer: () => 'ready',
      changed: (s) => s.#startReplacement(),
      stop: (s) => s.#beginStop(),
    },
    replacing: {
      client: () => 'replacing',
      probes: (s, e) => (s.#attachProbes(e), 'replacing'),
      // A change while the replacement starts is another replacement once this one is settled (#afterReplacement).
      ready: (s) => (s.#promoteReplacement(), s.#afterReplacement()),
      exit: (s, e) => (e.worker === s.#next ? (s.#abandonReplacement(s.#howItEnded(e.worker)), s.#afterReplacement()) : s.#replacementTakesOver(e)),
      'start-timeout': (s) => (s.#abandonReplacement(`did not check in within ${formatDuration(s.#entry.worker.startTimeoutMs)}`), s.#afterReplacement()),
      timer: () => 'replacing',
      changed: (s) => ((s.#changedWhileStarting = true), 'replacing'),
      stop: (s) => s.#beginStop(),
    },
    killing: {
      client: () => 'killing',
      probes: (s, e) => (s.#attachProbes(e), 'killing'),
      ready: () => 'killing',
      exit: (s, e) => s.#afterExit(e, true),
      'start-timeout': () => 'killing',
      timer: () => 'killing',
      changed: () => 'killing',
      stop: (s) => s.#beginStop(),
    },
    backoff: {
      client: () => 'backoff',
      probes: (s, e) => (s.#attachProbes(e), 'backoff'),
      ready: () => 'backoff',
      exit: () => 'backoff',
      'start-timeout': () => 'backoff',
      timer: (s) => s.#resume(),
      changed: (s) => s.#tryChange(),
      stop: (s) => s.#beginStop(),
    },
    failed: {
      client: () => 'failed',
      probes: (s, e) => (s.#attachProbes(e), 'failed'),
      ready: () => 'failed',
      exit: () => 'failed',
      'start-timeout': () => 'failed',
      timer: (s) => s.#endCooldown(),
      changed: (s) => s.#tryChange(),
      stop: (s) => s.#beginStop(),
    },
    stopping: {
      client: () => 'stopping',
      probes: (s, e) => (s.#attachProbes(e), 'stopping'),
      ready: () => 'stopping',
      exit: (s) => (s.#workerCount() === 0 ? 'stopped' : 'stopping'),
      'start-timeout': () => 'stopping',
      timer: () => 'stopping',
      changed: () => 'stopping',
      stop: (s) => (s.#workerCount() === 0 ? 'stopped' : (s.#killAll(), 'stopping')),
    },
    stopped: {
      client: () => 'stopped',
      probes: (s, e) => (s.#attachProbes(e), 'stopped'),
      ready: () => 'stopped',
      exit: () => 'stopped',
      'start-timeout': () => 'stopped',
      timer: () => 'stopped',
      changed: () => 'stopped',
      stop: () => 'stopped',
    },
  } satisfies { [S in State]: { [T in Event['type']]: (s: WaitService, e: Extract<Event, { type: T }>) => State } };
}

/** A worker's end as JSON log fields, as a nowait program's end has them. */
function exitFields({ worker, code, signal }: ExitEvent): LogFields {
  return { pid: worker.pid === -1 ? undefined : worker.pid, exitCode: code, signal, durationMs: Math.round(performance.now() - worker.startedAt) };
}

/** `was killed by SIGKILL`, `exited with exitcode 1`. */
function howItExited({ code, signal }: ExitEvent): string {
  return signal !== null ? `was killed by ${signal}` : `exited with exitcode ${code}`;
}
