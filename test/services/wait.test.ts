// wait services: a worker started by the first client and handed the
// listening sockets, which outlive it.

import { spawnSync } from 'node:child_process';
import net from 'node:net';
import t from 'tap';
import { get } from '../helpers/http.js';
import { datagram, exchange, hasIpv6 } from '../helpers/net.js';
import { childrenOf, commandOf, runNodeToExit } from '../helpers/proc.js';
import { root, startWakeport, type Wakeport } from '../helpers/wakeport.js';

const fixtures = `${root}/test/fixtures`;
const httpServer = `${root}/dist/services/http-server.js`;

const lineClient = (port: number, line: string, host = '127.0.0.1') => exchange(port, `${line}\n`, host).then(String);

t.test('no worker runs until the first client; the first request is answered', async (t) => {
  for (const [how, program] of [
    ['listen({ fd: 3 })', `${fixtures}/raw-listen.mjs raw-listen http`],
    ['the wakeport/worker helper', `${fixtures}/helper-worker.mjs helper-worker`],
  ] as const) {
    t.test(how, async (t) => {
      const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp wait - ${program}\n    label = web\n    handoff = listen-fds\n`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const file = program.split(' ')[0]!;
      const workers = childrenOf(wakeport.supervisorPid).filter(({ pid }) => commandOf(pid).includes(file));
      t.same(workers, [], 'no worker before the first client');
      const reply = await get(wakeport.port('web'), '/first');
      t.equal(reply.status, 200);
      t.equal(reply.body, how.startsWith('listen') ? 'raw:/first' : 'helper:/first');
      t.match(wakeport.logs.find((r) => r.message.startsWith('start worker')), { message: /\(a client is waiting\)$/ });
    });
  }
});

t.test('200 clients that connect before the worker is up are all served, with the bytes they sent early', async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp wait - ${fixtures}/raw-listen.mjs raw-listen line 500\n    label = late\n    handoff = listen-fds\n`);
  const port = wakeport.port('late');
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => lineClient(port, `client-${i}`)));
  t.same(replies, Array.from({ length: 200 }, (_, i) => `got:client-${i}\n`));
  t.equal(wakeport.logs.filter((r) => r.message.startsWith('start worker')).length, 1, 'one worker served them all');
});

const python = spawnSync('python3', ['--version']);
t.test('a Python worker using socket.socket(fileno=3) gets the right fds, LISTEN_PID and blocking sockets, every one', { skip: python.error ? 'python3 is not installed' : false }, async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/python-worker.py python-worker`,
    '    label = py',
    '    handoff = listen-fds',
    '    name = web',
    '    listen = 127.0.0.1:0',
    '    listen = 127.0.0.1:0',
    '    listen = 127.0.0.1:0',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const names = 'web:py:py:py';
  t.equal(await lineClient(wakeport.port('py'), 'hello'), `python got hello; names=${names} blocking=True,True,True,True\n`);
  t.equal(await lineClient(wakeport.port('py'), 'again'), `python got again; names=${names} blocking=True,True,True,True\n`);
});

t.test('several listen addresses reach one worker, in order, with their names', { skip: !hasIpv6() && 'no IPv6 loopback' }, async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/helper-worker.mjs helper-worker`,
    '    label = multi',
    '    handoff = listen-fds',
    '    name = v4',
    '    listen = [::1]:0',
    '    name = v6',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const listening = wakeport.logs.filter((r) => r.subject === 'multi' && r.message.startsWith('listening on'));
  t.match(listening.map((r) => r.address), [/^127\.0\.0\.1:\d+$/, /^\[::1\]:\d+$/]);
  t.equal((await get(listening[0]!.port as number, '/over-v4')).body, 'helper:/over-v4');
  t.equal((await get(listening[1]!.port as number, '/over-v6', '::1')).body, 'helper:/over-v6');
  // The helper keys the sockets by LISTEN_FDNAMES, in fd order.
  const said = await wakeport.waitForLog((r) => r.severity === 'output' && r.message.startsWith('helper-worker: sockets'));
  t.equal(said.message, 'helper-worker: sockets v4,v6');
  t.equal(wakeport.logs.filter((r) => r.message.startsWith('start worker')).length, 1, 'one worker for both addresses');
  const { pid, said: saidPid } = await listenPidReport(wakeport);
  t.equal(saidPid, `helper-worker: LISTEN_PID ${pid}, pid ${pid}`, 'LISTEN_PID is the worker itself');
});

