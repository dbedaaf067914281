// The Node internals wakeport relies on (src/sockets/internals.ts). If a
// Node upgrade moves them, this fails loudly, before anything else does.

import dgram from 'node:dgram';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { inspectFds } from '../../src/sockets/inspect.js';
import { fdOfDgram, fdOfServer } from '../../src/sockets/internals.js';

const isSocketFd = (fd: number) => /^socket:\[\d+\]$/.test(readlinkSync(`/proc/self/fd/${fd}`));

t.test('the fd of a listening TCP server', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const fd = fdOfServer(server);
  t.ok(fd > 2 && isSocketFd(fd), `fd ${fd} is a socket`);
  const { port } = server.address() as net.AddressInfo;
  t.same(inspectFds([fd]).get(fd), { socket: { transport: 'tcp', family: 4, host: '127.0.0.1', port }, listening: true });
});

t.test('the fd of an IPv6 TCP server, read back through /proc', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '::1', ipv6Only: true }, resolve));
  t.teardown(() => server.close());
  const fd = fdOfServer(server);
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
  const fd = fdOfDgram(socket);
  t.ok(fd > 2 && isSocketFd(fd), `fd ${fd} is a socket`);
  t.same(inspectFds([fd]).get(fd), { socket: { transport: 'udp', family: 4, host: '127.0.0.1', port: socket.address().port }, listening: true });
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  t.same(warnings, [], 'no deprecation warning');
});

t.test('an fd that is not a socket is inspected as null', async (t) => {
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  t.equal(inspectFds([fd]).get(fd), null);
});

t.test('a server that is not listening has no fd: the error says which internal moved', async (t) => {
  t.throws(() => fdOfServer(net.createServer()), { code: 'ERR_NODE_INTERNALS', message: /net\.Server\._handle\.fd/ });
});
