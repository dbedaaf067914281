// RFC 862: send back whatever arrives, and end our side once the client has
// ended its own and every echoed byte is written.
//
// Each read lands in a buffer of the connection's own (net.Socket's onread)
// and is written back from there: no stream events and no Buffer
// allocated per read, which gives about twice the throughput of
// socket.pipe(socket) in `npm run bench -- --only echo`. A write the
// kernel cannot take at once still holds
// that buffer, so reading stops until the write is done: the client's pace
// sets ours. Nothing else may read the socket (a 'data' listener or read()
// would start reading again). The buffer grows to 64 KB after a read that
// fills it and goes back to 4 KB after one that does not: an idle
// connection keeps 4 KB, or 64 KB if its last read filled the buffer.

import type { Builtin } from './builtin.js';

const smallBuffer = 4 * 1024;
const largeBuffer = 64 * 1024;

// Buffers no connection holds, by size, for the next that needs one: a
// client whose reads alternate between filling the buffer and not would
// otherwise cost an allocation every other read.
const spares = new Map<number, Buffer[]>([
  [smallBuffer, []],
  [largeBuffer, []],
]);
const maxSpares = 16;

function takeBuffer(size: number): Buffer {
  return spares.get(size)!.pop() ?? Buffer.allocUnsafeSlow(size);
}

/**
 * The buffer for the next read, after one of `length` bytes filled `buffer`
 * that far. `free`: no write still holds `buffer`, so it may be reused.
 */
function nextBuffer(buffer: Buffer, length: number, free: boolean): Buffer {
  const size = length === buffer.length ? largeBuffer : smallBuffer;
  if (size === buffer.length) return buffer;
  const spare = spares.get(buffer.length)!;
  if (free && spare.length < maxSpares) spare.push(buffer);
  return takeBuffer(size);
}

export const echo: Builtin = {
  stream(open) {
    let buffer = takeBuffer(smallBuffer);
    // Called once a write is done; a write done at once needs nothing.
    const resume = () => {
      if (socket.writableLength === 0) socket.resume();
    };
    const socket = open({
      buffer: () => buffer,
      callback(length, filled) {
        socket.write(filled.subarray(0, length), resume);
        const written = socket.writableLength === 0;
        buffer = nextBuffer(buffer, length, written);
        if (written) return true;
        socket.pause(); // Until the write's callback.
        return false;
      },
    });
    socket.on('end', () => socket.end());
  },
  datagram: (message) => message,
};
