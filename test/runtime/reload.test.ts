// SIGHUP to the launcher reloads the table: what was added is bound and
// served, what was removed is closed, what changed is restarted on its
// sockets, and what did not change is left alone, its programs included.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { get } from '../helpers/http.js';
import { connectFrom, exchange, until } from '../helpers/net.js';
import { childrenOf, commandOf, isAlive, isZombie } from '../helpers/proc.js';
import { root, startWakeport, type Wakeport } from '../helpers/wakeport.js';

const httpServer = `${root}/dist/services/http-server.js`;

t.test('SIGHUP: added services are served, removed ones closed, changed ones restarted on their sockets, running programs left to finish', async (t) => {
  // Not under the test folder: a unix socket path is limited to 107 bytes.
  const socketDir = mkdtempSync('/tmp/wakeport-');
  t.teardown(() => rmSync(socketDir, { recursive: true, force: true }));
  const before = [
    '127.0.0.1:0 stream tcp nowait - /bin/echo echo one',
    '    label = greet',
    '127.0.0.1:0 stream tcp nowait - /bin/cat cat',
    '    label = keep',
    '127.0.0.1:0 stream tcp nowait - internal echo',
    '    label = gone',
    `${socketDir}/gone.sock stream unix nowait - /bin/echo echo unix`,
    '    label = gone-unix',
    `127.0.0.1:0 stream tcp wait - ${httpServer} http-server`,
    '    label = web',
    '    handoff = listen-fds',
  ];
  const wakeport = await startWakeport(t, before.join('\n'));
  const ports = Object.fromEntries(['greet', 'keep', 'gone', 'web'].map((label) => [label, wakeport.port(label)]));
  t.equal(String(await exchange(ports.greet!)), 'one\n');
  t.equal((await get(ports.web!, '/')).status, 200);
  const firstWorker = await wakeport.waitForLog((r) => r.subject === 'web' && /^start worker pid \d+/.test(r.message));

  // A client of an unchanged service whose program is running through the reload.
  const held = net.connect({ port: ports.keep!, host: '127.0.0.1' });
  t.teardown(() => held.destroy());
  held.write('before ');
  await new Promise((resolve) => held.once('data', resolve));

  const after = [
    '127.0.0.1:0 stream tcp nowait - /bin/echo echo two',
    '    label = greet',
    '127.0.0.1:0 stream tcp nowait - /bin/cat cat',
    '    label = keep',
    `127.0.0.1:0 stream tcp wait - ${httpServer} http-server`,
    '    label = web',
    '    handoff = listen-fds',
    '    env = CHANGED=yes',
    '127.0.0.1:0 stream tcp nowait - /bin/echo echo new',
    '    label = new',
  ];
  writeFileSync(`${wakeport.dir}/services.conf`, after.join('\n'));
  const hosts = Number(/^started (\d+) nowait hosts$/.exec((await wakeport.waitForLog((r) => /^started \d+ nowait hosts$/.test(r.message))).message)![1]);
  wakeport.process.kill('SIGHUP');
  const summary = await wakeport.waitForLog((r) => r.message.startsWith('reloaded the table'));
  t.equal(summary.message, 'reloaded the table: 1 added, 2 removed, 2 changed, 1 unchanged');
  // The old hosts stop accepting once they hear of it; until then they may take a new client.
  await until(() => wakeport.logs.filter((r) => /^nowait host pid \d+ draining$/.test(r.message)).length >= hosts, 5000);

  t.equal(String(await exchange(ports.greet!)), 'two\n', 'a changed nowait service runs its new program, on the same port');
  const listening = await wakeport.waitForLog((r) => r.subject === 'new' && r.message.startsWith('listening on'));
  t.equal(String(await exchange(listening.port as number)), 'new\n', 'an added service is served');
  const bound = wakeport.logs.find((r) => r.subject === 'new' && r.message.startsWith('bound '));
  t.equal(bound?.message, `bound 127.0.0.1:${listening.port} on try 1`, "its bound line names the port the kernel chose, not the table's port 0");
  t.equal(
    wakeport.logs.find((r) => r.subject === 'gone' && r.message.startsWith('it is no longer'))?.message,
    `it is no longer in the table: stopping it, and closing 127.0.0.1:${ports.gone}`,
    'the log says a removed service is stopped and its address closed',
  );
  t.equal(await connectOutcome(ports.gone!), 'ECONNREFUSED', "a removed service's port is closed");
  t.notOk(existsSync(`${socketDir}/gone.sock`), "a removed unix service's socket file is removed");
  t.equal(String(await exchange(ports.keep!, 'new client')), 'new client', 'an unchanged service is still served');
  held.write('after');
  const echoed = await new Promise<string>((resolve) => held.once('data', (chunk) => resolve(String(chunk))));
  t.equal(echoed, 'after', 'the program its client started before the reload still runs');

  t.equal((await get(ports.web!, '/')).status, 200, 'a changed wait service is served on its socket');
  const secondWorker = await wakeport.waitForLog((r) => r.subject === 'web' && /^start worker pid \d+/.test(r.message) && r !== firstWorker);
  t.not(secondWorker.message, firstWorker.message, 'by a new worker');
  t.equal(wakeport.logs.filter((r) => r.severity === 'error').length, 0, 'nothing went wrong');
});

