// The launcher and the supervisor as a pair: startup lines, a port already
// in use, socket activation under LISTEN_FDS, and stopping.

import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { chmodSync, closeSync, constants as fsConstants, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import t, { type Test } from 'tap';
import { rawHandleOf } from '../../src/sockets/internals.js';
import { get } from '../helpers/http.js';
import { datagram, exchange, readToEnd, until } from '../helpers/net.js';
import { childrenOf, holdsListener, isAlive, isZombie, runNodeToExit } from '../helpers/proc.js';
import { cli, root, startWakeport } from '../helpers/wakeport.js';

const fixtures = `${root}/test/fixtures`;

t.test('startup prints one line per service with its real address, in text format', async (t) => {
  const dir = t.testdir({ 'services.conf': '127.0.0.1:0 stream tcp nowait - internal echo\n    label = echo\n' });
  const child = spawn(process.execPath, [cli, 'run', '-f', `${dir}/services.conf`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve) =>
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (stderr.includes('serving')) resolve();
    }),
  );
  const match = /^wakeport: echo: info: listening on 127\.0\.0\.1:(\d+) \(tcp, internal echo\)$/m.exec(stderr);
  t.ok(match, stderr);
  t.equal(String(await exchange(Number(match![1]), 'text')), 'text');
  child.kill('SIGINT');
  const [code] = await new Promise<[number | null]>((resolve) => child.once('exit', (code) => resolve([code])));
  t.equal(code, 0, 'SIGINT: exit 0');
});

