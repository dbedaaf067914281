// Processes a wait worker left holding its service's listening sockets
// outside its process group. A worker that daemonizes (forks, calls
// setsid(), and exits) leaves one where stopping the worker's group does not
// reach it; it would keep the port bound, and go on serving it, after
// wakeport has gone. systemd stops such a process with the unit's cgroup;
// wakeport knows one by the mark every wait worker's environment carries
// (WAKEPORT_INVOCATION_ID, inherited by what it starts) and stops it as it
// stops a worker. Other holders of the same sockets are never touched: the
// process that handed them to wakeport (LISTEN_FDS), another wakeport
// serving them, the launcher.
//
// Swept when wakeport stops, once every service has (the supervisor), or
// once the workers a dead supervisor left are stopped (the launcher); never
// while it runs, as the worker that left it may be replaced by one that
// serves beside it.

import { formatSocket, type SocketSpec } from '../config/entry.js';
import type { Logger } from '../log.js';
import { invocationId } from '../processes/environment.js';
import { commandName, environmentHas, holding } from '../processes/group.js';
import { signalGroup, stopGroup } from '../processes/stop.js';
import { socketInode } from '../sockets/inspect.js';

/** A socket wakeport serves: what a log line names, and how long its service gives a process to stop. */
export interface ServedSocket {
  readonly label: string;
  readonly socket: SocketSpec;
  readonly exitTimeoutMs: number;
}

/** Notes, by the name /proc gives it (`socket:[inode]`), the socket open as `fd` here (nothing for one that is not). */
export function noteSocket(sockets: Map<string, ServedSocket>, fd: number, served: ServedSocket): void {
  const inode = socketInode(fd);
  if (inode !== undefined) sockets.set(`socket:[${inode}]`, served);
}

export class EscapeeSweep {
  readonly #sockets: ReadonlyMap<string, ServedSocket>;
  readonly #log: Logger;
  readonly #stopping = new Set<number>();
  #killed = false;

  constructor(sockets: ReadonlyMap<string, ServedSocket>, log: Logger) {
    this.#sockets = sockets;
    this.#log = log;
  }

  /** Stops (SIGTERM, SIGKILL after the service's exit-timeout) each such process's group; resolves once they are gone. */
  stop(): Promise<void> {
    if (this.#sockets.size === 0) return Promise.resolve();
    const mark = `WAKEPORT_INVOCATION_ID=${invocationId()}`;
    const escapees = holding(new Set(this.#sockets.keys())).filter(({ pid, ppid }) => ppid !== process.pid && environmentHas(pid, mark));
    // By group: a daemon that forked twice is in the group of the process that called setsid(), which may be gone.
    // That group was made by one of the workers' descendants, so all in it are theirs.
    const groups = new Map(escapees.map((escapee) => [escapee.pgrp, escapee]));
    return Promise.all(
      [...groups].map(([pgrp, { pid, file }]) => {
        const { label, socket, exitTimeoutMs } = this.#sockets.get(file)!;
        this.#log.warn(
          label,
          `stop pid ${pid} (${commandName(pid)}): a worker left it holding ${formatSocket(socket)} ` +
            `outside its process group (in group ${pgrp}, of a session of its own, as a daemon's)`,
          { pid },
        );
        this.#stopping.add(pgrp);
        return stopGroup(pgrp, this.#killed ? 0 : exitTimeoutMs);
      }),
    ).then(() => {});
  }

  /** A second stop signal: what stop() is stopping is killed now, and what it has yet to find, at once. */
  kill(): void {
    this.#killed = true;
    for (const pgrp of this.#stopping) signalGroup(pgrp, 'SIGKILL');
  }
}