t.test('a nowait host that dies while it drains after a reload is logged, and its programs are taken over and stopped with wakeport', async (t) => {
  const table = (word: string) => `127.0.0.1:0 stream tcp nowait - /bin/cat cat ${word}\n    label = c\n    exit-timeout = 1s\n`;
  const wakeport = await startWakeport(t, table('-u'));
  const { program, host } = await holdCatClient(t, wakeport);
  reload(wakeport, table('-v'));
  await wakeport.waitForLog((r) => r.message === `nowait host pid ${host} draining`);
  process.kill(host, 'SIGKILL');
  const line = await wakeport.waitForLog((r) => r.severity === 'error' && r.message.startsWith(`nowait host pid ${host} ended`));
  t.match(line.message, /\(SIGKILL\); its 1 program runs on, and will be stopped when wakeport stops/);
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(!isAlive(program) || isZombie(program), 'its program was stopped with wakeport');
});

t.test("a reload leaves the background jobs of nowait programs running; they are stopped when wakeport stops", async (t) => {
  const table = (word: string) =>
    `127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/leave-transfer.sh leave-transfer\n    label = bg\n` +
    `127.0.0.1:0 stream tcp nowait - /bin/echo echo ${word}\n    label = other\n`;
  const wakeport = await startWakeport(t, table('one'));
  await exchange(wakeport.port('bg'));
  const said = await wakeport.waitForLog((r) => r.subject === 'bg' && r.severity === 'output' && r.message.startsWith('left '));
  const job = Number(said.message.slice('left '.length));
  t.teardown(() => isAlive(job) && process.kill(job, 'SIGKILL'));
  await wakeport.waitForLog((r) => r.subject === 'bg' && r.message.startsWith('end pid'));
  reload(wakeport, table('two'));
  const drained = await wakeport.waitForLog((r) => /^nowait host pid \d+ has drained; 1 process group its programs left runs on/.test(r.message));
  t.ok(drained, drained.message);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.ok(isAlive(job) && !isZombie(job), 'the job of the unchanged service runs on after the reload');
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(!isAlive(job) || isZombie(job), 'and is stopped when wakeport stops');
});

