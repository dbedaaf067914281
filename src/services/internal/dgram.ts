// An internal service over UDP, served inside the supervisor. Loop
// protection: a datagram from a privileged port (below 1024), or from a port
// some internal service answers on, gets no answer, so that two servers can
// never keep bouncing datagrams off each other (a spoofed source would start
// that).

import dgram from 'node:dgram';
import type { ServiceEntry } from '../../config/entry.js';
import { ReportThrottle, type Logger } from '../../log.js';
import { builtins } from './index.js';

const reportEveryMs = 60_000;
const firstUnprivilegedPort = 1024;

export class InternalDgramService {
  readonly #socket: dgram.Socket;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
  }

  /** `protectedPorts`: the ports internal services answer on. */
  static async start(
    entry: ServiceEntry,
    fd: number,
    log: Logger,
    protectedPorts: ReadonlySet<number>,
  ): Promise<InternalDgramService> {
    if (entry.program.kind !== 'internal' || entry.socket.transport !== 'udp') {
      throw new Error(`internal: ${entry.label} is not an internal UDP service`);
    }
    const builtin = builtins[entry.program.name];
    const socket = dgram.createSocket(entry.socket.family === 6 ? 'udp6' : 'udp4');
    const loops = new ReportThrottle(reportEveryMs);
    socket.on('message', (message, from) => {
      if (from.port < firstUnprivilegedPort || protectedPorts.has(from.port)) {
        const heldBack = loops.due();
        if (heldBack !== null) {
          const more = heldBack > 0 ? ` (${heldBack} more since the last report)` : '';
          log.warn(entry.label, `ignored a datagram from ${from.address}:${from.port}: loop protection refuses that source port${more}`);
        }
        return;
      }
      const answer = builtin.datagram(message);
      if (answer) socket.send(answer, from.port, from.address);
    });
    socket.on('error', (error) => log.debug(entry.label, `send failed: ${error.message}`));
    await new Promise<void>((resolve) => socket.bind({ fd }, resolve));
    return new InternalDgramService(socket);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
