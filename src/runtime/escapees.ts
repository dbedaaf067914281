// At shutdown: processes a wait worker left holding its service's listening
// sockets outside its process group. A worker that daemonizes (forks, calls
// setsid(), and exits) leaves one where stopping the worker's group does not
// reach it; it would keep the port bound, and go on serving it, after
// wakeport has gone. systemd stops such a process with the unit's cgroup;
// wakeport knows one by the mark every wait worker's environment carries
// (WAKEPORT_INVOCATION_ID, inherited by what it starts) and stops it as it
// stops a worker. Other holders of the same sockets are never touched: the
// process that handed them to wakeport (LISTEN_FDS), another wakeport
// serving them, the launcher.
//
// Only at shutdown, once every service has stopped: while wakeport runs, the
// worker that left it may be replaced by one that serves beside it.

import { readFileSync } from 'node:fs';
import { formatSocket, type ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { invocationId } from '../processes/environment.js';
import { environmentHas, holding } from '../processes/group.js';
import { signalGroup, stopGroup } from '../processes/stop.js';
import { socketInode } from '../sockets/inspect.js';
import type { SocketAssignment } from './hello.js';

interface Held {
  readonly entry: ServiceEntry;
  readonly assignment: SocketAssignment;
}

export class EscapeeSweep {
  /** The sockets, by the name /proc gives each (`socket:[inode]`). */
  readonly #byFile = new Map<string, Held>();
  readonly #log: Logger;
  readonly #stopping = new Set<number>();
  #killed = false;

  /** Notes the sockets' inodes while the services still hold them open. */
  constructor(sockets: readonly Held[], log: Logger) {
    this.#log = log;
    for (const held of sockets) {
      const inode = socketInode(held.assignment.fd);
      if (inode !== undefined) this.#byFile.set(`socket:[${inode}]`, held);
    }
  }

  /** Stops (SIGTERM, SIGKILL after the service's exit-timeout) each such process's group; resolves once they are gone. */
  stop(): Promise<void> {
    if (this.#byFile.size === 0) return Promise.resolve();
    const mark = `WAKEPORT_INVOCATION_ID=${invocationId}`;
    const escapees = holding(new Set(this.#byFile.keys())).filter(({ pid, ppid }) => ppid !== process.pid && environmentHas(pid, mark));
    // By group: a daemon that forked twice is in the group of the process that called setsid(), which may be gone.
    // That group was made by one of the workers' descendants, so all in it are theirs.
    const groups = new Map(escapees.map((escapee) => [escapee.pgrp, escapee]));
    return Promise.all(
      [...groups].map(([pgrp, { pid, file }]) => {
        const { entry, assignment } = this.#byFile.get(file)!;
        this.#log.warn(
          entry.label,
          `stop pid ${pid} (${commandName(pid)}): a worker left it holding ${formatSocket(assignment.socket)} ` +
            `outside its process group (in group ${pgrp}, of a session of its own, as a daemon's)`,
          { pid },
        );
        this.#stopping.add(pgrp);
        return stopGroup(pgrp, this.#killed ? 0 : entry.exitTimeoutMs);
      }),
    ).then(() => {});
  }

  /** A second stop signal: what stop() is stopping is killed now, and what it has yet to find, at once. */
  kill(): void {
    this.#killed = true;
    for (const pid of this.#stopping) signalGroup(pid, 'SIGKILL');
  }
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return 'gone';
  }
}
