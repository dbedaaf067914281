// How a service's program is started: one recipe per service (environment,
// output files, user, hand-off style), applied to each connection (nowait)
// or each worker (wait). Every program runs in a process group of its own, so
// stopping it reaches everything it started, and a Ctrl-C in wakeport's
// terminal does not.
//
// Hand-off styles:
//   stdio       the socket is fd 0 and fd 1 (inetd)
//   listen-fds  the sockets are fd 3, 4, … with LISTEN_FDS, LISTEN_FDNAMES
//               and LISTEN_PID (systemd). LISTEN_PID must be the program's own
//               pid, which spawn cannot know, so a shell sets it and execs the
//               program (NODE-FACTS 4). The first socket is also given to the
//               shell as its stdin, which makes libuv clear O_NONBLOCK on it —
//               and so on the socket every holder shares — because systemd
//               hands over blocking sockets and many programs expect that
//               (NODE-FACTS 5a); the shell then points stdin at /dev/null.
//               Any further sockets are given, three at a time, as fds 0–2
//               to a shell that exits at once, for the same effect.
//               With listen-pid = no the program is started directly: no
//               LISTEN_PID, sockets as Node left them (non-blocking), stdin
//               /dev/null, and one exec fewer (1–7 ms on a 2-core VM).
// A worker gets a pipe of its own for stderr, read into the log under its
// pid. A connection's process instead shares one pipe per service with every
// other process of its nowait host, for stderr (and for stdout with
// listen-fds), because a pipe per connection costs a socketpair, a stream and
// their teardown on every spawn (measured: 0.15–0.40 ms of CPU per
// connection). Connections' processes are started without child_process
// (sockets/internals.ts says why).
// With ready = notify, a pipe after the sockets carries sd_notify-style lines
// from the program; its fd number is in NOTIFY_FD.

