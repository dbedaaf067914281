// inetd's internal services over TCP and UDP, checked against their RFCs
// through a real wakeport.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { chargenLine } from '../../src/services/internal/chargen.js';
import { isLoopRisk } from '../../src/services/internal/dgram.js';
import { get } from '../helpers/http.js';
import { connectFrom, datagram, exchange, until } from '../helpers/net.js';
import { openFdCount } from '../helpers/proc.js';
import { root, startWakeport } from '../helpers/wakeport.js';

const table = ['echo', 'discard', 'chargen', 'daytime', 'time']
  .flatMap((name) => [
    `127.0.0.1:0  stream  tcp  nowait  -  internal  ${name}`,
    `    label = ${name}-tcp`,
    `127.0.0.1:0  dgram   udp  wait    -  internal  ${name}`,
    `    label = ${name}-udp`,
  ])
  .join('\n');

const patternStart = Array.from({ length: 7 }, (_, n) => `${chargenLine(n)}\r\n`).join('');
const secondsFrom1900To1970 = 2_208_988_800;
const ctimePattern = /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/;

t.test('internal services', async (t) => {
  const wakeport = await startWakeport(t, table);

  t.test('echo (RFC 862) over TCP returns every byte, after a half-close too', async (t) => {
    const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    t.same(await exchange(wakeport.port('echo-tcp'), payload), payload);
  });

  t.test('echo returns every byte to clients at once that read slowly, so that its writes wait', async (t) => {
    const port = wakeport.port('echo-tcp');
    const results = await Promise.all([0, 1, 2, 3].map((n) => echoSlowly(port, randomBytes(8_000_000 + n * 4_099))));
    results.forEach(({ sent, received }, n) => t.ok(received.equals(sent), `client ${n}: ${received.length} of ${sent.length} bytes back, in order`));
  });

  t.test('echo over UDP answers with the same datagram', async (t) => {
    t.same(await datagram(wakeport.port('echo-udp'), 'ping'), Buffer.from('ping'));
  });

  t.test('discard (RFC 863) answers nothing, and closes after the client does', async (t) => {
    t.equal((await exchange(wakeport.port('discard-tcp'), 'x'.repeat(100_000))).length, 0);
    t.equal(await datagram(wakeport.port('discard-udp'), 'x', 300), null);
  });

  t.test('chargen (RFC 864) over TCP sends 72-character lines, each starting one character later', async (t) => {
    const received = await firstBytes(wakeport.port('chargen-tcp'), 74 * 200);
    const lines = received.toString('latin1').split('\r\n').slice(0, 199);
    t.equal(lines.length, 199);
    lines.forEach((line, n) => {
      if (line !== chargenLine(n)) t.fail(`line ${n} is ${JSON.stringify(line)}`);
    });
    t.equal(lines[0], ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg');
    t.equal(lines[95], lines[0], 'the pattern repeats after 95 lines');
  });

  t.test('chargen over UDP answers with 0 to 512 characters of the pattern', async (t) => {
    for (let i = 0; i < 20; i++) {
      const answer = await datagram(wakeport.port('chargen-udp'), 'x');
      t.ok(answer !== null && answer.length <= 512, `answer ${i} has ${answer?.length} bytes`);
      t.equal(answer!.toString('latin1'), patternStart.slice(0, answer!.length));
    }
  });

  t.test('daytime (RFC 867) sends one human-readable line, over TCP and UDP', async (t) => {
    t.match((await exchange(wakeport.port('daytime-tcp'))).toString(), ctimePattern);
    t.match((await datagram(wakeport.port('daytime-udp'), 'x'))!.toString(), ctimePattern);
  });

  t.test('time (RFC 868) sends seconds since 1900 as 32 bits, over TCP and UDP', async (t) => {
    const now = Math.floor(Date.now() / 1000) + secondsFrom1900To1970;
    for (const answer of [await exchange(wakeport.port('time-tcp')), (await datagram(wakeport.port('time-udp'), 'x'))!]) {
      t.equal(answer.length, 4);
      t.ok(Math.abs(answer.readUInt32BE() - now) <= 2, `${answer.readUInt32BE()} is within 2 s of ${now}`);
    }
  });

  t.test('daytime and time close the connection after answering, even when the client keeps its side open, or keeps sending', async (t) => {
    const baseline = openFdCount(wakeport.supervisorPid);
    const answered = await Promise.all(
      ['daytime-tcp', 'time-tcp'].flatMap((label) =>
        Array.from({ length: 10 }, () => {
          const client = net.connect({ port: wakeport.port(label), host: '127.0.0.1', allowHalfOpen: true });
          client.on('error', () => {});
          client.write('something the server does not read\n');
          return new Promise<net.Socket>((resolve) => client.once('end', () => resolve(client)).resume());
        }),
      ),
    );
    // One client goes on sending, more often than the server's linger.
    const chatter = setInterval(() => answered[0]!.writable && answered[0]!.write('more\n'), 500);
    t.teardown(() => clearInterval(chatter));
    t.ok(openFdCount(wakeport.supervisorPid) > baseline, 'the answered, half-open connections hold fds for a while');
    await until(() => openFdCount(wakeport.supervisorPid) <= baseline, 10_000);
    // At most the baseline: connections of the tests before may still have been closing when it was taken.
    t.ok(openFdCount(wakeport.supervisorPid) <= baseline, 'the supervisor let them go by itself');
    for (const client of answered) client.destroy();
  });

  t.test("UDP loop protection: no answer to a datagram from an internal service port, a privileged port or NFS's", async (t) => {
    const echoPort = wakeport.port('echo-udp');
    const fromPort = (port: number) => sendFrom('127.0.0.2', port, echoPort, 'loop?');
    t.equal(await fromPort(wakeport.port('chargen-udp')), null, 'from another internal UDP service port');
    t.equal(await fromPort(wakeport.port('time-tcp')), null, 'from an internal TCP service port');
    if (process.getuid?.() === 0) t.equal(await fromPort(999), null, 'from a privileged port');
    else t.comment('skipped the privileged-port case: binding port 999 needs root');
    t.equal(await fromPort(2049), null, "from NFS's port");
    t.same(await fromPort(0), Buffer.from('loop?'), 'an ordinary source port is answered');
    await wakeport.waitForLog((r) => r.subject === 'echo-udp' && /loop protection/.test(r.message));
  });
});

t.test('limits: a client that hangs up while waiting gives back its place, and one address cannot crowd out another', async (t) => {
  const wakeport = await startWakeport(
    t,
    ['127.0.0.1:0 stream tcp nowait - internal echo', '    label = limited', '    max-connections = 2', '    max-per-source = 1', '    backlog = 2'].join('\n'),
  );
  const port = wakeport.port('limited');
  const first = await connectFrom('127.0.0.1', port);
  t.equal(await echoOnce(first, 'a'), 'a', 'the first client is served');
  const quitter = await connectFrom('127.0.0.1', port);
  await sleep(200);
  quitter.resetAndDestroy();
  await sleep(200);
  first.destroy();
  const next = await connectFrom('127.0.0.1', port);
  t.equal(await echoOnce(next, 'b'), 'b', 'the client after one that hung up while waiting is served');

  const waiting = [await connectFrom('127.0.0.1', port), await connectFrom('127.0.0.1', port)];
  await sleep(200);
  const other = await connectFrom('127.0.0.2', port);
  t.equal(await echoOnce(other, 'c'), 'c', 'another address is served at once while one address fills the queue');
  const [older, newest] = waiting as [net.Socket, net.Socket];
  await sleep(200);
  t.ok(!older.closed && !newest.closed, 'taking no one\'s place: the queue was full, but it was served at once');
  // Now max-connections is reached too: a third address's client must wait, and takes the crowding address's newest place.
  const third = await connectFrom('127.0.0.3', port);
  await until(() => newest.closed);
  t.ok(newest.closed && newest.bytesRead === 0, "the crowding address's newest waiting client is closed without an answer");
  t.notOk(older.closed, 'its older waiting client still waits');
  await wakeport.waitForLog((r) => r.subject === 'limited' && /reject client 127\.0\.0\.1:/.test(r.message));
  for (const socket of [next, other, third, ...waiting]) socket.destroy();
});

t.test('a flood of refused clients is logged once, and the count of the rest is said as wakeport stops (found by a reviewer)', async (t) => {
  const wakeport = await startWakeport(t, '127.0.0.1:0 stream tcp nowait - internal echo\n    label = guarded\n    only-from = 127.0.0.1');
  const port = wakeport.port('guarded');
  // Each is closed at once, with or without a reset.
  for (let client = 0; client < 5; client++) t.equal(String(await exchange(port, 'x', '127.0.0.1', 5000, '127.0.0.2').catch(() => '')), '');
  await wakeport.waitForLog((r) => r.subject === 'guarded');
  t.same(await wakeport.stop(), { code: 0, signal: null });
  const lines = wakeport.logs.filter((r) => r.subject === 'guarded' && r.severity === 'warning').map((r) => r.message);
  t.equal(lines.length, 2, 'two lines for five refusals');
  t.match(lines[0], /^reject client 127\.0\.0\.2:\d+: its address is not in only-from; closed its connection$/);
  t.equal(lines[1], 'rejected 4 more clients since the last report: their addresses are refused by only-from or no-access');
});

t.test('only-from: internal services over TCP and UDP answer only the addresses it names, and close a refused client at once', async (t) => {
  const table = [
    '127.0.0.1:0 stream tcp nowait - internal echo',
    '    label = echo-guarded',
    '    only-from = 127.0.0.1 ::/0',
    '127.0.0.1:0 dgram udp wait - internal echo',
    '    label = udp-guarded',
    '    only-from = 127.0.0.1',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const tcp = wakeport.port('echo-guarded');
  t.equal(String(await exchange(tcp, 'a', '127.0.0.1', 5000, '127.0.0.1')), 'a', 'a client from 127.0.0.1 is answered');
  t.equal(String(await exchange(tcp, '', '127.0.0.1', 5000, '127.0.0.2')), '', 'one from 127.0.0.2 is closed without an answer (an IPv6 rule covers no IPv4 client)');
  await wakeport.waitForLog((r) => r.subject === 'echo-guarded' && /^reject client 127\.0\.0\.2:\d+: its address is not in only-from; closed its connection$/.test(r.message));
  // A client that ignores our FIN (allowHalfOpen) and keeps sending, as a hostile one would.
  const trickler = net.connect({ port: tcp, host: '127.0.0.1', localAddress: '127.0.0.3', allowHalfOpen: true });
  trickler.on('error', () => {});
  const drip = setInterval(() => trickler.writable && trickler.write('.'), 100);
  await until(() => trickler.closed, 1000);
  clearInterval(drip);
  t.ok(trickler.closed, 'a refused client that keeps sending is closed all the same, within 1 s');
  const udp = wakeport.port('udp-guarded');
  t.same(await sendFrom('127.0.0.1', 0, udp, 'c'), Buffer.from('c'), 'a datagram from 127.0.0.1 is answered');
  t.equal(await sendFrom('127.0.0.2', 0, udp, 'd'), null, 'one from 127.0.0.2 is not');
  await wakeport.waitForLog((r) => r.subject === 'udp-guarded' && /^ignored a datagram from 127\.0\.0\.2:\d+: its address is not in only-from$/.test(r.message));
});

/**
 * Sends `data` to an echo server in writes of random sizes, then ends; reads
 * the echo with pauses (so the server's writes back cannot all complete at
 * once), and resolves with what came back before the server ended.
 */
async function echoSlowly(port: number, data: Buffer): Promise<{ sent: Buffer; received: Buffer }> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    if (chunks.length % 10 === 0) {
      socket.pause();
      setTimeout(() => socket.resume(), 20);
    }
  });
  const ended = new Promise<void>((resolve) => socket.on('end', resolve).on('close', resolve));
  for (let offset = 0; offset < data.length; ) {
    const length = 1 + Math.floor(Math.random() * 100_000);
    if (!socket.write(data.subarray(offset, offset + length))) await new Promise((resolve) => socket.once('drain', resolve));
    offset += length;
  }
  socket.end();
  await ended;
  socket.destroy();
  return { sent: data, received: Buffer.concat(chunks) };
}

