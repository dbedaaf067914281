// When wakeport is itself socket-activated (systemd, another wakeport, …),
// the sockets it was given take the place of binding: each is matched to a
// socket of the table by name (LISTEN_FDNAMES = the socket's name, which is
// its service's label unless set with `name`) or else by its address, read
// from the kernel (inspect.ts).

import { closeSync } from 'node:fs';
import { formatSocket, type ServiceEntry, type SocketSpec } from '../config/entry.js';
import { WakeportError } from '../errors.js';
import { inspectFds, type InspectedSocket } from './inspect.js';
import type { ListenFd } from './listen-fds.js';

export interface AdoptedSocket {
  readonly label: string;
  /** Which of the entry's sockets. */
  readonly index: number;
  readonly fd: number;
  readonly socket: SocketSpec;
}

export interface Adoption {
  readonly adopted: readonly AdoptedSocket[];
  /** One sentence per inherited listening socket that matched nothing (and was closed). */
  readonly unmatched: readonly string[];
}

/** Throws ERR_LISTEN_FDS, closing nothing, when an fd given is not a listening socket. */
export function adoptListenFds(entries: readonly ServiceEntry[], given: readonly ListenFd[]): Adoption {
  const adopted: AdoptedSocket[] = [];
  const unmatched: string[] = [];
  const open = entries.flatMap((entry) => entry.sockets.map((socket, index) => ({ entry, index, socket })));
  const inspection = inspectFds(given.map(({ fd }) => fd));
  // Every fd is checked before any is closed. A connected socket, or an IPC channel of whoever started wakeport, is not ours to close.
  for (const { fd, name } of given) {
    if (!inspection.get(fd)?.listening) {
      throw new WakeportError('ERR_LISTEN_FDS', `fd ${fd}${name ? ` ("${name}")` : ''} is not a listening socket wakeport can serve (LISTEN_FDS=${given.length})`);
    }
  }
  for (const { fd, name } of given) {
    const inspected = inspection.get(fd)!;
    const fits = (candidate: (typeof open)[number]) => inspected?.socket.transport === candidate.entry.transport;
    const position = open.findIndex(
      (candidate) =>
        fits(candidate) &&
        ((name !== null && (name === candidate.socket.name || name === candidate.entry.label)) ||
          sameAddress(candidate.socket.spec, inspected)),
    );
    if (position !== -1) {
      const [{ entry, index }] = open.splice(position, 1) as [(typeof open)[number]];
      adopted.push({ label: entry.label, index, fd, socket: inspected.socket });
    } else {
      unmatched.push(`inherited fd ${fd}${name ? ` ("${name}")` : ''} (${formatSocket(inspected.socket)}) matches no service; closed`);
      closeSync(fd);
    }
  }
  return { adopted, unmatched };
}

function sameAddress(spec: SocketSpec, inspected: InspectedSocket): boolean {
  const other = inspected.socket;
  if (spec.transport === 'unix' || other.transport === 'unix') {
    return spec.transport === 'unix' && other.transport === 'unix' && spec.path === other.path;
  }
  return spec.transport === other.transport && spec.host === other.host && spec.port === other.port;
}
