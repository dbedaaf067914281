// When wakeport is itself socket-activated (systemd, another wakeport, …),
// the sockets it was given take the place of binding: each is matched to a
// table entry by name (LISTEN_FDNAMES = the entry's label) or else by its
// address, read from the kernel (inspect.ts).

import { closeSync } from 'node:fs';
import { formatSocket, type ServiceEntry, type SocketSpec } from '../config/entry.js';
import { inspectFds, type InspectedSocket } from './inspect.js';
import type { ListenFd } from './listen-fds.js';

export interface AdoptedSocket {
  readonly label: string;
  readonly fd: number;
  readonly socket: SocketSpec;
}

export interface Adoption {
  readonly adopted: readonly AdoptedSocket[];
  /** One sentence per inherited fd that matched nothing (and was closed). */
  readonly unmatched: readonly string[];
}

export function adoptListenFds(entries: readonly ServiceEntry[], given: readonly ListenFd[]): Adoption {
  const adopted: AdoptedSocket[] = [];
  const unmatched: string[] = [];
  const taken = new Set<string>();
  const inspection = inspectFds(given.map(({ fd }) => fd));
  for (const { fd, name } of given) {
    const inspected = inspection.get(fd) ?? null;
    const entry = entries.find(
      (candidate) => !taken.has(candidate.label) && (name === candidate.label || matches(candidate, inspected)),
    );
    if (entry && inspected) {
      taken.add(entry.label);
      adopted.push({ label: entry.label, fd, socket: inspected.socket });
    } else {
      const what = inspected ? formatSocket(inspected.socket) : 'not a socket wakeport can serve';
      unmatched.push(`inherited fd ${fd}${name ? ` ("${name}")` : ''} (${what}) matches no service; closed`);
      closeSync(fd);
    }
  }
  return { adopted, unmatched };
}

function matches(entry: ServiceEntry, inspected: InspectedSocket | null): boolean {
  if (!inspected) return false;
  const a = entry.socket;
  const b = inspected.socket;
  if (a.transport === 'unix' || b.transport === 'unix') {
    return a.transport === 'unix' && b.transport === 'unix' && a.path === b.path;
  }
  return a.transport === b.transport && a.host === b.host && a.port === b.port;
}
