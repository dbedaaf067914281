// RFC 862: send back whatever arrives. pipe() keeps to the client's pace
// (backpressure), and ends our side once the client has ended its own and
// every echoed byte is written.

import type { Builtin } from './builtin.js';

export const echo: Builtin = {
  stream(socket) {
    socket.pipe(socket);
  },
  datagram: (message) => message,
};
