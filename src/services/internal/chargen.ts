// RFC 864: an endless stream of 72-character lines of the 95 printable ASCII
// characters, each line starting one character later. Every write is the
// same prebuilt buffer (all 95 lines), and writing stops whenever the
// socket's buffer is full until it drains, so a slow client costs almost no
// memory.

import type { Builtin } from './builtin.js';

const printable = 95;
const lineLength = 72;

const pattern = Buffer.from(
  Array.from({ length: printable }, (_, first) => {
    const line = Array.from({ length: lineLength }, (_, k) => String.fromCharCode(32 + ((first + k) % printable)));
    return line.join('') + '\r\n';
  }).join(''),
  'latin1',
);

/** Exported for tests: line `n` of the stream (0-based), without its CRLF. */
export function chargenLine(n: number): string {
  const start = (n % printable) * (lineLength + 2);
  return pattern.toString('latin1', start, start + lineLength);
}

const maxDatagram = 512;

export const chargen: Builtin = {
  stream(open) {
    const socket = open();
    const fill = (): void => {
      while (socket.writable && socket.write(pattern));
    };
    socket.on('drain', fill);
    socket.resume(); // Whatever the client sends is discarded.
    fill();
  },
  datagram: () => pattern.subarray(0, Math.floor(Math.random() * (maxDatagram + 1))),
};
