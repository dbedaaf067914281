// RFC 867: the local date and time as one human-readable line, in the
// format of C's ctime() as BSD inetd sends it: "Thu Nov 26 00:43:46 2026\r\n".

import { answerAndClose, type Builtin } from './builtin.js';

const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function ctime(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  const day = String(date.getDate()).padStart(2, ' ');
  return `${days[date.getDay()]} ${months[date.getMonth()]} ${day} ${time} ${date.getFullYear()}`;
}

const now = (): Buffer => Buffer.from(`${ctime(new Date())}\r\n`);

export const daytime: Builtin = {
  stream(open) {
    answerAndClose(open(), now());
  },
  datagram: now,
};