t.test("stopping wakeport while an old nowait host drains: the jobs its drained service left get SIGTERM at once, beside its other service's running program, and the host stops them", async (t) => {
  // Both services have limits of their own, so one host serves both.
  const service = (label: string, exitTimeout: string, word: string) =>
    `127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/leave-or-stay.sh leave-or-stay ${word}\n` +
    `    label = ${label}\n    max-connections = 4\n    exit-timeout = ${exitTimeout}\n`;
  const table = (word: string) => service('left', '5s', word) + service('busy', '4s', word);
  const wakeport = await startWakeport(t, table('one'));
  const job = Number(/^left (\d+)/.exec(String(await exchange(wakeport.port('left'), 'go\n')))![1]);
  t.teardown(() => isAlive(job) && process.kill(job, 'SIGKILL'));
  await wakeport.waitForLog((r) => r.subject === 'left' && r.message.startsWith('end pid'));
  const staying = net.connect({ port: wakeport.port('busy'), host: '127.0.0.1' }).on('error', () => {});
  t.teardown(() => staying.destroy());
  staying.write('stay\n');
  await new Promise((resolve) => staying.once('data', resolve));
  reload(wakeport, table('two'));
  await wakeport.waitForLog((r) => /^nowait host pid \d+ draining$/.test(r.message));
  await new Promise((resolve) => setTimeout(resolve, 300)); // Its service "left" has drained; "busy" still serves.
  const stopAt = Date.now();
  t.same(await wakeport.stop(), { code: 0, signal: null });
  const took = Date.now() - stopAt;
  // The job's exit-timeout, then up to a second for it to go (7 s here); after the program's (from the host's end) would be 10 s.
  t.ok(took >= 4900 && took < 8500, `wakeport stopped in ${took} ms: the job's exit-timeout (5 s), counted from the stop`);
  t.ok(!isAlive(job) || isZombie(job), 'the job was killed');
});

// Service "c" (cat), held by a client, beside one whose word a reload changes: the pool is replaced, "c" unchanged.
const catAndEcho = (word: string) => `127.0.0.1:0 stream tcp nowait - /bin/cat cat\n    label = c\n127.0.0.1:0 stream tcp nowait - /bin/echo echo ${word}\n    label = o\n`;

t.test('a new nowait host that dies after a reload does not take over the programs of an old host still draining', async (t) => {
  const wakeport = await startWakeport(t, catAndEcho('one'));
  const { held, host: oldHost } = await holdCatClient(t, wakeport);
  await reloadReplacingHosts(wakeport, catAndEcho('two'));
  t.equal(String(await exchange(wakeport.port('c'), 'new')), 'new', 'the new hosts serve');
  await new Promise((resolve) => setTimeout(resolve, 1200)); // Past the new hosts' first second.
  const newHosts = childrenOf(wakeport.supervisorPid).filter(({ pid }) => pid !== oldHost && commandOf(pid).includes('nowait-host'));
  t.ok(newHosts.length > 0, 'new hosts run');
  for (const { pid } of newHosts) process.kill(pid, 'SIGKILL');
  // The first host's end is logged; the pool's further problems within a minute are counted, not logged.
  const ended = await wakeport.waitForLog((r) => r.severity === 'error' && /^nowait host pid \d+ ended/.test(r.message));
  t.notMatch(ended.message, /program/, `the old host's program is not counted: ${ended.message}`);
  held.write('still ');
  t.equal(String(await new Promise((resolve) => held.once('data', resolve))), 'still ', 'and still serves its client under the old host');
});

t.test('a program taken over from an old nowait host that died while draining is not taken over again when a new host dies', async (t) => {
  const wakeport = await startWakeport(t, catAndEcho('one'));
  const { held, program, host: oldHost } = await holdCatClient(t, wakeport);
  await reloadReplacingHosts(wakeport, catAndEcho('two'));
  t.equal(String(await exchange(wakeport.port('c'), 'new')), 'new', 'new hosts serve');
  process.kill(oldHost, 'SIGKILL');
  const oldEnded = await wakeport.waitForLog((r) => r.severity === 'error' && r.message.startsWith(`nowait host pid ${oldHost} ended`));
  t.match(oldEnded.message, /its 1 program runs on/, 'the old pool takes the program over');
  await new Promise((resolve) => setTimeout(resolve, 1200)); // Past the new hosts' first second.
  const newHosts = childrenOf(wakeport.supervisorPid).filter(({ pid }) => commandOf(pid).includes('nowait-host'));
  t.ok(newHosts.length > 0, 'new hosts run');
  for (const { pid } of newHosts) process.kill(pid, 'SIGKILL');
  const newEnded = await wakeport.waitForLog((r) => r.severity === 'error' && /^nowait host pid \d+ ended/.test(r.message) && !r.message.includes(`pid ${oldHost} `));
  t.notMatch(newEnded.message, /program/, `the new pool does not take it over again: ${newEnded.message}`);
  held.write('still ');
  t.equal(String(await new Promise((resolve) => held.once('data', resolve))), 'still ', 'the program still serves its client');
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(!isAlive(program) || isZombie(program), 'and is stopped with wakeport');
});

