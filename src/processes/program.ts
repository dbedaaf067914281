// How a service's program is started: one recipe per service (environment,
// output files, user), applied to each connection. The child gets the
// connection on fd 0 and 1, runs in a process group of its own (so stopping
// it reaches everything it started, and a Ctrl-C in wakeport's terminal does
// not), and wakeport keeps no copy of the connection.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type net from 'node:net';
import type { Program, ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { connectionEnvironment, serviceEnvironment, type Environment } from './environment.js';
import { closeOutput, forEachLine, openOutput } from './output.js';

type Exec = Program & { kind: 'exec' };

export class ProgramRecipe {
  readonly #entry: ServiceEntry;
  readonly #program: Exec;
  readonly #log: Logger;
  readonly #env: Environment;
  readonly #stdoutFd: number | null;
  readonly #stderrFd: number | null;
  readonly #options: SpawnOptions;

  /** Throws a sentence when an output file cannot be opened. */
  constructor(entry: ServiceEntry, program: Exec, log: Logger) {
    this.#entry = entry;
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
      argv0: program.argv0,
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
    const child = spawn(this.#program.path, this.#program.args, {
      ...this.#options,
      env: { ...this.#env, ...connectionEnvironment(socket, this.#entry.socket.transport) },
      stdio: [socket, this.#stdoutFd ?? socket, this.#stderrFd ?? 'pipe'],
    });
    const { stderr, pid } = child;
    if (pid === undefined) return child;
    socket.destroy();
    if (stderr) forEachLine(stderr, (line) => this.#log.output(this.#entry.label, pid, line));
    return child;
  }

  close(): void {
    closeOutput(this.#stdoutFd);
    closeOutput(this.#stderrFd);
  }
}