t.test('a port already in use: logged with its service and line, and the other services go on', async (t) => {
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());
  const { port } = squatter.address() as net.AddressInfo;
  const table = `127.0.0.1:${port} stream tcp nowait - internal echo\n    label = web\n127.0.0.1:0 stream tcp nowait - internal echo\n    label = other\n`;
  const wakeport = await startWakeport(t, table);
  const error = wakeport.logs.find((r) => r.severity === 'error')!;
  t.equal(
    error.message,
    `EADDRINUSE 127.0.0.1:${port} (service "web", ${wakeport.dir}/services.conf:1): another program is already bound to this address and port; the other services go on; trying again in 1s, then less often`,
  );
  t.equal(String(await exchange(wakeport.port('other'), 'fine')), 'fine');

  t.test('--strict refuses to start instead, says so, and removes the socket files it made', async (t) => {
    // A socket path short enough for sun_path (the test folder's is not).
    const sockets = mkdtempSync(path.join(os.tmpdir(), 'wakeport-'));
    t.teardown(() => rmSync(sockets, { recursive: true, force: true }));
    const dir = t.testdir({ 'services.conf': `${sockets}/echo.sock stream unix nowait - internal echo\n${table}` });
    const launcher = spawn(process.execPath, [cli, 'run', '--strict', '-f', `${dir}/services.conf`], { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr = readToEnd(launcher.stderr as net.Socket);
    t.equal(await new Promise<number | null>((resolve) => launcher.once('exit', resolve)), 111);
    t.match(await stderr, /another program is already bound to this address and port; not starting \(--strict\)\n/);
    t.notOk(existsSync(`${sockets}/echo.sock`), 'no socket file left behind');
  });
});

t.test('services that could not be bound at start are bound once they can be, and served: nowait, wait, UDP, unix', async (t) => {
  const tcp = await Promise.all([0, 1].map(() => listening(net.createServer())));
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  // Not under the test folder: a unix socket path is limited to 107 bytes.
  const dir = mkdtempSync('/tmp/wakeport-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [nowaitPort, waitPort] = tcp.map((server) => (server.address() as net.AddressInfo).port);
  const udpPort = udp.address().port;
  const table = [
    `127.0.0.1:${nowaitPort} stream tcp nowait - /bin/echo echo late`,
    '    label = late-nowait',
    `127.0.0.1:${waitPort} stream tcp wait - ${root}/dist/services/http-server.js http-server`,
    '    label = late-wait',
    '    handoff = listen-fds',
    `127.0.0.1:${udpPort} dgram udp wait - internal echo`,
    '    label = late-udp',
    `${dir}/later/late.sock stream unix nowait - /bin/echo echo unix`,
    '    label = late-unix',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const failures = wakeport.logs.filter((r) => r.severity === 'error');
  t.equal(failures.length, 4, 'each is logged once');
  t.ok(failures.every((r) => r.message.endsWith('; the other services go on; trying again in 1s, then less often')));
  t.match(failures.find((r) => r.message.includes('late.sock'))!.message, /^ENOENT .*late\.sock .*: the socket's folder does not exist;/, 'a missing folder is named as such');
  await Promise.all(tcp.map((server) => new Promise((resolve) => server.close(resolve))));
  await new Promise<void>((resolve) => udp.close(resolve));
  mkdirSync(`${dir}/later`);
  for (const label of ['late-nowait', 'late-wait', 'late-udp', 'late-unix']) {
    const bound = await wakeport.waitForLog((r) => r.subject === label && r.message.startsWith('bound '), 10_000);
    t.match(bound.message, / on try \d+, [\d.]+s after the first$/, `${label}: ${bound.message}`);
  }
  t.equal(String(await exchange(nowaitPort!)), 'late\n', 'the nowait service is served');
  t.equal((await get(waitPort!, '/')).status, 200, "the wait service's worker is started and served");
  t.equal(String(await datagram(udpPort, 'late')), 'late', 'the UDP service answers');
  t.equal(await readToEnd(net.connect(`${dir}/later/late.sock`)), 'unix\n', 'the unix socket is served');
  t.equal(wakeport.logs.filter((r) => r.severity === 'error').length, 4, 'the tries that failed were not logged');
  await wakeport.stop();
  t.notOk(existsSync(`${dir}/later/late.sock`), 'the socket file bound late is removed when wakeport stops');
});

t.test('a broken line is reported with FILE:LINE and skipped; the rest is served', async (t) => {
  const wakeport = await startWakeport(t, 'echo strem tcp nowait - internal\n127.0.0.1:0 stream tcp nowait - internal echo\n    label = echo\n');
  t.match(wakeport.logs[0], {
    severity: 'error',
    subject: `${wakeport.dir}/services.conf:1`,
    message: 'unknown socket type "strem" (expected stream or dgram) (line skipped)',
  });
  t.equal(String(await exchange(wakeport.port('echo'), 'x')), 'x');
});

t.test('under LISTEN_FDS, the given sockets are adopted (by name and by address) instead of bound', async (t) => {
  const byName = net.createServer();
  const byAddress = net.createServer();
  await new Promise<void>((resolve) => byName.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => byAddress.listen(0, '127.0.0.1', resolve));
  const namePort = (byName.address() as net.AddressInfo).port;
  const addressPort = (byAddress.address() as net.AddressInfo).port;
  const table = [
    '127.0.0.1:0 stream tcp nowait - internal echo',
    '    label = named',
    `127.0.0.1:${addressPort} stream tcp nowait - internal daytime`,
    '    label = by-address',
  ].join('\n');
  // LISTEN_PID must be the launcher's own pid, known only after exec: the shell sets it and execs.
  const wakeportPromise = startWakeport(t, table, {
    env: { ...process.env, LISTEN_FDS: '2', LISTEN_FDNAMES: 'named:unknown' },
    stdio: [rawHandleOf(byName).fd, rawHandleOf(byAddress).fd],
    wrap: (command) => ['/bin/sh', '-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', 'sh', ...command],
  });
  // The test's own copies must not compete for connections: close them now that the child has its copies.
  byName.close();
  byAddress.close();
  const wakeport = await wakeportPromise;
  t.notOk(holdsListener(wakeport.process.pid!, namePort) || holdsListener(wakeport.process.pid!, addressPort), 'the launcher keeps no copy of them');
  t.equal(wakeport.port('named'), namePort, 'the named socket serves "named"');
  t.equal(wakeport.port('by-address'), addressPort);
  t.equal(String(await exchange(namePort, 'adopted')), 'adopted');
  t.match(String(await exchange(addressPort)), /\d\d:\d\d:\d\d/);
});

t.test('at shutdown, another holder of an adopted socket is left alone: it does not descend from a worker (a socket manager in a session of its own)', async (t) => {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const fd = rawHandleOf(listener).fd;
  // It keeps its copy, as systemd does: a session leader holding the socket, with no parent in wakeport.
  const manager = spawn('setsid', ['sleep', '30'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
  t.teardown(() => manager.kill('SIGKILL'));
  const wakeportPromise = startWakeport(t, `127.0.0.1:${port} stream tcp wait - /bin/cat cat\n    label = adopted`, {
    env: { ...process.env, LISTEN_FDS: '1' },
    stdio: [fd],
    wrap: (command) => ['/bin/sh', '-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', 'sh', ...command],
  });
  listener.close();
  const wakeport = await wakeportPromise;
  t.equal(wakeport.port('adopted'), port);
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(isAlive(manager.pid!), 'the manager runs on');
  t.notOk(wakeport.logs.some((r) => r.message.startsWith('stop pid')), 'and nothing says it was stopped');
});

t.test('socket-activation variables that do not match the fds: one fatal line saying which, exit 100, nothing closed or served', async (t) => {
  const dir = t.testdir({ 'services.conf': '127.0.0.1:0 stream tcp nowait - internal echo\n' });
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.teardown(() => listener.close());
  // A launcher killed by runNodeToExit's bound takes its supervisor with it.
  const launch = (variables: NodeJS.ProcessEnv, fd3: number | 'ipc') =>
    runNodeToExit([cli, 'run', '-f', `${dir}/services.conf`], variables, ['ignore', 'ignore', 'pipe', fd3]);
  const cases: [NodeJS.ProcessEnv, number | 'ipc', RegExp][] = [
    [{ LISTEN_FDS: 'two' }, rawHandleOf(listener).fd, /fatal: LISTEN_FDS=two is not a number of fds: /],
    [{ LISTEN_FDS: '1', LISTEN_PID: 'me' }, rawHandleOf(listener).fd, /fatal: LISTEN_PID=me is not a process id: /],
    [{ LISTEN_FDS: '2' }, rawHandleOf(listener).fd, /fatal: LISTEN_FDS=2, but fd 4 is not (open|a socket): /],
    [{ LISTEN_FDS: '1' }, 'ipc', /fatal: fd 3 is not a listening socket wakeport can serve \(LISTEN_FDS=1\); not starting\n$/],
  ];
  for (const [variables, fd3, expected] of cases) {
    const { code, stderr } = await launch(variables, fd3);
    t.equal(code, 100, JSON.stringify(variables));
    t.match(stderr, expected);
    t.notMatch(stderr, /listening on|serving/, 'nothing is served');
  }
});

t.test("a log whose reader has gone (a closed pipe) does not take wakeport down", async (t) => {
  const dir = t.testdir({ 'services.conf': '127.0.0.1:0 stream tcp nowait - /bin/echo echo hi\n    label = hi\n' });
  const launcher = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, cli, 'run', '-f', `${dir}/services.conf`, '--log-level', 'debug'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => launcher.kill('SIGKILL')); // Should this test fail: its supervisor goes with it.
  let stderr = '';
  await new Promise<void>((resolve) =>
    launcher.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('serving 1 service ')) resolve();
    }),
  );
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
  launcher.stderr!.destroy();
  for (let i = 0; i < 3; i++) t.equal(String(await exchange(port)), 'hi\n', `served with nobody reading the log (${i + 1})`);
  const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
  launcher.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('stopping: SIGTERM to every process, SIGKILL after exit-timeout, exit 0', async (t) => {
  const table = `127.0.0.1:0 stream tcp nowait - ${fixtures}/stubborn.sh stubborn\n    label = stubborn\n    exit-timeout = 300ms\n`;
  const wakeport = await startWakeport(t, table);
  const client = net.connect({ port: wakeport.port('stubborn'), host: '127.0.0.1' });
  await new Promise((resolve) => client.once('data', resolve));
  const [child] = childrenOf(wakeport.supervisorPid);
  t.ok(child, 'the program runs');
  const exit = await wakeport.stop('SIGTERM');
  t.same(exit, { code: 0, signal: null });
  t.match(wakeport.logs.find((r) => r.message.startsWith('end pid')), { signal: 'SIGKILL' });
  t.notOk(isAlive(child!.pid), 'the program is gone');
  t.notOk(isAlive(wakeport.supervisorPid), 'the supervisor is gone');
  client.destroy();
});

t.test('if the supervisor is killed, the launcher stops the wait workers it left, and their port is free again', async (t) => {
  const table = `127.0.0.1:0 stream tcp wait - ${root}/dist/services/http-server.js http-server\n    label = web\n    handoff = listen-fds\n    exit-timeout = 3s\n`;
  const wakeport = await startWakeport(t, table);
  const port = wakeport.port('web');
  t.equal((await get(port, '/')).status, 200);
  const worker = (await wakeport.waitForLog((r) => r.message.startsWith('start worker'))).pid as number;
  t.teardown(() => isAlive(worker) && process.kill(-worker, 'SIGKILL')); // Should this test fail: leave nothing behind.
  const exited = new Promise<number | null>((resolve) => wakeport.process.once('exit', (code) => resolve(code)));
  process.kill(wakeport.supervisorPid, 'SIGKILL');
  const line = await wakeport.waitForLog((r) => r.message.startsWith('stopping the'));
  t.equal(line.message, `stopping the wait workers and nowait programs it left running (1 program: pid ${worker})`);
  t.equal(await exited, 111);
  t.notOk(isAlive(worker) && !isZombie(worker), 'the worker has exited');
  const rebound = net.createServer();
  await new Promise<void>((resolve, reject) => rebound.once('error', reject).listen(port, '127.0.0.1', resolve));
  rebound.close();
});

t.test('if the supervisor is killed, the launcher also stops a daemon a wait worker left holding its socket, so the port is free (found by a reviewer)', async (t) => {
  const table = `127.0.0.1:0 stream tcp wait - ${fixtures}/daemonize.sh daemonize twice\n    label = daemon\n    handoff = listen-fds\n    run-at-load = yes\n`;
  const wakeport = await startWakeport(t, table);
  const said = await wakeport.waitForLog((r) => r.subject === 'daemon' && /daemon \d+$/.test(r.message));
  const daemon = Number(/daemon (\d+)$/.exec(said.message)![1]);
  t.teardown(() => void (isAlive(daemon) && process.kill(daemon, 'SIGKILL'))); // Should this test fail: leave nothing behind.
  await wakeport.waitForLog((r) => r.subject === 'daemon' && /exited with exitcode 0/.test(r.message));
  const port = wakeport.port('daemon');
  const exited = new Promise<number | null>((resolve) => wakeport.process.once('exit', (code) => resolve(code)));
  process.kill(wakeport.supervisorPid, 'SIGKILL');
  t.equal(await exited, 111);
  t.ok(!isAlive(daemon) || isZombie(daemon), 'the daemon has been stopped');
  t.ok(wakeport.logs.some((r) => r.subject === 'daemon' && r.message.startsWith(`stop pid ${daemon} (sleep): a worker left it holding 127.0.0.1:${port}`)));
  const rebound = net.createServer();
  await new Promise<void>((resolve, reject) => rebound.once('error', reject).listen(port, '127.0.0.1', resolve));
  rebound.close();
});

t.test('if the supervisor is killed, the launcher also stops what a wait worker left running in its group', async (t) => {
  const table = `127.0.0.1:0 stream tcp wait - ${fixtures}/leave-transfer.sh leave-transfer\n    label = stray\n    run-at-load = yes\n`;
  const wakeport = await startWakeport(t, table);
  const said = await wakeport.waitForLog((r) => r.subject === 'stray' && r.severity === 'output' && r.message.startsWith('left '));
  const child = Number(said.message.slice('left '.length));
  t.teardown(() => isAlive(child) && process.kill(child, 'SIGKILL')); // Should this test fail: leave nothing behind.
  await wakeport.waitForLog((r) => r.subject === 'stray' && /exited with exitcode 0/.test(r.message));
  process.kill(wakeport.supervisorPid, 'SIGKILL');
  await wakeport.waitForLog((r) => r.message.startsWith('stopping the'));
  await until(() => !isAlive(child) || isZombie(child), 5000);
  t.ok(!isAlive(child) || isZombie(child), 'the child the worker left has been stopped');
});

t.test('a SIGTERM while the supervisor starts: held until it can stop what it starts, then exit 0 and nothing left', async (t) => {
  const workers = Array.from({ length: 4 }, (_, i) => `127.0.0.1:0 stream tcp wait - /bin/sleep sleep 600\n    label = w${i}\n    run-at-load = yes\n`);
  // The launcher warns of the missing program before it binds and starts the supervisor.
  const table = `127.0.0.1:0 stream tcp nowait - ${fixtures}/no-such-program\n    label = missing\n${workers.join('')}`;
  for (const when of ['as soon as it can', 'while the supervisor loads'] as const) {
    const wakeport = await startWakeport(t, table, { until: (r) => /does not exist/.test(r.message) });
    if (when === 'while the supervisor loads') await until(() => childrenOf(wakeport.process.pid!).length > 0, 5000);
    t.same(await wakeport.stop('SIGTERM'), { code: 0, signal: null }, when);
    const started = wakeport.logs.filter((r) => r.message.startsWith('start worker')).map((r) => r.pid as number);
    t.ok(started.every((pid) => !isAlive(pid) || isZombie(pid)), `no worker left (${started.length} started)`);
    t.notOk(wakeport.logs.some((r) => /killed by SIGTERM/.test(r.message) && r.subject === 'wakeport'));
  }
});

/** A launcher reading its table from a FIFO, stuck there until the test writes to `writer` (and closes it). */
async function launcherReadingFifo(t: Test) {
  const dir = t.testdir({});
  const table = path.join(dir, 'services.conf');
  execFileSync('mkfifo', [table]);
  const launcher = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, cli, 'run', '-f', table], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => launcher.kill('SIGKILL')); // Should this test fail: nothing is left running.
  const stderr = readToEnd(launcher.stderr as net.Socket);
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => launcher.once('exit', (code, signal) => resolve(code ?? signal)));
  // A writer's non-blocking open succeeds once a reader waits on the FIFO:
  // then the launcher is reading its table, its signal handlers set.
  let writer: number | null = null;
  const openWriter = () => {
    try {
      writer = openSync(table, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    } catch {
      // ENXIO: nobody reads it yet.
    }
    return writer !== null;
  };
  await until(openWriter, 10_000);
  t.not(writer, null, 'the launcher waits to read its table');
  let open = true;
  /** Writes the table and closes the FIFO: the launcher reads it to its end. */
  const finish = (text: string) => {
    writeSync(writer!, text);
    closeSync(writer!);
    open = false;
  };
  t.teardown(() => open && closeSync(writer!));
  return { launcher, finish, stderr, exited };
}

t.test('a SIGTERM before the launcher has read its table: it does not start, and exits 0', async (t) => {
  const { launcher, finish, stderr, exited } = await launcherReadingFifo(t);
  launcher.kill('SIGTERM');
  finish('127.0.0.1:0 stream tcp nowait - internal echo\n');
  t.equal(await exited, 0);
  t.equal(await stderr, 'wakeport: wakeport: info: SIGTERM during start-up: not starting\n');
});

t.test('a second signal while the launcher is stuck reading its table kills it at once', async (t) => {
  const { launcher, stderr, exited } = await launcherReadingFifo(t);
  launcher.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 200));
  launcher.kill('SIGINT');
  t.equal(await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5000))]), 'SIGINT');
  t.equal(await stderr, 'wakeport: wakeport: info: SIGTERM, then SIGINT, during start-up: not starting, at once\n');
});