t.test('a first client on a second socket starts the wait worker, and the nowait hosts, without a retry', async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/helper-worker.mjs helper-worker`,
    '    label = pair',
    '    handoff = listen-fds',
    '    listen = 127.0.0.1:0',
    `127.0.0.1:0 stream tcp nowait - ${fixtures}/read-reply.sh`,
    '    label = first',
    `127.0.0.1:0 stream tcp nowait - ${fixtures}/read-reply.sh`,
    '    label = second',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  t.match(wakeport.logs.find((r) => r.message.startsWith('serving')), { services: 3 }, 'each nowait service counts, not their pool');
  const pairPorts = wakeport.logs.filter((r) => r.subject === 'pair' && r.message.startsWith('listening on')).map((r) => r.port as number);
  t.equal((await get(pairPorts[1]!, '/second-socket')).body, 'helper:/second-socket');
  t.equal(await lineClient(wakeport.port('second'), 'hi'), 'got:hi\n');
  t.same(
    wakeport.logs.filter((r) => /cannot watch/.test(r.message)).map((r) => r.message),
    [],
    'the socket-copy helper handed over every socket',
  );
});

/** What helper-worker.mjs said of LISTEN_PID and its pid, and the pid wakeport logged for the worker. */
async function listenPidReport(wakeport: Wakeport): Promise<{ pid: unknown; said: string }> {
  const pid = wakeport.logs.find((r) => r.message.startsWith('start worker'))!.pid;
  const told = await wakeport.waitForLog((r) => r.severity === 'output' && r.message.startsWith('helper-worker: LISTEN_PID'));
  return { pid, said: told.message };
}

t.test('the wakeport/worker helper binds each handed-over UDP socket to a dgram.Socket of its family', async (t) => {
  const table = [`127.0.0.1:0 dgram udp wait - ${fixtures}/udp-worker.mjs udp-worker`, '    label = udp', '    handoff = listen-fds'];
  if (hasIpv6()) table.push('    listen = [::1]:0');
  const wakeport = await startWakeport(t, table.join('\n'));
  const ports = wakeport.logs.filter((r) => r.subject === 'udp' && r.message.startsWith('listening on')).map((r) => r.port as number);
  t.equal(String(await datagram(ports[0]!, 'four', 5000)), 'udp4 got four');
  if (hasIpv6()) t.equal(String(await datagram(ports[1]!, 'six', 5000, '::1')), 'udp6 got six');
});

t.test('the wakeport/worker helper counts datagrams as work: a UDP worker with an idle timeout runs while they come', async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1:0 dgram udp wait - ${fixtures}/udp-worker.mjs udp-worker 1500\n    label = udp\n    handoff = listen-fds`);
  const port = wakeport.port('udp');
  const exited = () => wakeport.logs.some((r) => r.subject === 'udp' && /exited with exitcode 0/.test(r.message));
  for (const started = Date.now(); Date.now() - started < 3000; ) {
    t.equal(String(await datagram(port, 'ping', 5000)), 'udp4 got ping');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.notOk(exited(), 'no idle exit while datagrams come');
  await wakeport.waitForLog((r) => r.subject === 'udp' && /exited with exitcode 0/.test(r.message), 5000);
  t.pass('it exits once they stop');
});

t.test('the wakeport/worker helper given fds that are not listening sockets says which fd, and why', async (t) => {
  const run = (listenFds: string, fd3: 'ipc' | 'ignore') =>
    runNodeToExit([`${fixtures}/helper-worker.mjs`], { LISTEN_FDS: listenFds }, ['ignore', 'ignore', 'pipe', fd3]);
  const connected = await run('1', 'ipc');
  t.not(connected.code, 0);
  t.match(connected.stderr, /wakeport\/worker: fd 3 from LISTEN_FDS is not a listening stream socket: listen E[A-Z]+/);
  const missing = await run('2', 'ipc');
  t.not(missing.code, 0);
  t.match(missing.stderr, /LISTEN_FDS=2, but fd 4 is not (open|a socket): the sockets handed over are not where the socket-activation variables say/);
});

t.test('listen-pid = no: the worker gets its sockets without LISTEN_PID, started directly', async (t) => {
  const table = [`127.0.0.1:0 stream tcp wait - ${fixtures}/helper-worker.mjs helper-worker`, '    label = direct', '    handoff = listen-fds', '    listen-pid = no'].join('\n');
  const wakeport = await startWakeport(t, table);
  t.equal((await get(wakeport.port('direct'), '/first')).body, 'helper:/first');
  const { pid, said } = await listenPidReport(wakeport);
  t.equal(said, `helper-worker: LISTEN_PID unset, pid ${pid}`);
  t.equal((await get(wakeport.port('direct'), '/second')).body, 'helper:/second', 'the same worker goes on serving');
});

t.test('nowait with handoff = listen-fds: the connection is fd 3, named "connection"', async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp nowait - ${fixtures}/env-to-fd3.sh\n    label = fd3\n    handoff = listen-fds\n`);
  t.equal(String(await exchange(wakeport.port('fd3'))), 'fds=1 names=connection pid=ok remote=127.0.0.1\n');
  t.equal(await fd3Stdout(wakeport), 'stdout of pid ok', "its stdout goes to the log, through the service's shared pipe");
});

t.test('nowait with handoff = listen-fds and a stderr file: stdout still goes to the log', async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp nowait - ${fixtures}/env-to-fd3.sh\n    label = fd3\n    handoff = listen-fds\n    stderr = err.log\n`);
  await exchange(wakeport.port('fd3'));
  t.equal(await fd3Stdout(wakeport), 'stdout of pid ok');
});

