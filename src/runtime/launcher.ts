// The launcher: `wakeport run`. It reads the table, binds every socket (or
// adopts the ones it was given under LISTEN_FDS), starts the supervisor with
// them as inherited fds, closes its own copies, then only waits: it forwards
// signals to the supervisor and exits with its status.
//
// Why it closes its copies at once: a listening socket held by a Node process
// is accepted on whenever its event loop polls (NODE-FACTS 5), and two
// holders would compete for clients. Binding, spawning the supervisor and
// closing all happen before the launcher's event loop polls even once
// (binding to an IP literal completes in process.nextTick callbacks), so the
// launcher never accepts a connection. A setImmediate guard checks that this
// still holds.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isNowaitProgram, type ServiceEntry } from '../config/entry.js';
import { loadTable, type Table } from '../config/table.js';
import { isWakeportError, type WakeportError } from '../errors.js';
import { counted, type Logger } from '../log.js';
import { invocationId, runtimeEnvironment } from '../processes/environment.js';
import { adoptListenFds, type AdoptedSocket, type Adoption } from '../sockets/adopt.js';
import { bindSocket, checkUnixPath, removeSocketFiles, reportStrayTraffic, withoutPolling, type BoundSocket } from '../sockets/bind.js';
import { checkNowaitInternals } from '../sockets/internals.js';
import { firstListenFd, takeListenFds } from '../sockets/listen-fds.js';
import { exitCodes } from './exit-codes.js';
import { hasType, type Hello, type SocketAssignment, type Stoppable } from './hello.js';
import { EscapeeSweep, noteSocket, type ServedSocket } from './escapees.js';
import { BindRetries, retryNote } from './late-sockets.js';
import { Hangups } from './reload.js';
import { isWorkerNotice, LeftWorkers } from './left-workers.js';

export interface RunOptions {
  readonly file: string;
  readonly strict: boolean;
  /** How long a nowait host may run without work before it exits; 0: never. */
  readonly hostIdleMs: number;
}

const subject = 'wakeport';

/** Runs wakeport in the foreground; resolves with the exit code. */
export async function run(options: RunOptions, log: Logger): Promise<number> {
  const hangups = new Hangups(options.file, log);
  const stops = new StopSignals(log);
  try {
    return await serve(options, log, hangups, stops);
  } finally {
    hangups.close();
    stops.close();
  }
}

/**
 * SIGINT and SIGTERM, from the launcher's start. Before the supervisor runs
 * they are noted (the launcher then does not start it); after, they are
 * forwarded to it, but only once it handles them: until then a signal
 * would kill it outright, and the workers it is starting would be left. A
 * second signal is forwarded at once, as a second signal kills anyway;
 * before the supervisor runs, it kills the launcher (start-up may be stuck
 * reading the table from a FIFO or a hung mount, and nothing has been bound
 * or started while it waits there).
 */
class StopSignals {
  #supervisor: ChildProcess | null = null;
  #stoppable = false;
  readonly #held: NodeJS.Signals[] = [];
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
    process.on('SIGINT', this.#onSignal).on('SIGTERM', this.#onSignal);
  }

  /** The first signal that came before the supervisor ran, if any. */
  get before(): NodeJS.Signals | undefined {
    return this.#supervisor ? undefined : this.#held[0];
  }

  forwardTo(supervisor: ChildProcess): void {
    this.#supervisor = supervisor;
  }