t.test('if the supervisor is killed, a worker a reload added gets its own exit-timeout before SIGKILL', async (t) => {
  const wakeport = await startWakeport(t, '127.0.0.1:0 stream tcp nowait - internal echo\n    label = echo\n');
  const marks = `${wakeport.dir}/marks`;
  // Its stderr to a file: the pipe to a dead supervisor would end it with SIGPIPE at its first complaint.
  const added = `127.0.0.1:0 stream tcp wait - ${fixtures}/slow-stop.sh slow-stop ${marks}\n    label = slow\n    run-at-load = yes\n    exit-timeout = 10s\n    stderr = worker.err\n`;
  await writeFile(`${wakeport.dir}/services.conf`, `127.0.0.1:0 stream tcp nowait - internal echo\n    label = echo\n${added}`);
  process.kill(wakeport.process.pid!, 'SIGHUP');
  const worker = (await wakeport.waitForLog((r) => r.subject === 'slow' && r.message.startsWith('start worker'))).pid as number;
  t.teardown(() => isAlive(worker) && process.kill(-worker, 'SIGKILL')); // Should this test fail: leave nothing behind.
  await until(() => existsSync(marks), 5000);
  const exited = new Promise<number | null>((resolve) => wakeport.process.once('exit', (code) => resolve(code)));
  process.kill(wakeport.supervisorPid, 'SIGKILL');
  t.equal(await exited, 111);
  t.equal(readFileSync(marks, 'utf8'), 'ready\nterm\ndone\n', 'it had the second it needed after SIGTERM');
});