t.test('limits: clients that reset while they wait leave a full queue to the next client', async (t) => {
  const wakeport = await startWakeport(
    t,
    ['127.0.0.1:0 stream tcp nowait - internal echo', '    label = one', '    max-connections = 1', '    backlog = 2'].join('\n'),
  );
  const port = wakeport.port('one');
  const first = await connectFrom('127.0.0.1', port);
  t.equal(await echoOnce(first, 'a'), 'a', 'the first client is served');
  const resets = [await connectFrom('127.0.0.1', port), await connectFrom('127.0.0.1', port)];
  await sleep(200); // Both waiting in the full queue.
  for (const socket of resets) socket.resetAndDestroy();
  await sleep(100);
  const next = await connectFrom('127.0.0.1', port);
  next.on('error', () => {});
  await sleep(200);
  t.notOk(next.closed, 'the next client waits: it is not refused');
  first.destroy();
  t.equal(await echoOnce(next, 'b'), 'b', 'and is served in turn');
  t.notOk(
    wakeport.logs.some((r) => r.subject === 'one' && /reject client/.test(r.message)),
    'nobody was refused',
  );
  next.destroy();
});

/** Writes `text` and resolves with what comes back, or null when the connection closes or 3 s pass first. */
function echoOnce(socket: net.Socket, text: string): Promise<string | null> {
  return new Promise((resolve) => {
    const done = (answer: string | null) => {
      clearTimeout(timer);
      socket.off('data', onData).off('close', onClose);
      resolve(answer);
    };
    const onData = (chunk: Buffer) => done(chunk.toString());
    const onClose = () => done(null);
    const timer = setTimeout(() => done(null), 3000);
    socket.on('data', onData).on('close', onClose);
    socket.on('error', () => {});
    socket.write(text);
  });
}

