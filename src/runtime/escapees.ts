// At shutdown: processes that hold a service's listening sockets though its
// service has stopped. A worker that daemonizes (forks, calls setsid(), and
// exits) leaves one outside its process group, where stopping the group does
// not reach it; it would keep the port bound, and go on serving it, after
// wakeport has gone. systemd stops such a process with the unit's cgroup;
// wakeport finds it by the sockets it holds (a listening socket reaches
// another process only by inheritance from wakeport, or handed on by one
// that has it) and stops it as it stops a worker.
//
// Only at shutdown, once every service has stopped: while wakeport runs, a
// process holding the sockets may be a worker a dead supervisor left to the
// launcher, or a worker's own server process that a replacement will take
// over from.

import { readFileSync } from 'node:fs';
import { formatSocket, type ServiceEntry } from '../config/entry.js';
import type { Logger } from '../log.js';
import { sessionLeadersHolding } from '../processes/group.js';
import { stopGroup } from '../processes/stop.js';
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

  /** Notes the sockets' inodes while the services still hold them open. */
  constructor(sockets: readonly Held[], log: Logger) {
    this.#log = log;
    for (const held of sockets) {
      const inode = socketInode(held.assignment.fd);
      if (inode !== undefined) this.#byFile.set(`socket:[${inode}]`, held);
    }
  }

  /** Stops (SIGTERM, SIGKILL after the service's exit-timeout) every process still holding one; resolves once they are gone. */
  stop(): Promise<void> {
    if (this.#byFile.size === 0) return Promise.resolve();
    // Not wakeport's own: the launcher, and this process's children (helpers, hosts) hold sockets too.
    const escapees = sessionLeadersHolding(new Set(this.#byFile.keys())).filter(({ pid, ppid }) => ppid !== process.pid && pid !== process.ppid);
    return Promise.all(
      escapees.map(({ pid, file }) => {
        const { entry, assignment } = this.#byFile.get(file)!;
        this.#log.warn(
          entry.label,
          `stop pid ${pid} (${commandName(pid)}): it holds ${formatSocket(assignment.socket)} after its service has stopped, ` +
            'outside the process group of any worker (a worker started it in a session of its own, as a daemon does)',
          { pid },
        );
        return stopGroup(pid, entry.exitTimeoutMs);
      }),
    ).then(() => {});
  }
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return 'gone';
  }
}
