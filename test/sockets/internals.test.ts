// The Node internals wakeport relies on (src/sockets/internals.ts). If a
// Node upgrade moves them, this fails loudly, before anything else does.

import { fork, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { datagram, hasIpv6, readToEnd, until } from '../helpers/net.js';
import { root } from '../helpers/wakeport.js';
import { inspectFds } from '../../src/sockets/inspect.js';
import {
  checkNowaitInternals,
  processGroupExists,
  rawHandleOf,
  setAccepting,
  spawnDirect,
  takeAccepts,
  type AcceptedConnection,
} from '../../src/sockets/internals.js';

const isSocketFd = (fd: number) => /^socket:\[\d+\]$/.test(readlinkSync(`/proc/self/fd/${fd}`));

t.test('the fd of a listening TCP server', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const fd = rawHandleOf(server).fd;
  t.ok(fd > 2 && isSocketFd(fd), `fd ${fd} is a socket`);
  const { port } = server.address() as net.AddressInfo;
  t.same(inspectFds([fd]).get(fd), { socket: { transport: 'tcp', family: 4, host: '127.0.0.1', port }, listening: true });
});

t.test('the fd of an IPv6 TCP server, read back through /proc', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '::1', ipv6Only: true }, resolve));
  t.teardown(() => server.close());
  const fd = rawHandleOf(server).fd;
  const { port } = server.address() as net.AddressInfo;
  t.same(inspectFds([fd]).get(fd), { socket: { transport: 'tcp', family: 6, host: '::1', port }, listening: true });
});

t.test('the fd of a bound UDP socket, without the deprecated _handle getter', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  const fd = rawHandleOf(socket).fd;
  t.ok(fd > 2 && isSocketFd(fd), `fd ${fd} is a socket`);
  t.same(inspectFds([fd]).get(fd), { socket: { transport: 'udp', family: 4, host: '127.0.0.1', port: socket.address().port }, listening: true });
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  t.same(warnings, [], 'no deprecation warning');
});

t.test('the fd of a unix server whose path holds spaces: the whole path', async (t) => {
  // Not in t.testdir(): its long name would not fit a unix socket's 108 bytes.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wakeport-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'a folder'));
  const file = path.join(dir, 'a folder', 'web socket');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(file, resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const fd = rawHandleOf(server).fd;
  t.same(inspectFds([fd]).get(fd), { socket: { transport: 'unix', path: file }, listening: true });
});

t.test('an fd that is not a socket is inspected as null', async (t) => {
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  t.equal(inspectFds([fd]).get(fd), null);
});

t.test('a server that is not listening has no fd: the error says which internal moved', async (t) => {
  t.throws(() => rawHandleOf(net.createServer()), { code: 'ERR_NODE_INTERNALS', message: /net\.Server\._handle\.fd/ });
});

t.test('a listening socket sent over IPC as its bare handle arrives neither accepting nor reading', async (t) => {
  const holder = fork(`${root}/test/fixtures/raw-handle-holder.mjs`, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => holder.kill('SIGKILL'));
  const next = () => new Promise<Record<string, unknown>>((resolve) => holder.once('message', resolve));

  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  holder.send({ type: 'take' }, rawHandleOf(server) as unknown as net.Server);
  const { fd } = await next();
  t.ok(typeof fd === 'number' && fd > 2, `the holder got fd ${fd}`);
  server.close();
  const client = net.connect({ port, host: '127.0.0.1' });
  t.teardown(() => client.destroy());
  const reply = readToEnd(client);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(client.bytesRead, 0, 'held: the client waits in the backlog, unanswered');
  t.notOk(client.closed);
  holder.send({ type: 'serve', transport: 'tcp' });
  t.equal(await reply, 'held', 'answered once the holder listens on the fd');

  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const udpPort = udp.address().port;
  holder.send({ type: 'take' }, rawHandleOf(udp) as unknown as dgram.Socket);
  await next();
  udp.close();
  const answer = datagram(udpPort, 'queued', 3000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  holder.send({ type: 'serve', transport: 'udp' });
  t.equal(String(await answer), 'held:queued', 'a datagram sent while it was held is read once the holder binds the fd');
});

/** A listening server whose accepts are taken over, and the next connection it gets. */
async function acceptedPair(t: Test, host = '127.0.0.1'): Promise<{ client: net.Socket; connection: AcceptedConnection; port: number }> {
  const server = net.createServer({ pauseOnConnect: true }, () => t.fail('no net.Socket is made'));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<AcceptedConnection>((resolve) => takeAccepts(server, resolve, (code) => t.fail(code)));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect({ port, host });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  return { client, connection: await accepted, port };
}

t.test('taken-over accepts: a connection with its addresses, handed to a process started directly', async (t) => {
  const { client, connection, port } = await acceptedPair(t);
  t.same(connection.peer(), { address: '127.0.0.1', family: 'IPv4', port: client.localPort });
  t.same(connection.local(), { address: '127.0.0.1', family: 'IPv4', port });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    const started = spawnDirect(
      {
        file: '/bin/sh',
        args: ['greeter', '-c', 'read line; echo "$0 $GREETING $line"; exit 3'],
        envPairs: ['GREETING=hello'],
        stdio: [connection.fd, connection.fd, null],
        detached: true,
      },
      (code, signal) => resolve([code, signal]),
    );
    t.ok('pid' in started && started.pid > 0, 'started, with a pid');
  });
  connection.close();
  client.write('world\n');
  t.equal(await readToEnd(client), 'greeter hello world\n', 'argv[0], environment and the connection reached the process');
  t.same(await exited, [3, null], 'exit code, as child_process reports it');
});

