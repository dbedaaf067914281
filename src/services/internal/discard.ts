// RFC 863: throw away whatever arrives; answer nothing.

import type { Builtin } from './builtin.js';

// Every connection reads into this one buffer (net.Socket's onread): nothing
// read is kept, so nothing is allocated per read.
const sink = Buffer.allocUnsafeSlow(64 * 1024);

export const discard: Builtin = {
  stream(open) {
    const socket = open({ buffer: sink, callback: () => true });
    socket.on('end', () => socket.end());
  },
  datagram: () => null,
};