t.test("a changed wait service starts again at once, not after what its old worker left (holding none of its sockets) has stopped", async (t) => {
  const table = (program: string) =>
    `127.0.0.1:0 stream tcp wait - ${program}\n    label = changing\n    run-at-load = yes\n    exit-timeout = 20s\n`;
  const wakeport = await startWakeport(t, table(`${root}/test/fixtures/leave-transfer.sh leave-transfer stubborn`));
  const said = await wakeport.waitForLog((r) => r.subject === 'changing' && r.severity === 'output' && r.message.startsWith('left '));
  const child = Number(said.message.slice('left '.length));
  await wakeport.waitForLog((r) => r.subject === 'changing' && /exited with exitcode 0/.test(r.message));
  writeFileSync(`${wakeport.dir}/services.conf`, table(`${root}/test/fixtures/stdio-listener.py stdio-listener`));
  const reloadAt = Date.now();
  const before = wakeport.logs.length;
  wakeport.process.kill('SIGHUP');
  await wakeport.waitForLog((r) => wakeport.logs.indexOf(r) >= before && r.subject === 'changing' && /^start worker pid \d+ \(at load\)$/.test(r.message), 15_000);
  t.ok(Date.now() - reloadAt < 5000, `the new worker started ${Date.now() - reloadAt} ms after the SIGHUP, not after the 20 s exit-timeout`);
  t.ok(isAlive(child) && !isZombie(child), 'the left child, which ignores SIGTERM, is still being stopped');
  const stopped = wakeport.stop('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 300));
  wakeport.process.kill('SIGTERM');
  await stopped;
  await until(() => !isAlive(child) || isZombie(child), 5000);
  t.ok(!isAlive(child) || isZombie(child), 'and a second SIGTERM to wakeport kills it');
});

t.test('a reload whose no-access now covers clients being served: their programs are stopped, group and all, and their waiting connections closed, as xinetd does; the others go on', async (t) => {
  const table = (noAccess: string) =>
    [
      `127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/cat-leaving-child.sh cat-leaving-child`,
      '    label = guarded',
      '    max-connections = 2',
      '    exit-timeout = 1s',
      noAccess && `    no-access = ${noAccess}`,
    ].join('\n');
  const wakeport = await startWakeport(t, table(''));
  const port = wakeport.port('guarded');
  const nextChunk = (socket: net.Socket) => new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(String(chunk))));
  const echo = (socket: net.Socket, text: string) => (socket.write(text), nextChunk(socket));
  const [kept, refused, waiting] = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((address) => connectFrom(address, port)));
  t.teardown(() => [kept, refused, waiting].forEach((socket) => socket!.destroy()));
  const [keptChild, refusedChild] = await Promise.all([kept!, refused!].map(async (socket) => Number(/^left (\d+)/.exec(await nextChunk(socket))![1])));
  waiting!.write('c');
  // The third client waits in the host's queue (max-connections), accepted within a moment of its connect.
  await new Promise((resolve) => setTimeout(resolve, 300));

  await reloadReplacingHosts(wakeport, table('127.0.0.2 127.0.0.3/32'));
  const stop = await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('stop pid'));
  t.match(stop.message, /^stop pid \d+ client 127\.0\.0\.2:\d+: after the reload, its address is in no-access \(127\.0\.0\.2\)$/);
  const closed = await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('closed 1 waiting client'));
  t.match(closed.message, /^closed 1 waiting client the reloaded table refuses \(127\.0\.0\.3:\d+: its address is in no-access \(127\.0\.0\.3\)\)$/);
  await until(() => refused!.closed && waiting!.closed, 5000);
  t.equal(waiting!.bytesRead, 0, 'the waiting client got nothing');
  await until(() => !isAlive(refusedChild) || isZombie(refusedChild), 5000);
  t.ok(isAlive(keptChild) && !isZombie(keptChild), "the other program's group is left alone");
  t.equal(await echo(kept!, 'still'), 'still', 'the program of a client the new rules serve runs on');
  t.equal(String(await exchange(port, '', '127.0.0.1', 5000, '127.0.0.3')), '', 'a new client from a refused address is refused');
  const fresh = await connectFrom('127.0.0.4', port);
  t.teardown(() => fresh.destroy());
  t.match(await nextChunk(fresh), /^left \d+\n$/);
  t.equal(await echo(fresh, 'new'), 'new', 'one from another address is served');
  t.equal(wakeport.logs.filter((r) => r.subject === 'guarded' && r.message.startsWith('stop pid')).length, 1, 'only the refused program was stopped');
});