t.test('a directly started process killed by a signal, and one that cannot start', async (t) => {
  const signal = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    const started = spawnDirect({ file: '/bin/sh', args: ['sh', '-c', 'kill -TERM $$'], envPairs: [], stdio: [null, null, null], detached: false }, (...how) => resolve(how));
    t.ok('pid' in started);
  });
  t.same(signal, [null, 'SIGTERM']);
  const missing = spawnDirect({ file: '/nonexistent/program', args: ['x'], envPairs: [], stdio: [null, null, null], detached: false }, () => t.fail('never exits'));
  t.same(missing, { errno: 'ENOENT' });
});

t.test('an IPv6 connection, and one made a net.Socket again to answer it', { skip: !hasIpv6() && 'no IPv6 loopback' }, async (t) => {
  const { client, connection } = await acceptedPair(t, '::1');
  t.same(connection.peer(), { address: '::1', family: 'IPv6', port: client.localPort });
  const socket = connection.toSocket();
  socket.end('bye\n');
  t.equal(await readToEnd(client), 'bye\n');
});

t.test("a connection made a net.Socket that reads into the caller's buffer (onread), and still ends", async (t) => {
  const { client, connection } = await acceptedPair(t);
  const buffer = Buffer.alloc(8);
  const reads: string[] = [];
  const socket = connection.toSocket({
    buffer,
    callback: (length, filled) => {
      t.equal(filled.buffer, buffer.buffer, 'the bytes are in the buffer given');
      reads.push(filled.toString('latin1', 0, length));
      return true;
    },
  });
  socket.on('end', () => socket.end('bye\n'));
  socket.on('data', () => t.fail('no data event: the stream gets nothing'));
  client.end('0123456789');
  t.equal(await readToEnd(client), 'bye\n', "the socket ended after the client's end");
  t.equal(reads.join(''), '0123456789', 'every byte went to the callback');
  t.ok(reads.every((read) => read.length <= 8), 'no read is longer than the buffer');
});

/**
 * A TCP and then a unix listening socket, each held by a child running
 * `fixture` with it at fd 3 (this process's copy closed), and how to
 * connect to it. The unix one is abstract: closing this process's server
 * would remove a socket file.
 */
async function* heldListeners(t: Test, fixture: string) {
  for (const where of [{ port: 0, host: '127.0.0.1' }, { path: `\0wakeport-${path.basename(fixture)}-${process.pid}` }]) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(where, resolve));
    const address = server.address();
    const child = spawn(process.execPath, [`${root}/test/fixtures/${fixture}`], { stdio: ['ignore', 'inherit', 'inherit', rawHandleOf(server).fd, 'ipc'] });
    t.teardown(() => child.kill('SIGKILL'));
    server.close();
    const connect = () => net.connect(typeof address === 'string' ? address : { port: address!.port, host: '127.0.0.1' }).on('error', () => {});
    yield { child, address, connect, kind: typeof address === 'string' ? 'unix' : 'TCP' };
  }
}