import { ChildProcess, spawn } from 'node:child_process';
import type { Program, ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { firstListenFd } from '../sockets/listen-fds.js';
import { spawnDirect, type AcceptedConnection, type DirectSpawn } from '../sockets/internals.js';
import { connectionEnvironment, connectionVariables, invocationId, serviceEnvironment, type Environment } from './environment.js';
import { closeOutput, forEachLine, openOutput } from './output.js';

type Exec = Program & { kind: 'exec' };
type Stdio = number | 'pipe' | 'ignore';

/** How to start one process: what ProgramRecipe works out, before either way of spawning it. */
interface Launch {
  readonly file: string;
  readonly args: readonly string[];
  readonly argv0: string;
  readonly env: Environment;
  readonly stdio: Stdio[];
}

const execWithListenPid = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@" </dev/null';

/**
 * Whether a connection's processes write anything into the log: stderr by
 * default, and stdout with listen-fds. Such a service needs a shared pipe.
 */
export function needsLogPipe(entry: ServiceEntry): boolean {
  return entry.stderr.kind === 'default' || (entry.handoff === 'listen-fds' && entry.stdout.kind === 'default');
}

/** A connection's process: what stopping and logging need of it (processes/stop.ts), as ChildProcess has it. */
export class ConnectionProcess {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  #onExit: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];

  constructor(readonly pid: number) {}

  once(_event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.#onExit.push(listener);
  }

  exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.exitCode = code;
    this.signalCode = signal;
    for (const listener of this.#onExit.splice(0)) listener(code, signal);
  }
}

// Stands for the connection's fd in the stdio of #forConnections.
const connectionSlot = -1;

export class ProgramRecipe {
  readonly #entry: ServiceEntry;
  readonly #program: Exec;
  readonly #log: Logger;
  readonly #env: Environment;
  readonly #stdoutFd: number | null;
  readonly #stderrFd: number | null;
  #closed = false;
  readonly #sharedOutputFd: number | null;
  /** How every process of the service is started, whichever way. */
  readonly #options: { readonly detached: true; readonly cwd?: string; readonly uid?: number; readonly gid?: number };
  /** How every connection's process is started, worked out once: only the connection's fd and facts differ. */
  #forConnections: DirectSpawn | undefined;

  /**
   * Throws a sentence when an output file cannot be opened. `sharedOutputFd`:
   * a pipe whose reader logs the service's lines, given to every connection's
   * process as its stderr (and stdout, with listen-fds), in place of a pipe
   * of its own (the caller owns it).
   */
  constructor(entry: ServiceEntry, program: Exec, log: Logger, sharedOutputFd: number | null = null) {
    this.#entry = entry;
    this.#sharedOutputFd = sharedOutputFd;
    this.#program = program;
    this.#log = log;
    this.#env = serviceEnvironment(entry);
    this.#stdoutFd = openOutput(entry.stdout, 'stdout');
    try {
      this.#stderrFd = openOutput(entry.stderr, 'stderr');
    } catch (error) {
      closeOutput(this.#stdoutFd);
      throw error;
    }
    this.#options = {
      detached: true,
      ...(entry.cwd === null ? {} : { cwd: entry.cwd }),
      ...(entry.runAs === null ? {} : { uid: entry.runAs.uid, gid: entry.runAs.gid }),
    };
  }

  get path(): string {
    return this.#program.path;
  }

  /**
   * Starts the program for one connection and closes wakeport's copy of it.
   * When it cannot start, returns the error code (ENOENT, …) and the
   * connection is still the caller's. Without a shared pipe or an output
   * file, the process's stderr is /dev/null.
   */
  spawnForConnection(connection: AcceptedConnection): ConnectionProcess | { readonly errno: string } {
    const template = (this.#forConnections ??= this.#launchForConnections());
    let running: ConnectionProcess | undefined;
    const started = spawnDirect(
      {
        ...template,
        envPairs: template.envPairs.concat(connectionEnvironment(connection.peer(), connection.local(), this.#entry.transport)),
        stdio: template.stdio.map((fd) => (fd === connectionSlot ? connection.fd : fd)),
      },
      (code, signal) => running?.exited(code, signal),
    );
    if ('errno' in started) return started;
    connection.close();
    return (running = new ConnectionProcess(started.pid));
  }

  /**
   * Starts a worker with the service's listening sockets; with `notify`,
   * child.stdio[NOTIFY_FD] is the notify pipe. Never throws: a worker that
   * cannot start has no pid, and its 'error' event says why.
   */
  spawnWorker(fds: readonly number[], notify: boolean): { child: ChildProcess; notifyFd: number | null } {
    const names = this.#entry.sockets.map(({ name }) => name);
    if (this.#entry.handoff === 'listen-fds' && this.#entry.listenPid) makeBlocking(fds.slice(1));
    // A Node worker's server.listen({ fd }) calls listen() again: this says with which backlog (listener.ts).
    const marks = { WAKEPORT_BACKLOG: String(this.#entry.backlog), WAKEPORT_INVOCATION_ID: invocationId() };
    const launch = this.#launch(fds, names, marks, notify, 'pipe');
    let child: ChildProcess;
    try {
      child = spawn(launch.file, launch.args, { ...this.#options, env: launch.env, stdio: launch.stdio, argv0: launch.argv0 });
    } catch (error) {
      // spawn() emits 'error' for ENOENT, EACCES, EAGAIN, EMFILE and ENFILE,
      // but throws the rest (a cwd that is a file: ENOTDIR; E2BIG; ELOOP):
      // the caller sees every failure the one way, as a child without a pid.
      child = new ChildProcess();
      process.nextTick(() => child.emit('error', error));
    }
    this.#logOutput(child);
    return { child, notifyFd: notify ? this.#notifyIndex(fds.length) : null };
  }

  /** Closes its output files; once only, as their fd numbers may be reused afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeOutput(this.#stdoutFd);
    closeOutput(this.#stderrFd);
  }

  #launchForConnections(): DirectSpawn {
    const launch = this.#launch([connectionSlot], ['connection'], {}, false, this.#sharedOutputFd ?? 'ignore');
    const overridden = new Set(connectionVariables(this.#entry.transport));
    return {
      ...this.#options,
      file: launch.file,
      args: [launch.argv0, ...launch.args],
      envPairs: Object.entries(launch.env)
        .filter(([name]) => !overridden.has(name))
        .map(([name, value]) => `${name}=${value}`),
      stdio: launch.stdio.map((fd) => (typeof fd === 'number' ? fd : null)),
    };
  }

  #notifyIndex(socketCount: number): number {
    return this.#entry.handoff === 'stdio' ? 3 : firstListenFd + socketCount;
  }

  /** `output`: where stderr goes, and stdout where no socket or file takes it. */
  #launch(handed: readonly number[], names: readonly string[], extraEnv: Environment, notify: boolean, output: Stdio): Launch {
    const env: Environment = { ...this.#env, ...extraEnv };
    const stdout = this.#stdoutFd ?? output;
    const stderr = this.#stderrFd ?? output;
    let file = this.#program.path;
    let args: readonly string[] = this.#program.args;
    let argv0 = this.#program.argv0;
    let stdio: Stdio[];
    if (this.#entry.handoff === 'stdio') {
      stdio = [handed[0]!, this.#stdoutFd ?? handed[0]!, stderr];
    } else {
      env.LISTEN_FDS = String(handed.length);
      env.LISTEN_FDNAMES = names.join(':');
      if (this.#entry.listenPid) {
        stdio = [handed[0]!, stdout, stderr, ...handed];
        // The shell's exec cannot set argv[0]: the program sees its path there.
        [file, args, argv0] = ['/bin/sh', ['-c', execWithListenPid, this.#program.path, ...args], '/bin/sh'];
      } else {
        stdio = ['ignore', stdout, stderr, ...handed];
      }
    }
    if (notify) {
      stdio.push('pipe');
      env.NOTIFY_FD = String(this.#notifyIndex(handed.length));
    }
    return { file, args, argv0, env, stdio };
  }

  /** Lines a worker writes to a pipe wakeport holds (stderr, and stdout for listen-fds) go to the log. */
  #logOutput(child: ChildProcess): void {
    const { pid } = child;
    if (pid === undefined) return;
    const toLog = (line: string) => this.#log.output(this.#entry.label, pid, line);
    if (child.stderr) forEachLine(child.stderr, toLog);
    if (child.stdout) forEachLine(child.stdout, toLog);
  }
}

/**
 * Clears O_NONBLOCK on sockets (see the top of this file): a child's fds 0–2
 * are made blocking by libuv before it execs, and spawn() returns only after
 * the exec. A socket this fails for stays non-blocking; the worker's own
 * start reports what is wrong with the system.
 */
function makeBlocking(fds: readonly number[]): void {
  for (let index = 0; index < fds.length; index += 3) {
    const [first, second = 'ignore', third = 'ignore'] = fds.slice(index, index + 3);
    try {
      spawn('/bin/sh', ['-c', ''], { stdio: [first!, second, third] }).on('error', () => {});
    } catch {
      // As above.
    }
  }
}
