// A short-lived helper the supervisor starts with some listening sockets at
// fd 3, 4, … and an IPC channel after them (see helper.ts):
//
//   copy    sends each socket back as a net.Socket, then exits. The
//           supervisor receives fresh copies of sockets it must never wrap
//           itself (NODE-FACTS 6), to use as readiness probes (NODE-FACTS 8).
//   refuse  accepts every connection and closes it without a reset, until
//           SIGTERM; reports how many after each burst.

import net from 'node:net';
import { closeGently } from '../services/listener.js';
import { firstListenFd, listenOnFd } from './listen-fds.js';

const [mode, countText, backlogText] = process.argv.slice(2);
const fds = Array.from({ length: Number(countText) }, (_, index) => firstListenFd + index);
const send = process.send?.bind(process);
if (!send) throw new Error('the helper needs an IPC channel');

if (mode === 'copy') {
  // Node sends one handle at a time, the next once the receiver acknowledges
  // the last, and a channel without a 'message' listener does not keep the
  // process alive: unheld, the helper exits after the first copy.
  process.channel?.ref();
  // The channel held, nothing else ends the helper if the supervisor goes first.
  process.on('disconnect', () => process.exit(0));
  // disconnect() waits for the supervisor to acknowledge the last handle; if
  // the supervisor closes the channel first (it is stopping), Node's own
  // disconnect at the channel's end finds it disconnected and emits
  // ERR_IPC_DISCONNECTED here, which would crash the helper with a trace.
  process.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ERR_IPC_DISCONNECTED') throw error;
    process.exit(0);
  });
  let pending = fds.length;
  for (const [index, fd] of fds.entries()) {
    // Not readable: this copy must not start reading here; the receiver's does.
    const socket = new net.Socket({ fd, readable: false, writable: false });
    send({ index }, socket, {}, () => {
      // The supervisor may have closed the channel first (it is stopping).
      if (--pending === 0 && process.connected) process.disconnect();
    });
  }
} else if (mode === 'refuse') {
  let closed = 0;
  let report: NodeJS.Timeout | null = null;
  const flush = () => {
    report = null;
    if (closed > 0 && process.connected) send({ closed });
    closed = 0;
  };
  for (const fd of fds) {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      closeGently(socket);
      closed++;
      report ??= setTimeout(flush, 100);
    });
    listenOnFd(server, fd, Number(backlogText));
  }
  process.on('SIGTERM', () => {
    if (report) clearTimeout(report);
    flush();
    if (process.connected) process.disconnect();
    process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
} else {
  throw new Error(`unknown helper mode "${mode}"`);
}
