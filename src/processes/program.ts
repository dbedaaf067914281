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
//               With listen-pid = no the program is started directly: no
//               LISTEN_PID, sockets as Node left them (non-blocking), stdin
//               /dev/null, and one exec fewer (1–7 ms on a 2-core VM).
// By default each process gets a pipe of its own for stderr, read into the
// log under its pid; a nowait host instead passes one pipe per service that
// all its processes share, because a pipe per connection costs a socketpair,
// a stream and their teardown on every spawn (measured: 0.15–0.40 ms of CPU
// per connection).
// With ready = notify, a pipe after the sockets carries sd_notify-style lines
// from the program; its fd number is in NOTIFY_FD.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type net from 'node:net';
import type { Program, ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { firstListenFd } from '../sockets/listen-fds.js';
import { connectionEnvironment, serviceEnvironment, type Environment } from './environment.js';
import { closeOutput, forEachLine, openOutput } from './output.js';

type Exec = Program & { kind: 'exec' };
type Handed = number | net.Socket;

const execWithListenPid = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@" </dev/null';

export class ProgramRecipe {
  readonly #entry: ServiceEntry;
  readonly #program: Exec;
  readonly #log: Logger;
  readonly #env: Environment;
  readonly #stdoutFd: number | null;
  readonly #stderrFd: number | null;
  readonly #sharedStderrFd: number | null;
  readonly #options: SpawnOptions;

  /**
   * Throws a sentence when an output file cannot be opened. `sharedStderrFd`:
   * a pipe whose reader logs the service's lines, given to every process as
   * its stderr in place of a pipe of its own (the caller owns it).
   */
  constructor(entry: ServiceEntry, program: Exec, log: Logger, sharedStderrFd: number | null = null) {
    this.#entry = entry;
    this.#sharedStderrFd = sharedStderrFd;
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
   * Starts the program for one connection and lets go of wakeport's copy of
   * it. A failed start has no pid and emits 'error'; the connection is then
   * still the caller's.
   */
  spawnForConnection(socket: net.Socket): ChildProcess {
    const child = this.#spawn([socket], ['connection'], connectionEnvironment(socket, this.#entry.transport), false);
    if (child.pid !== undefined) socket.destroy();
    return child;
  }

  /** Starts a worker with the service's listening sockets; with `notify`, child.stdio[NOTIFY_FD] is the notify pipe. */
  spawnWorker(fds: readonly number[], notify: boolean): { child: ChildProcess; notifyFd: number | null } {
    const names = this.#entry.sockets.map(({ name }) => name);
    const child = this.#spawn(fds, names, {}, notify);
    return { child, notifyFd: notify ? this.#notifyIndex(fds.length) : null };
  }

  close(): void {
    closeOutput(this.#stdoutFd);
    closeOutput(this.#stderrFd);
  }

  #notifyIndex(socketCount: number): number {
    return this.#entry.handoff === 'stdio' ? 3 : firstListenFd + socketCount;
  }

  #spawn(handed: readonly Handed[], names: readonly string[], extraEnv: Environment, notify: boolean): ChildProcess {
    const env: Environment = { ...this.#env, ...extraEnv };
    const stderr = this.#stderrFd ?? this.#sharedStderrFd ?? 'pipe';
    let file = this.#program.path;
    let args: readonly string[] = this.#program.args;
    let argv0: string | undefined = this.#program.argv0;
    let stdio: (Handed | 'pipe' | 'ignore')[];
    if (this.#entry.handoff === 'stdio') {
      stdio = [handed[0]!, this.#stdoutFd ?? handed[0]!, stderr];
    } else {
      env.LISTEN_FDS = String(handed.length);
      env.LISTEN_FDNAMES = names.join(':');
      if (this.#entry.listenPid) {
        stdio = [handed[0]!, this.#stdoutFd ?? 'pipe', stderr, ...handed];
        // The shell's exec cannot set argv[0]: the program sees its path there.
        [file, args, argv0] = ['/bin/sh', ['-c', execWithListenPid, this.#program.path, ...args], undefined];
      } else {
        stdio = ['ignore', this.#stdoutFd ?? 'pipe', stderr, ...handed];
      }
    }
    if (notify) {
      stdio.push('pipe');
      env.NOTIFY_FD = String(this.#notifyIndex(handed.length));
    }
    const child = spawn(file, args, { ...this.#options, env, stdio, ...(argv0 === undefined ? {} : { argv0 }) });
    this.#logOutput(child);
    return child;
  }

  /** Lines a program writes to a pipe wakeport holds (stderr, and stdout for listen-fds) go to the log. */
  #logOutput(child: ChildProcess): void {
    const { pid } = child;
    if (pid === undefined) return;
    const toLog = (line: string) => this.#log.output(this.#entry.label, pid, line);
    if (child.stderr) forEachLine(child.stderr, toLog);
    if (child.stdout) forEachLine(child.stdout, toLog);
  }
}