/** The stdout line env-to-fd3.sh wrote, as logged, with its pid checked against the "end pid" line. */
async function fd3Stdout(wakeport: Wakeport): Promise<string> {
  const end = await wakeport.waitForLog((r) => r.subject === 'fd3' && r.message.startsWith('end pid'));
  const stdout = await wakeport.waitForLog((r) => r.subject === 'fd3' && r.severity === 'output');
  return stdout.message.replace(`pid ${end.pid}`, 'pid ok');
}

t.test('handoff = stdio: a TCP wait worker gets the listening socket as fd 0', { skip: python.error ? 'python3 is not installed' : false }, async (t) => {
  const program = `${fixtures}/stdio-listener.py`;
  const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp wait - ${program} stdio-listener\n    label = stdio\n`);
  t.equal(await lineClient(wakeport.port('stdio'), 'on-stdin'), 'stdin listener got on-stdin\n');
});

t.test('handoff = stdio with a list of hosts: one worker per address, each with its own socket as fd 0 (GNU inetd)', { skip: (python.error ? 'python3 is not installed' : false) || (!hasIpv6() && 'no IPv6 loopback') }, async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1,[::1]:0 stream tcp wait - ${fixtures}/stdio-listener.py stdio-listener\n`);
  t.equal(await lineClient(wakeport.port('127.0.0.1:0/tcp'), 'on-v4'), 'stdin listener got on-v4\n');
  t.equal(await lineClient(wakeport.port('[::1]:0/tcp'), 'on-v6', '::1'), 'stdin listener got on-v6\n');
  const workers = wakeport.logs.filter((r) => r.message.startsWith('start worker pid')).map((r) => `${r.subject} ${r.pid}`);
  t.equal(new Set(workers.map((worker) => worker.split(' ')[1])).size, 2, `two workers, one per address: ${workers.join(', ')}`);
});

t.test('ready = notify: the worker counts as up only after READY=1; start-timeout stops one that never checks in', async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${httpServer} http-server`,
    '    label = notify',
    '    handoff = listen-fds',
    '    ready = notify',
    `127.0.0.1:0 stream tcp wait - ${fixtures}/never-ready.mjs never-ready`,
    '    label = silent',
    '    handoff = listen-fds',
    '    ready = notify',
    '    start-timeout = 300ms',
    // Room for a slow, loaded machine: SIGTERM, not this timeout's SIGKILL, is what must stop it.
    '    exit-timeout = 3s',
    '    restart-delay = 5s',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  t.equal((await get(wakeport.port('notify'))).status, 200);
  await wakeport.waitForLog((r) => r.subject === 'notify' && /^worker pid \d+ is ready \(after \d+ms\)$/.test(r.message));
  const client = net.connect({ port: wakeport.port('silent'), host: '127.0.0.1' });
  client.on('error', () => {});
  await wakeport.waitForLog((r) => r.subject === 'silent' && /did not check in within 300ms; stopping it$/.test(r.message));
  await wakeport.waitForLog((r) => r.subject === 'silent' && /was killed by SIGTERM after .*; waiting for clients again in 5s \(failure 1 of 5 within 1m\)$/.test(r.message));
  client.destroy();
});

t.test('ready = notify: a worker that exits 0 before it checks in is a failure, and the log says why (JSON fields too)', async (t) => {
  const table = [
    '127.0.0.1:0 stream tcp wait - /bin/true true',
    '    label = quitter',
    '    run-at-load = yes',
    '    ready = notify',
    '    restart-delay = 5s',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const exit = await wakeport.waitForLog((r) => r.subject === 'quitter' && /^worker pid \d+ exited/.test(r.message));
  t.match(exit.message, /^worker pid \d+ exited with exitcode 0 before it sent READY=1 after [\d.]+m?s; waiting for clients again in 5s \(failure 1 of 5 within 1m\)$/);
  t.match(exit, { pid: Number, exitCode: 0, signal: null, durationMs: Number }, 'its end in the JSON fields too');
});

t.test('ready = notify: READY=1 without a newline, as sd_notify() sends it, is a check-in', async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/ready-unterminated.sh ready-unterminated`,
    '    label = bare',
    '    run-at-load = yes',
    '    ready = notify',
    '    start-timeout = 5s',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  await wakeport.waitForLog((r) => r.subject === 'bare' && /^worker pid \d+ is ready \(after \d+ms\)$/.test(r.message), 4000);
  t.notOk(wakeport.logs.some((r) => r.subject === 'bare' && /did not check in/.test(r.message)));
});

t.test('run-at-load and keep-alive start the worker at once; keep-alive restarts it after any exit', async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${httpServer} http-server`,
    '    label = kept',
    '    handoff = listen-fds',
    '    keep-alive = yes',
    '    ready = notify',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const first = await wakeport.waitForLog((r) => r.message.startsWith('start worker'));
  t.match(first.message, /\(at load\)$/);
  // Once it is ready it has its SIGTERM handler, and exits 0 on SIGTERM.
  await wakeport.waitForLog((r) => /is ready/.test(r.message));
  process.kill(first.pid as number, 'SIGTERM');
  const second = await wakeport.waitForLog((r) => r.message.startsWith('start worker') && r.pid !== first.pid);
  t.match(second.message, /\(kept alive\)$/);
  t.equal((await get(wakeport.port('kept'))).status, 200);
});
