// RFC 863: throw away whatever arrives; answer nothing.

import type { Builtin } from './builtin.js';

export const discard: Builtin = {
  stream(socket) {
    // A client that hung up while it waited in the queue has already ended: 'end' will not come again.
    if (socket.readableEnded) socket.end();
    else socket.on('end', () => socket.end());
    socket.resume();
  },
  datagram: () => null,
};