t.test("a program a reload refuses, the last of its old host: what it left in its group, ignoring SIGTERM, still gets SIGKILL after exit-timeout", async (t) => {
  const table = (noAccess: string) =>
    [`127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/cat-leaving-child.sh cat-leaving-child`, '    label = guarded', '    exit-timeout = 1s', noAccess && `    no-access = ${noAccess}`].join('\n');
  const wakeport = await startWakeport(t, table(''));
  const client = await connectFrom('127.0.0.2', wakeport.port('guarded'));
  t.teardown(() => client.destroy());
  const line = await new Promise<string>((resolve) => client.once('data', (chunk) => resolve(String(chunk))));
  const child = Number(/^left (\d+)/.exec(line)![1]);
  t.teardown(() => void (isAlive(child) && process.kill(child, 'SIGKILL')));
  await reloadReplacingHosts(wakeport, table('127.0.0.2'));
  await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('stop pid'));
  // The old host has nothing else to do: it must not exit before the SIGKILL is due.
  await until(() => !isAlive(child) || isZombie(child), 5000);
  t.ok(!isAlive(child) || isZombie(child), 'the child was killed');
  await until(() => client.closed, 2000);
  t.ok(client.closed, 'and the connection it held closed with it');
});

t.test('a second reload reaches the hosts still draining after the first: a program the first left running is stopped when the second refuses its client', async (t) => {
  const table = (extra: string) => ['127.0.0.1:0 stream tcp nowait - /bin/cat cat', '    label = guarded', '    exit-timeout = 1s', extra].join('\n');
  const wakeport = await startWakeport(t, table(''));
  const client = await connectFrom('127.0.0.2', wakeport.port('guarded'));
  t.teardown(() => client.destroy());
  client.write('a');
  await new Promise((resolve) => client.once('data', resolve));
  await reloadReplacingHosts(wakeport, table('    max-per-source = 5'));
  t.notOk(client.closed, 'the first reload leaves its program running');
  reload(wakeport, table('    max-per-source = 5\n    no-access = 127.0.0.2'));
  const stop = await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('stop pid'));
  t.match(stop.message, /^stop pid \d+ client 127\.0\.0\.2:\d+: after the reload, its address is in no-access \(127\.0\.0\.2\)$/);
  await until(() => client.closed, 5000);
  t.ok(client.closed, 'and its client is let go');
});

t.test('a reload that changes nothing does not signal again a program an earlier reload is stopping', async (t) => {
  const table = [`127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/stubborn.sh stubborn`, '    label = guarded', '    exit-timeout = 2s'].join('\n');
  const wakeport = await startWakeport(t, table);
  const client = await connectFrom('127.0.0.2', wakeport.port('guarded'));
  t.teardown(() => client.destroy());
  await new Promise((resolve) => client.once('data', resolve));
  const refusing = `${table}\n    no-access = 127.0.0.2`;
  await reloadReplacingHosts(wakeport, refusing);
  await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('stop pid'));
  const before = wakeport.logs.length;
  reload(wakeport, refusing);
  await wakeport.waitForLog((r) => wakeport.logs.indexOf(r) >= before && r.message === 'reloaded the table: 0 added, 0 removed, 0 changed, 1 unchanged');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(wakeport.logs.filter((r) => r.subject === 'guarded' && r.message.startsWith('stop pid')).length, 1, 'one stop, one SIGTERM');
  await until(() => client.closed, 5000);
  t.ok(client.closed, 'the program, ignoring SIGTERM, got its SIGKILL after exit-timeout');
});