t.test('a server listening on an inherited fd stops accepting and starts again: clients wait in the backlog meanwhile', async (t) => {
  for await (const { child, connect, kind } of heldListeners(t, 'accept-switch.mjs')) {
    const messages: Record<string, unknown>[] = [];
    child.on('message', (message: Record<string, unknown>) => messages.push(message));
    const heard = (key: string, value: unknown = true) => until(() => messages.some((m) => m[key] === value), 5000);
    const accepted = () => messages.filter((m) => m.accepted).length;
    await heard('listening');

    connect();
    await until(() => accepted() === 1, 5000);
    child.send('pause');
    await heard('done', 'pause');
    const waiting = [connect(), connect()];
    t.teardown(() => waiting.forEach((client) => client.destroy()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.equal(accepted(), 1, `${kind}: paused, the server accepts nobody`);
    child.send('resume');
    await until(() => accepted() === 3, 5000);
    t.pass(`${kind}: started again, it accepts the clients that waited`);
    child.send('pause');
    child.send('pause');
    await until(() => messages.filter((m) => m.done === 'pause').length === 3, 5000);
    const later = connect();
    t.teardown(() => later.destroy());
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.equal(accepted(), 3, `${kind}: paused twice, still paused`);
    child.send('resume');
    await until(() => accepted() === 4, 5000);
  }
});

t.test("the connections waiting in a listening socket's accept queue, read from /proc: TCP ones by address, unix ones by socket", async (t) => {
  for await (const { child, address, connect } of heldListeners(t, 'waiting-connections.mjs')) {
    const read = () => new Promise<string[]>((resolve) => (child.once('message', resolve), child.send('read')));
    t.same(await read(), [], 'nobody waits');
    const clients = [connect(), connect()];
    t.teardown(() => clients.forEach((client) => client.destroy()));
    await Promise.all(clients.map((client) => new Promise((resolve) => client.once('connect', resolve))));
    clients[1]!.end(); // Half-closed while it waits: it waits still.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const waiting = await read();
    t.equal(new Set(waiting).size, 2, 'two clients wait');
    if (typeof address === 'string') {
      // By the kernel's address of each socket where it shows them; else numbered (Node pads an abstract name with NULs, printed "@").
      t.ok(waiting.every((key) => /^[0-9a-f]+:$/.test(key) || new RegExp(`^@wakeport-waiting-connections\\.mjs-${process.pid}@*#[12]$`).test(key)), `unix: ${waiting.join(' ')}`);
      continue;
    }
    const ports = (keys: string[]) => keys.map((key) => parseInt(key.split('>')[1]!.split(':')[1]!, 16)).sort();
    t.same(ports(waiting), clients.map((client) => client.localPort).sort(), "TCP: by the clients' own addresses");
    clients[0]!.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const afterReset = await read();
    t.equal(afterReset.length, 2, 'a client that reset while it waits still counts: it is in the queue, and would be accepted');
    t.ok(afterReset.some((key) => /reset#1$/.test(key)), `numbered, as /proc no longer lists it: ${afterReset.join(' ')}`);
  }
});

t.test('stopping the accepts of a closed server does nothing', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await new Promise((resolve) => server.close(resolve));
  t.doesNotThrow(() => setAccepting(server, false));
});

t.test('taking over the accepts of a server that is not listening says which internal moved', async (t) => {
  t.throws(() => takeAccepts(net.createServer(), () => {}, () => {}), { code: 'ERR_NODE_INTERNALS', message: /net\.Server\._handle\.onconnection/ });
});

t.test('whether a process group still has a member, asked without an exception', async (t) => {
  const child = spawn('/bin/sleep', ['30'], { detached: true, stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise((resolve) => child.once('spawn', resolve));
  t.equal(processGroupExists(child.pid!), true, 'a group with its leader');
  const ownGroup = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[2]);
  t.equal(processGroupExists(ownGroup), true, "this process's own group, as /proc names it");
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  t.equal(processGroupExists(child.pid!), false, 'the group once its only member has gone');
  t.type((process as unknown as { _kill?: unknown })._kill, 'function', 'process._kill is there: without it every check takes the slow way, an exception each');
});

t.test('the start-up check of what nowait hosts use passes on this Node, without a deprecation warning', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  await checkNowaitInternals();
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  t.same(warnings, [], 'process.binding is not one of the bindings Node warns about by default');
});