  /** The supervisor handles signals now: those held back are sent. */
  stoppable(): void {
    this.#stoppable = true;
    for (const signal of this.#held.splice(0)) this.#supervisor?.kill(signal);
  }

  close(): void {
    process.off('SIGINT', this.#onSignal).off('SIGTERM', this.#onSignal);
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#supervisor && (this.#stoppable || this.#held.length > 0)) this.#supervisor.kill(signal);
    else if (!this.#supervisor && this.#held.length > 0) {
      this.#log.info(subject, `${this.#held[0]}, then ${signal}, during start-up: not starting, at once`);
      // By the signal itself: process.exit() would wait for the thread stuck in a read.
      this.close();
      process.kill(process.pid, signal);
    } else this.#held.push(signal);
  };
}

async function serve(options: RunOptions, log: Logger, hangups: Hangups, stops: StopSignals): Promise<number> {
  const table = await loadTable(options.file);
  reportProblems(table, options.strict, log);
  if (options.strict && table.problems.some((problem) => problem.severity === 'error')) {
    log.error(subject, `fatal: ${options.file} has errors and --strict is set; not starting`);
    return exitCodes.usage;
  }

  if (table.entries.some(isNowaitProgram)) await checkNowaitInternals();

  let adoption: Adoption;
  try {
    adoption = adoptListenFds(table.entries, takeListenFds());
  } catch (error) {
    if (!isWakeportError(error) || error.code !== 'ERR_LISTEN_FDS') throw error;
    log.error(subject, `fatal: ${error.message}; not starting`);
    return exitCodes.usage;
  }
  const { adopted, unmatched } = adoption;
  for (const sentence of unmatched) log.warn(subject, sentence);
  const isAdopted = new Set(adopted.map(({ label, index }) => `${index}:${label}`));
  // A service none of whose sockets was given is bound again later if it cannot be bound now.
  const adoptedLabels = new Set(adopted.map(({ label }) => label));
  const afterFailure = (label: string) =>
    options.strict ? 'not starting (--strict)' : adoptedLabels.has(label) ? 'the other services go on' : retryNote;
  const toBind = await checkUnixPaths(
    table.entries.flatMap((entry) =>
      entry.sockets.flatMap((_, index) => (isAdopted.has(`${index}:${entry.label}`) ? [] : [{ entry, index }])),
    ),
    log,
    afterFailure,
  );
  if (toBind.failedLabels.length > 0 && options.strict) return exitCodes.system;

  // From here to the end of startSupervisor(), nothing may wait for I/O.
  const endStretch = withoutPolling(log);
  const { bound, failures } = await bindAll(toBind.units, log);
  for (const { error, label } of failures) log.error(subject, `${error.message}; ${afterFailure(label)}`);
  const socketFiles = bound.flatMap(({ socket }) => (socket.transport === 'unix' ? [socket.path] : []));
  // The launcher's own copies go once the supervisor has its own (a copy
  // left here would keep a socket listening after its service is gone), or
  // with their files when nothing will serve them.
  const letGo = (removeFiles: boolean) => {
    for (const socket of bound) socket.release();
    for (const { fd } of adopted) closeSync(fd);
    if (removeFiles) removeSocketFiles(socketFiles);
  };
  if (failures.length > 0 && options.strict) {
    letGo(true);
    return exitCodes.system;
  }
  // A service is served with all its sockets or not at all.
  const incomplete = new Set([...failures.map(({ label }) => label), ...toBind.failedLabels]);
  const handed = [...adopted, ...bound].filter(({ label }) => !incomplete.has(label));
  if (stops.before) {
    letGo(true);
    endStretch();
    log.info(subject, `${stops.before} during start-up: not starting`);
    return exitCodes.ok;
  }
  // What the supervisor serves, by inode: should it die, what its workers left holding them is found by these.
  const served = new Map<string, ServedSocket>();
  const exitTimeouts = new Map(table.entries.map(({ label, exitTimeoutMs }) => [label, exitTimeoutMs]));
  for (const { fd, label, socket } of handed) noteSocket(served, fd, { label, socket, exitTimeoutMs: exitTimeouts.get(label)! });
  const supervisor = startSupervisor(table, handed, log, options.hostIdleMs);
  letGo(false);
  endStretch();

  const unbound = table.entries.filter(({ label }) => incomplete.has(label) && !adoptedLabels.has(label));
  const retries = new BindRetries(supervisor, unbound, socketFiles, served, log);
  hangups.reloadWith({ strict: options.strict, supervisor, retries, socketFiles, reportProblems: (next) => reportProblems(next, options.strict, log) });
  stops.forwardTo(supervisor);
  const code = await waitForSupervisor(supervisor, socketFiles, served, stops, log);
  retries.stop();
  return code;
}

/** With --strict an error refuses the whole table (the next line says so), so no line is said to be skipped. */
function reportProblems(table: Table, strict: boolean, log: Logger): void {
  for (const problem of table.problems) {
    const where = `${problem.file}:${problem.line}`;
    if (problem.severity === 'warning') log.warn(where, problem.message);
    else log.error(where, strict ? problem.message : `${problem.message} (line skipped)`);
  }
}

/** One socket of one entry: what is bound (or adopted) and handed over. */
interface SocketUnit {
  readonly entry: ServiceEntry;
  readonly index: number;
}

async function checkUnixPaths(
  units: readonly SocketUnit[],
  log: Logger,
  afterFailure: (label: string) => string,
): Promise<{ units: SocketUnit[]; failedLabels: string[] }> {
  const checked = await Promise.all(
    units.map(async (unit) => {
      try {
        await checkUnixPath(unit.entry, unit.index);
        return unit;
      } catch (error) {
        log.error(subject, `${(error as WakeportError).message}; ${afterFailure(unit.entry.label)}`);
        return null;
      }
    }),
  );
  const ok = checked.filter((unit) => unit !== null);
  const failedLabels = units.filter((unit) => !ok.includes(unit)).map(({ entry }) => entry.label);
  return { units: ok, failedLabels };
}

async function bindAll(
  units: readonly SocketUnit[],
  log: Logger,
): Promise<{ bound: BoundSocket[]; failures: { label: string; error: WakeportError }[] }> {
  const onStray = reportStrayTraffic(log);
  const results = await Promise.allSettled(units.map(({ entry, index }) => bindSocket(entry, index, onStray)));
  const bound: BoundSocket[] = [];
  const failures: { label: string; error: WakeportError }[] = [];
  results.forEach((result, position) => {
    if (result.status === 'fulfilled') bound.push(result.value);
    else failures.push({ label: units[position]!.entry.label, error: result.reason as WakeportError });
  });
  return { bound, failures };
}

type Held = AdoptedSocket | BoundSocket;

/** Spawns the supervisor with the sockets at fd 3, 4, … and the IPC channel after them. */
function startSupervisor(table: Table, sockets: readonly Held[], log: Logger, hostIdleMs: number): ChildProcess {
  const main = fileURLToPath(new URL(`./supervisor-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, main], {
    stdio: ['ignore', 'inherit', 'inherit', ...sockets.map(({ fd }) => fd), 'ipc'],
    // Its own process group: a Ctrl-C reaches the launcher only, which
    // forwards it once.
    detached: true,
    env: runtimeEnvironment(),
  });
  const assignments: SocketAssignment[] = sockets.map(({ label, index, socket }, position) => ({
    label,
    index,
    fd: firstListenFd + position,
    socket,
  }));
  const hello: Hello = {
    type: 'hello',
    log: log.options,
    entries: table.entries,
    sockets: assignments,
    idleExitMs: hostIdleMs,
    invocationId: invocationId(),
  };
  // One that could not be started has no pid, and nobody to read the hello.
  if (child.pid !== undefined) child.send(hello);
  return child;
}

/**
 * Resolves with the supervisor's exit code, once it has exited, the workers
 * it left (if it did not exit cleanly) are stopped, and `socketFiles` are removed.
 */
function waitForSupervisor(
  supervisor: ChildProcess,
  socketFiles: readonly string[],
  served: ReadonlyMap<string, ServedSocket>,
  stops: StopSignals,
  log: Logger,
): Promise<number> {
  const workers = new LeftWorkers();
  supervisor.on('message', (message) => {
    if (isWorkerNotice(message)) workers.note(message);
    if (hasType<Stoppable>(message, 'stoppable')) stops.stoppable();
  });
  const finish = () => removeSocketFiles(socketFiles);
  return new Promise((resolve) => {
    supervisor.on('error', (error) => {
      // Only a supervisor that could not be started has no pid; it never exits. Any other error comes with an exit.
      if (supervisor.pid !== undefined) return;
      finish();
      log.error(subject, `fatal: cannot start the supervisor: ${error.message}`);
      resolve(exitCodes.system);
    });
    supervisor.once('exit', (code, signal) => {
      if (signal !== null) log.error(subject, `the supervisor was killed by ${signal}`);
      const left = code === exitCodes.ok ? [] : workers.alive();
      let stopped = Promise.resolve();
      if (left.length > 0) {
        log.error(subject, `stopping the wait workers and nowait programs it left running (${counted(left.length, 'program')}: pid ${left.join(', ')})`);
        stopped = workers.stop();
      }
      // What the workers left outside their groups, which the supervisor would have stopped (runtime/escapees.ts).
      if (code !== exitCodes.ok) stopped = stopped.then(() => new EscapeeSweep(served, log).stop());
      void stopped.then(() => {
        finish();
        resolve(code ?? exitCodes.system);
      });
    });
  });
}