t.test('an old host that dies while it stops what a refused program left: the supervisor takes the group over and stops it with wakeport', async (t) => {
  const table = (extra: string) => [`127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/cat-leaving-child.sh cat-leaving-child`, '    label = c', '    exit-timeout = 2s', extra].join('\n');
  const wakeport = await startWakeport(t, table(''));
  const { held, program, host } = await holdCatClient(t, wakeport);
  const child = Number(/^left (\d+)/.exec(await new Promise<string>((resolve) => held.once('data', (chunk) => resolve(String(chunk)))))![1]);
  t.teardown(() => void (isAlive(child) && process.kill(child, 'SIGKILL')));
  reload(wakeport, table('    no-access = 127.0.0.1'));
  await wakeport.waitForLog((r) => r.message.startsWith(`stop pid ${program} client 127.0.0.1:`));
  await until(() => !isAlive(program) || isZombie(program), 2000);
  // The host reports its groups at most every 100 ms: it dies after its report of the ended program's group.
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.kill(host, 'SIGKILL');
  await wakeport.waitForLog((r) => r.message.startsWith(`nowait host pid ${host} ended`));
  t.ok(isAlive(child) && !isZombie(child), 'the child, ignoring SIGTERM, outlived the host');
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(!isAlive(child) || isZombie(child), 'and was stopped with wakeport');
});

t.test("stopping wakeport while it stops a program a reload refused: wakeport waits for it, and a second stop kills it at once", async (t) => {
  const table = (extra: string) => [`127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/stubborn.sh stubborn`, '    label = guarded', '    exit-timeout = 30s', extra].join('\n');
  const wakeport = await startWakeport(t, table(''));
  const client = await connectFrom('127.0.0.2', wakeport.port('guarded'));
  t.teardown(() => client.destroy());
  await new Promise((resolve) => client.once('data', resolve));
  await reloadReplacingHosts(wakeport, table('    no-access = 127.0.0.2'));
  const stop = await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('stop pid'));
  const program = Number(/^stop pid (\d+)/.exec(stop.message)![1]);
  t.teardown(() => void (isAlive(program) && process.kill(program, 'SIGKILL')));
  const stopped = wakeport.stop('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.ok(isAlive(program) && !isZombie(program), 'wakeport waits for it (its exit-timeout is 30 s)');
  const killedAt = Date.now();
  wakeport.process.kill('SIGTERM');
  await stopped;
  t.ok(Date.now() - killedAt < 1000, `a second stop ends it, and wakeport, at once (${Date.now() - killedAt} ms)`);
  t.ok(!isAlive(program) || isZombie(program));
});

t.test('a reload that refuses the client of a program that ended, leaving a job in its group that holds the connection: that group is stopped', async (t) => {
  const table = (extra: string) => [`127.0.0.1:0 stream tcp nowait - ${root}/test/fixtures/background-cat.sh background-cat`, '    label = guarded', '    exit-timeout = 1s', extra].join('\n');
  const wakeport = await startWakeport(t, table(''));
  const client = await connectFrom('127.0.0.2', wakeport.port('guarded'));
  t.teardown(() => client.destroy());
  const ended = await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('end pid'));
  t.match(ended.message, /processes it left in its group run on/);
  const program = Number(/^end pid (\d+)/.exec(ended.message)![1]);
  client.write('a');
  t.equal(String(await new Promise((resolve) => client.once('data', resolve))), 'a', 'its job serves the client');
  await reloadReplacingHosts(wakeport, table('    no-access = 127.0.0.2'));
  const stop = await wakeport.waitForLog((r) => r.subject === 'guarded' && r.message.startsWith('stop process group'));
  t.match(stop.message, new RegExp(`^stop process group ${program}, left by a program for client 127\\.0\\.0\\.2:\\d+: after the reload, its address is in no-access \\(127\\.0\\.0\\.2\\)$`));
  await until(() => client.closed, 5000);
  t.ok(client.closed, 'and the connection it held is closed');
});