t.test('if the launcher dies, the supervisor stops its programs and exits', async (t) => {
  const table = `127.0.0.1:0 stream tcp nowait - ${fixtures}/read-reply.sh\n    label = waiting\n`;
  const wakeport = await startWakeport(t, table);
  const client = net.connect({ port: wakeport.port('waiting'), host: '127.0.0.1' });
  await wakeport.waitForLog((r) => r.message.startsWith('accept client'));
  const [child] = childrenOf(wakeport.supervisorPid);
  await wakeport.stop('SIGKILL');
  for (let i = 0; i < 50 && (isAlive(wakeport.supervisorPid) || isAlive(child!.pid)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.notOk(isAlive(wakeport.supervisorPid), 'the supervisor exited');
  t.notOk(isAlive(child!.pid), 'its program was stopped');
  client.destroy();
});

t.test('a supervisor that cannot be started: one fatal line, exit 111, and the socket files it made are removed', async (t) => {
  const dir = t.testdir({});
  const node = path.join(dir, 'node');
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
  }
  // The table is a FIFO, so that the launcher, already running, reads it only after its node binary is gone.
  const table = path.join(dir, 'services.conf');
  execFileSync('mkfifo', [table]);
  const { NODE_OPTIONS: _options, ...env } = process.env;
  const launcher = spawn(node, [cli, 'run', '-f', table], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  launcher.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
  // Should this test fail: a launcher that somehow started goes, and its supervisor with it.
  t.teardown(() => launcher.kill('SIGKILL'));
  unlinkSync(node);
  // A socket path short enough for sun_path (the test folder's is not).
  const sockets = mkdtempSync(path.join(os.tmpdir(), 'wakeport-'));
  t.teardown(() => rmSync(sockets, { recursive: true, force: true }));
  await writeFile(table, `${sockets}/echo.sock stream unix nowait - internal echo\n`);
  t.equal(await exited, 111);
  t.match(stderr, /^wakeport: wakeport: error: fatal: cannot start the supervisor: spawn .*\/node( \(deleted\))? ENOENT\n$/);
  t.notMatch(stderr, /Unhandled|EPIPE/);
  t.notOk(existsSync(`${sockets}/echo.sock`), 'the socket file is removed');
});

async function listening(server: net.Server): Promise<net.Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
