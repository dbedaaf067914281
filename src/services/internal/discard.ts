// RFC 863: throw away whatever arrives; answer nothing.

import type { Builtin } from './builtin.js';

export const discard: Builtin = {
  stream(socket) {
    socket.on('end', () => socket.end());
    socket.resume();
  },
  datagram: () => null,
};
