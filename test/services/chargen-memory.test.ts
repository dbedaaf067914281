// chargen keeps to each client's pace: thousands of clients that never read
// cost the supervisor a bounded amount of memory, not an ever-growing one.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { startWakeport } from '../helpers/wakeport.js';

const clients = 2000;

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return kb / 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test(`${clients} chargen clients that never read`, async (t) => {
  const wakeport = await startWakeport(t, '127.0.0.1:0 stream tcp nowait - internal chargen\n    label = chargen\n');
  const port = wakeport.port('chargen');
  const before = rssMb(wakeport.supervisorPid);
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  for (let i = 0; i < clients; i++) {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.pause(); // Never read: the kernel buffers fill, then chargen must wait.
    socket.on('error', () => {});
    sockets.push(socket);
    if (i % 200 === 199) await sleep(20);
  }
  await sleep(1500);
  const settled = rssMb(wakeport.supervisorPid);
  await sleep(2000);
  const later = rssMb(wakeport.supervisorPid);
  t.comment(`supervisor RSS: ${before.toFixed(1)} MB idle, ${settled.toFixed(1)} MB with ${clients} stalled clients, ${later.toFixed(1)} MB 2 s later`);
  t.ok(later - settled < 16, 'memory does not keep growing while the clients stall');
  t.ok(later - before < 160, `under 80 KB per stalled client (${(((later - before) * 1024) / clients).toFixed(1)} KB)`);
});