t.test('discard: a client that half-closes while it waits is answered in turn, and does not keep its slot', async (t) => {
  const wakeport = await startWakeport(t, '127.0.0.1:0 stream tcp nowait - internal discard\n    label = sink\n    max-connections = 1');
  const port = wakeport.port('sink');
  const first = await connectFrom('127.0.0.1', port);
  const waiting = await connectFrom('127.0.0.1', port);
  waiting.on('error', () => {});
  waiting.end(); // FIN while it waits: the way nc, curl and most clients hang up
  await sleep(200);
  first.destroy();
  await until(() => waiting.closed);
  t.ok(waiting.closed, 'the half-closed client gets its end once admitted');
  t.equal((await exchange(port, 'x', '127.0.0.1', 3000)).length, 0, 'the next client is served');
});

t.test('a flood past what the open-file limit leaves room for: the excess is closed and logged, and the other services go on', { skip: spawnSync('prlimit', ['--version']).status !== 0 && 'prlimit (util-linux) is not installed' }, async (t) => {
  const table = `127.0.0.1:0 stream tcp nowait - internal discard
    label = sink
127.0.0.1:0 stream tcp nowait - internal echo
    label = echo
127.0.0.1:0 stream tcp wait - ${root}/dist/services/http-server.js http-server
    label = web
    handoff = listen-fds`;
  // 200 fds: internal services may hold 100 connections, the rest is kept for everything else.
  const wakeport = await startWakeport(t, table, { wrap: (command) => ['prlimit', '--nofile=200', '--', ...command] });
  const flood = await Promise.all(Array.from({ length: 250 }, () => connectFrom('127.0.0.1', wakeport.port('sink'))));
  t.teardown(() => flood.forEach((socket) => socket.destroy()));
  const line = await wakeport.waitForLog((r) => r.subject === 'sink' && r.message.startsWith('reject client'));
  t.match(line.message, /^reject client 127\.0\.0\.1:\d+: internal services already hold 100 connections, all that the supervisor's open-file limit \(ulimit -n\) leaves room for; closed its connection$/);
  t.equal((await get(wakeport.port('web'), '/')).status, 200, 'a wait service still starts its worker');
  const closed = () => flood.filter((socket) => socket.closed).length;
  await until(() => closed() >= 150);
  await sleep(200);
  t.equal(closed(), 150, 'exactly the excess is closed');
  t.equal(String(await exchange(wakeport.port('echo'), 'still here')), 'still here', 'another internal service is still served');
  await until(() => closed() >= 151);
  t.equal(closed(), 151, "its client took the place of the flood's newest");
  t.equal(wakeport.logs.filter((r) => r.subject === 'sink' && r.message.startsWith('reject client')).length, 1, 'logged once');

  // A burst of 60 to echo, accepted in one go (they wait in the backlog while the supervisor is stopped):
  // its clients take the flood's places until both hold about as many (50 and 50).
  process.kill(wakeport.supervisorPid, 'SIGSTOP');
  const burst = await Promise.all(Array.from({ length: 60 }, () => connectFrom('127.0.0.1', wakeport.port('echo')))).finally(() =>
    process.kill(wakeport.supervisorPid, 'SIGCONT'),
  );
  t.teardown(() => burst.forEach((socket) => socket.destroy()));
  await until(() => burst.filter((socket) => socket.closed).length >= 10 && closed() >= 200);
  await sleep(200);
  t.equal(burst.filter((socket) => socket.closed).length, 10, 'echo keeps 50 of the burst');
  t.equal(closed(), 200, 'the flood keeps 50');
});

/** Reads `count` bytes from a TCP service, then hangs up. */
function firstBytes(port: number, count: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= count) {
        socket.destroy();
        resolve(Buffer.concat(chunks).subarray(0, count));
      }
    });
    socket.on('error', reject);
  });
}

/** Sends a datagram from a chosen local address and port; resolves with the answer or null. */
function sendFrom(host: string, port: number, to: number, text: string): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.on('error', reject);
    socket.bind(port, host, () => {
      const timer = setTimeout(() => (socket.close(), resolve(null)), 400);
      socket.on('message', (message) => (clearTimeout(timer), socket.close(), resolve(message)));
      socket.send(text, to, '127.0.0.1');
    });
  });
}

t.test('UDP loop protection also refuses sources no single host has (not reachable over loopback, so checked directly)', async (t) => {
  const none = new Set<number>();
  for (const address of ['0.0.0.0', '255.255.255.255', '224.0.0.1', '239.255.255.250', '::', 'ff02::1', '::ffff:224.0.0.1']) {
    t.ok(isLoopRisk(address, 40000, none), address);
  }
  for (const address of ['127.0.0.1', '10.1.2.3', '223.255.255.255', '::1', 'fe80::1', '::ffff:127.0.0.1']) {
    t.notOk(isLoopRisk(address, 40000, none), address);
  }
});