t.test('SIGHUP with a table that has errors: under --strict the table stays as it was', async (t) => {
  const wakeport = await startWakeport(t, '127.0.0.1:0 stream tcp nowait - /bin/echo echo one\n    label = greet', { args: ['--strict'] });
  const port = wakeport.port('greet');
  reload(wakeport, '127.0.0.1:0 stream tcp nowait - /bin/echo echo two\n    label = greet\nbroken line\n');
  const refused = await wakeport.waitForLog((r) => r.message.includes('has errors and --strict is set'));
  t.match(refused.message, /^SIGHUP: .*services\.conf has errors and --strict is set; the table stays as it was$/);
  const error = wakeport.logs.find((r) => r.severity === 'error' && /services\.conf:3$/.test(r.subject));
  t.match(error?.message, /^a service line needs at least 6 fields/);
  t.notMatch(error?.message, /line skipped/, 'no line is skipped: the whole table is refused');
  t.equal(String(await exchange(port)), 'one\n');
});

t.test('a SIGHUP that comes while wakeport is starting is done once it runs', async (t) => {
  // The launcher logs the line's warning before it starts the supervisor: the SIGHUP goes then.
  const table = '127.0.0.1:0 stream tcp nowait.10 - internal echo\n    label = echo\n';
  const wakeport = await startWakeport(t, table, { until: (r) => r.severity === 'warning' });
  wakeport.process.kill('SIGHUP');
  const summary = await wakeport.waitForLog((r) => r.message.startsWith('reloaded the table'));
  t.equal(summary.message, 'reloaded the table: 0 added, 0 removed, 0 changed, 1 unchanged');
  const order = (prefix: string) => wakeport.logs.findIndex((r) => r.message.startsWith(prefix));
  t.ok(order('SIGHUP: reloading') < order('serving 1 service '), 'the SIGHUP came before the supervisor served');
  t.equal(String(await exchange(wakeport.port('echo'), 'x')), 'x');
});

t.test("a shutdown during a reload's stop of a wait worker waits for that stop: the worker gets its exit-timeout", async (t) => {
  const before = `127.0.0.1:0 stream tcp wait - ${root}/test/fixtures/deaf-worker.sh deaf-worker
    label = slow
    run-at-load = yes
    exit-timeout = 2s
127.0.0.1:0 stream tcp nowait - /bin/echo echo one
    label = greet`;
  const wakeport = await startWakeport(t, before);
  const started = await wakeport.waitForLog((r) => r.subject === 'slow' && /^start worker pid \d+/.test(r.message));
  const worker = Number(/pid (\d+)/.exec(started.message)![1]);
  reload(wakeport, '127.0.0.1:0 stream tcp nowait - /bin/echo echo one\n    label = greet\n');
  await wakeport.waitForLog((r) => r.message.startsWith('reloaded the table'));
  const stopAt = Date.now();
  const stopped = wakeport.stop('SIGTERM');
  await until(() => !isAlive(worker) || isZombie(worker), 10_000);
  const lived = Date.now() - stopAt;
  t.ok(lived >= 1500, `the worker that ignores SIGTERM was killed after its exit-timeout, not at once (${lived} ms)`);
  t.match(await stopped, { code: 0 });
});

t.test('a service whose socket changes on the same address is bound again once its worker has let it go', async (t) => {
  const web = (backlog: number) => `127.0.0.1:${port} stream tcp wait - ${httpServer} http-server\n    label = web\n    handoff = listen-fds\n    backlog = ${backlog}\n`;
  const port = await freePort();
  const wakeport = await startWakeport(t, web(100));
  t.equal((await get(port, '/')).status, 200, 'a worker holds the socket');
  reload(wakeport, web(200));
  const bound = await wakeport.waitForLog((r) => r.subject === 'web' && r.message.startsWith('bound '));
  t.equal(bound.message, `bound 127.0.0.1:${port} on try 1`, 'at the first try: the old worker had exited');
  t.equal((await get(port, '/')).status, 200);
  t.equal(wakeport.logs.filter((r) => r.severity === 'error').length, 0);
});

