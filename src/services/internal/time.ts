// RFC 868: the time as a 32-bit big-endian count of seconds since
// 1900-01-01 00:00 UTC (it wraps in 2036, as the RFC's clients expect).

import { answerAndClose, type Builtin } from './builtin.js';

const secondsFrom1900To1970 = 2_208_988_800;

function rfc868Time(date: Date): Buffer {
  const seconds = (Math.floor(date.getTime() / 1000) + secondsFrom1900To1970) % 2 ** 32;
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(seconds);
  return buffer;
}

export const time: Builtin = {
  stream(open) {
    answerAndClose(open(), rfc868Time(new Date()));
  },
  datagram: () => rfc868Time(new Date()),
};
