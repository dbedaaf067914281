// An internal service over UDP, served inside the supervisor. Loop
// protection: a datagram from a privileged port (below 1024), NFS's port, or
// a port some internal service answers on, gets no answer, so that two
// servers can never keep bouncing datagrams off each other (a spoofed source
// would start that); nor does one from an address no single host has (any,
// broadcast, multicast), which would fan the answer out (BSD inetd's rules).

import dgram from 'node:dgram';
import type { ServiceEntry } from '../../config/entry.js';
import { counted, ReportThrottle, type Logger } from '../../log.js';
import { ClientFilter } from '../access.js';
import type { Builtin } from './builtin.js';
import { builtins } from './index.js';

const reportEveryMs = 60_000;
const firstUnprivilegedPort = 1024;
const nfsPort = 2049;

/** Whether an answer to this source could start a loop or a flood. */
export function isLoopRisk(address: string, port: number, protectedPorts: ReadonlySet<number>): boolean {
  if (port < firstUnprivilegedPort || port === nfsPort || protectedPorts.has(port)) return true;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (v4.includes('.')) {
    // Per datagram: the first octet read without splitting the address.
    const first = Number.parseInt(v4, 10);
    return v4 === '0.0.0.0' || v4 === '255.255.255.255' || (first >= 224 && first <= 239);
  }
  return address === '::' || /^ff/i.test(address);
}

export interface UdpSocketFd {
  readonly fd: number;
  readonly family: 4 | 6;
}

export class InternalDgramService {
  readonly #sockets: dgram.Socket[] = [];
  #stopped = false;

  private constructor(
    readonly label: string,
    readonly log: Logger,
    readonly builtin: Builtin,
    /** The ports internal services answer on. */
    readonly protectedPorts: ReadonlySet<number>,
    readonly filter: ClientFilter,
  ) {}

  static async start(
    entry: ServiceEntry,
    fds: readonly UdpSocketFd[],
    log: Logger,
    protectedPorts: ReadonlySet<number>,
  ): Promise<InternalDgramService> {
    if (entry.program.kind !== 'internal') throw new Error(`internal: ${entry.label} is not an internal service`);
    const filter = new ClientFilter(entry.access, entry.label, log, 'datagram');
    const service = new InternalDgramService(entry.label, log, builtins[entry.program.name], protectedPorts, filter);
    for (const fd of fds) service.#sockets.push(await service.#serve(fd));
    return service;
  }

  stop(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#stopped = true;
    return Promise.all(this.#sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve())))).then(() => {});
  }

  async #serve({ fd, family }: UdpSocketFd): Promise<dgram.Socket> {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    const loops = new ReportThrottle(reportEveryMs, (count) =>
      this.log.warn(this.label, `ignored ${counted(count, 'more datagram')} since the last report: loop protection refuses their sources`),
    );
    socket.on('message', (message, from) => {
      if (!this.filter.admits(from)) return;
      if (isLoopRisk(from.address, from.port, this.protectedPorts)) {
        const more = loops.heldBackNote();
        if (more !== null) {
          this.log.warn(this.label, `ignored a datagram from ${from.address}:${from.port}: loop protection refuses that source${more}`);
        }
        return;
      }
      const answer = this.builtin.datagram(message);
      if (answer) socket.send(answer, from.port, from.address);
    });
    socket.on('error', (error) => this.log.debug(this.label, `send failed: ${error.message}`));
    await new Promise<void>((resolve) => socket.bind({ fd }, resolve));
    return socket;
  }
}