t.test('a changed nowait service whose outputs cannot be opened is closed and logged, and its pool partner goes on', async (t) => {
  const table = (stderr: string) =>
    `127.0.0.1:0 stream tcp nowait - /bin/echo echo one\n    label = greet\n${stderr}127.0.0.1:0 stream tcp nowait - /bin/echo echo two\n    label = partner\n`;
  const wakeport = await startWakeport(t, table(''));
  const [greet, partner] = [wakeport.port('greet'), wakeport.port('partner')];
  reload(wakeport, table('    stderr = /no/such/folder/err.log\n'));
  const failed = await wakeport.waitForLog((r) => r.subject === 'greet' && r.severity === 'error');
  t.match(failed.message, /^cannot start: cannot open stderr file \/no\/such\/folder\/err\.log: ENOENT; closed 127\.0\.0\.1:\d+, so its clients are refused; the other services go on$/);
  // Once the copies the pool's client watch held are closed too.
  let refused = '';
  for (const start = Date.now(); refused !== 'ECONNREFUSED' && Date.now() - start < 3000; ) refused = await connectOutcome(greet);
  t.equal(refused, 'ECONNREFUSED');
  t.equal(String(await exchange(partner)), 'two\n');
});

t.test("a service bound while a reload waits for a moved service's old worker is not bound again", async (t) => {
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const { port: late } = squatter.address() as net.AddressInfo;
  const slowPort = await freePort();
  const table = (backlog: number) => `127.0.0.1:${slowPort} stream tcp wait - ${root}/test/fixtures/deaf-worker.sh deaf-worker
    label = slow
    run-at-load = yes
    exit-timeout = 5s
    backlog = ${backlog}
127.0.0.1:${late} stream tcp nowait - internal echo
    label = late
`;
  const wakeport = await startWakeport(t, table(100));
  reload(wakeport, table(200));
  await wakeport.waitForLog((r) => r.message.startsWith('reloaded the table'));
  await new Promise((resolve) => squatter.close(resolve));
  await wakeport.waitForLog((r) => r.subject === 'late' && r.message.startsWith('bound '), 10_000);
  // The old worker ignores SIGTERM: its socket is let go after exit-timeout, well after "late" is bound.
  const moved = await wakeport.waitForLog((r) => r.subject === 'slow' && r.message.startsWith('bound '), 15_000);
  t.match(moved.message, /on try 1$/, 'the moved service is bound once its old worker has gone');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(String(await exchange(late, 'x')), 'x');
  const errors = wakeport.logs.filter((r) => r.severity === 'error');
  t.equal(errors.length, 1, `only the failure at start is an error: ${errors.map((r) => r.message).join(' | ')}`);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** 'connected', or the error code of a connect to `port`. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const client = net.connect({ port, host: '127.0.0.1' });
    client.on('connect', () => (client.destroy(), resolve('connected')));
    client.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

/** Writes `table` over wakeport's and has it reloaded. */
function reload(wakeport: Wakeport, table: string): void {
  writeFileSync(`${wakeport.dir}/services.conf`, table);
  wakeport.process.kill('SIGHUP');
}

/**
 * Reloads with `table`, which replaces the nowait pool, and waits until
 * every old host drains: until it hears of the reload, one may still take a
 * new client.
 */
async function reloadReplacingHosts(wakeport: Wakeport, table: string): Promise<void> {
  const started = await wakeport.waitForLog((r) => /^started \d+ nowait hosts$/.test(r.message));
  const hosts = Number(/^started (\d+)/.exec(started.message)![1]);
  reload(wakeport, table);
  await until(() => wakeport.logs.filter((r) => /^nowait host pid \d+ draining$/.test(r.message)).length >= hosts, 5000);
}

/**
 * A client held on service "c" (/bin/cat): its connection, its program, and
 * the host that started it, once the host has reported the program and
 * lasted its first second.
 */
async function holdCatClient(t: Test, wakeport: Wakeport): Promise<{ held: net.Socket; program: number; host: number }> {
  const held = net.connect({ port: wakeport.port('c'), host: '127.0.0.1' }).on('error', () => {});
  t.teardown(() => held.destroy());
  const accept = await wakeport.waitForLog((r) => r.subject === 'c' && r.message.startsWith('accept client'));
  const program = Number(/pid (\d+)$/.exec(accept.message)![1]);
  t.teardown(() => isAlive(program) && process.kill(program, 'SIGKILL'));
  const host = Number(readFileSync(`/proc/${program}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  await new Promise((resolve) => setTimeout(resolve, 1200));
  return { held, program, host };
}
