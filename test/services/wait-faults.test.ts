// wait services under faults: a worker killed again and again under load, a
// worker that crashes at start, one that exits without accepting, one that
// leaves processes behind, and a graceful restart when files change.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import t, { type Test } from 'tap';
import { get } from '../helpers/http.js';
import { exchange, readToEnd, until } from '../helpers/net.js';
import { childrenOf, commandOf, isAlive, isZombie } from '../helpers/proc.js';
import { root, startWakeport, startWakeportOnOwnNode, type Wakeport } from '../helpers/wakeport.js';

const fixtures = `${root}/test/fixtures`;
const httpServer = `${root}/dist/services/http-server.js`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const python = spawnSync('python3', ['--version']);

/** A folder of its own for a test, removed after it. */
function tempDir(t: Test): string {
  const dir = mkdtempSync(`${os.tmpdir()}/wakeport-test-`);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('SIGKILL the worker ten times under a loop of fresh connections: none refused, at most one failure per kill', async (t) => {
  const table = [
    `127.0.0.1:0 stream tcp wait - ${httpServer} http-server`,
    '    label = web',
    '    handoff = listen-fds',
    '    restart-delay = 20ms',
    '    restart-max-delay = 100ms',
    '    start-limit-burst = 50',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const port = wakeport.port('web');
  const outcomes = { ok: 0, refused: 0, failed: 0 };
  let running = true;
  const client = async () => {
    while (running) {
      try {
        const reply = await get(port);
        if (reply.status === 200) outcomes.ok++;
        else outcomes.failed++;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') outcomes.refused++;
        else outcomes.failed++;
      }
    }
  };
  // One client, one request per connection: at most one request is ever in the worker's hands.
  const clients = [client()];
  const killed = new Set<number>();
  for (let kill = 0; kill < 10; kill++) {
    const started = await wakeport.waitForLog((r) => r.message.startsWith('start worker') && !killed.has(r.pid as number));
    // Kill it once it is serving: 20 more answers after its start.
    const answered = outcomes.ok;
    while (outcomes.ok < answered + 20) await sleep(10);
    killed.add(started.pid as number);
    process.kill(started.pid as number, 'SIGKILL');
  }
  await wakeport.waitForLog((r) => r.message.startsWith('start worker') && !killed.has(r.pid as number));
  await sleep(300);
  running = false;
  await Promise.all(clients);
  t.comment(`requests: ${outcomes.ok} answered, ${outcomes.failed} failed, ${outcomes.refused} refused`);
  t.equal(outcomes.refused, 0, 'no connection refused');
  t.ok(outcomes.failed <= killed.size, `${outcomes.failed} failed requests, at most one per kill (${killed.size})`);
  t.ok(outcomes.ok > 100, 'the service kept answering');
  t.equal(wakeport.logs.filter((r) => /was killed by SIGKILL/.test(r.message)).length, 10);
});

t.test('a worker that crashes at start: back-off, then failed (waiting clients closed), then recovery after the cooldown', async (t) => {
  const marker = `${t.testdirName}/crash`;
  const table = [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/crash-while.sh crash-while ${marker}`,
    '    label = crashy',
    '    handoff = listen-fds',
    '    restart-delay = 50ms',
    '    start-limit-burst = 3',
    '    start-limit-interval = 20s',
    '    failed-cooldown = 1500ms',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  writeFileSync(marker, 'crash while this file exists');
  const port = wakeport.port('crashy');
  const waiting = exchange(port, 'early\n');
  t.equal(String(await waiting), '', 'the waiting client is closed, not left hanging');
  const backoffs = wakeport.logs.filter((r) => /exited with exitcode 1 .*; waiting for clients again in/.test(r.message));
  t.match(backoffs.map((r) => r.message), [/in 50ms \(failure 1 of 3 within 20s\)$/, /in 100ms \(failure 2 of 3 within 20s\)$/], 'exponential back-off');
  await wakeport.waitForLog((r) => r.severity === 'error' && /3 failures within 20s, giving up for 1\.5s; waiting clients are closed until then$/.test(r.message));
  await wakeport.waitForLog((r) => /^closed 1 waiting client: the service has failed$/.test(r.message));
  rmSync(marker);
  await wakeport.waitForLog((r) => r.message === 'cooldown over: trying again', 5000);
  t.equal(String(await exchange(port, 'later\n')), 'got:later\n', 'served again after the cooldown');
});

t.test('watch: a change to the files of a failed service is tried at once, not after the cooldown', async (t) => {
  const dir = tempDir(t);
  const marker = `${dir}/crash`;
  writeFileSync(marker, 'crash while this file exists');
  const table = [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/crash-while.sh crash-while ${marker}`,
    '    label = crashy',
    '    handoff = listen-fds',
    '    restart-delay = 50ms',
    '    start-limit-burst = 2',
    '    failed-cooldown = 60s',
    `    watch = ${dir}`,
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const port = wakeport.port('crashy');
  t.equal(String(await exchange(port, 'early\n')), '', 'failed: the waiting client is closed');
  await wakeport.waitForLog((r) => /2 failures within 1m, giving up for 1m/.test(r.message));
  rmSync(marker); // The fix.
  await wakeport.waitForLog((r) => r.message === 'watched files changed: trying again', 5000);
  t.equal(String(await exchange(port, 'later\n')), 'got:later\n', 'served at once, a minute before the cooldown ends');
});

/** A service "slow" whose worker takes a second to be ready, watching `dir`. */
function slowStartingWatched(dir: string, option: string): string {
  return [
    `127.0.0.1:0 stream tcp wait - ${fixtures}/slow-start.sh slow-start ${httpServer}`,
    '    label = slow',
    '    handoff = listen-fds',
    '    listen-pid = no',
    '    ready = notify',
    option,
    `    watch = ${dir}`,
  ].join('\n');
}

t.test('watch: a change while a worker starts, which then dies, does not replace the next worker (it starts with the change)', async (t) => {
  const dir = tempDir(t);
  const table = slowStartingWatched(dir, '    restart-delay = 50ms');
  const wakeport = await startWakeport(t, table);
  const answer = get(wakeport.port('slow'), '/');
  const first = await wakeport.waitForLog((r) => r.subject === 'slow' && r.severity === 'output' && r.message === 'starting');
  writeFileSync(`${dir}/changed.txt`, 'while it starts');
  await sleep(400); // The change has settled.
  process.kill(-(first.pid as number), 'SIGKILL');
  t.equal((await answer).status, 200, 'the next worker serves the client');
  await sleep(500);
  t.notOk(wakeport.logs.some((r) => r.message.startsWith('watched files changed')), 'and is not replaced');
});

t.test('watch: a change while the replacement starts is a second replacement once that one is ready (found by a reviewer)', async (t) => {
  const dir = tempDir(t);
  const table = slowStartingWatched(dir, '    run-at-load = yes');
  const wakeport = await startWakeport(t, table);
  await wakeport.waitForLog((r) => r.subject === 'slow' && /is ready/.test(r.message), 10_000);
  const replacements = () => wakeport.logs.filter((r) => r.subject === 'slow' && r.message.startsWith('watched files changed: starting a new worker'));
  writeFileSync(`${dir}/version.txt`, 'two');
  await until(() => replacements().length === 1, 5000);
  await sleep(400); // Past the 200 ms that count as one change; the replacement takes a second to start.
  writeFileSync(`${dir}/version.txt`, 'three');
  await until(() => replacements().length === 2, 8000);
  t.equal(replacements().length, 2, 'the second change starts a second replacement');
  const readyLines = () => wakeport.logs.filter((r) => r.subject === 'slow' && /is ready/.test(r.message));
  await until(() => readyLines().length === 3, 8000);
  t.equal((await get(wakeport.port('slow'), '/')).status, 200, 'and the last one serves');
});

t.test('watch: a worker that writes under its own watched folder as it starts is not replaced for ever (found by a reviewer)', async (t) => {
  const dir = tempDir(t);
  const table = [`127.0.0.1:0 stream tcp wait - ${fixtures}/self-writer.sh self-writer ${dir}`, '    label = writer', '    ready = notify', '    run-at-load = yes', `    watch = ${dir}`].join('\n');
  const wakeport = await startWakeport(t, table);
  await wakeport.waitForLog((r) => r.subject === 'writer' && r.message.startsWith('watched files changed again while the new worker started'), 10_000);
  const starts = () => wakeport.logs.filter((r) => r.subject === 'writer' && r.message.startsWith('start worker')).length;
  const settled = starts();
  await sleep(2000);
  t.equal(starts(), settled, `no worker started after the warning (${settled} in all)`);
  t.ok(settled <= 3, 'the first, and at most two replacements');
});

t.test('watch: editing a file under load restarts the worker gracefully, with zero failed requests', async (t) => {
  const dir = t.testdirName;
  const table = [
    `127.0.0.1:0 stream tcp wait - ${httpServer} http-server`,
    '    label = dev',
    '    handoff = listen-fds',
    '    ready = notify',
    `    watch = ${dir}/app`,
  ].join('\n');
  const wakeport = await startWakeport(t, table, { files: { app: { 'version.txt': 'one' } } });
  const port = wakeport.port('dev');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const outcomes = { ok: 0, failed: [] as string[] };
  const pids = new Set<string>();
  let running = true;
  const request = () =>
    new Promise<void>((resolve) => {
      http
        .get({ host: '127.0.0.1', port, agent }, (response) => {
          let body = '';
          response.setEncoding('utf8').on('data', (chunk) => (body += chunk));
          response.on('end', () => {
            pids.add(/pid (\d+)/.exec(body)?.[1] ?? '?');
            outcomes.ok++;
            resolve();
          });
        })
        .on('error', (error) => {
          outcomes.failed.push(error.message);
          resolve();
        });
    });
  const clients = Array.from({ length: 8 }, async () => {
    while (running) await request();
  });
  await wakeport.waitForLog((r) => /is ready/.test(r.message));
  await sleep(500);
  writeFileSync(`${dir}/app/version.txt`, 'two');
  await wakeport.waitForLog((r) => r.message.startsWith('watched files changed'));
  await wakeport.waitForLog((r) => /^worker pid \d+ ended \(/.test(r.message));
  await sleep(500);
  running = false;
  await Promise.all(clients);
  t.comment(`${outcomes.ok} requests, answered by workers ${[...pids].join(', ')}`);
  t.same(outcomes.failed, [], 'no request failed');
  t.equal(pids.size, 2, 'the old worker answered, then the new one');
});

t.test('watch with ready = spawn: each change replaces the worker at once', async (t) => {
  const dir = t.testdirName;
  const table = `127.0.0.1:0 stream tcp wait - ${httpServer} http-server
    label = dev
    handoff = listen-fds
    watch = ${dir}/app`;
  const wakeport = await startWakeport(t, table, { files: { app: { 'version.txt': 'one' } } });
  const port = wakeport.port('dev');
  const workerPid = async () => /pid (\d+)/.exec((await get(port, '/')).body)?.[1];
  const pids = [await workerPid()];
  for (const version of ['two', 'three']) {
    writeFileSync(`${dir}/app/version.txt`, version);
    await wakeport.waitForLog((r) => r.message.startsWith(`worker pid ${pids.at(-1)} ended`));
    pids.push(await workerPid());
  }
  t.equal(new Set(pids).size, 3, `three workers in turn: ${pids.join(', ')}`);
});

t.test('watch: a file replaced by a rename onto it (sed -i, editors, git) is seen every time, watched itself or in a folder', async (t) => {
  for (const watched of ['file', 'folder'] as const) {
    const dir = tempDir(t);
    mkdirSync(`${dir}/app/lib`, { recursive: true });
    const file = `${dir}/app/lib/version.txt`;
    writeFileSync(file, 'one');
    const target = watched === 'file' ? file : `${dir}/app`;
    const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp wait - ${httpServer} http-server\n    label = dev\n    handoff = listen-fds\n    watch = ${target}`);
    const port = wakeport.port('dev');
    const workerPid = async () => /pid (\d+)/.exec((await get(port, '/')).body)?.[1];
    const pids = [await workerPid()];
    for (const version of ['two', 'three', 'four']) {
      writeFileSync(`${file}.new`, version);
      renameSync(`${file}.new`, file);
      await wakeport.waitForLog((r) => r.message.startsWith(`worker pid ${pids.at(-1)} ended`));
      pids.push(await workerPid());
    }
    t.equal(new Set(pids).size, 4, `${watched}: four workers in turn, ${pids.join(', ')}`);
    await wakeport.stop();
  }
});

t.test('watch: a new version that exits before it is ready leaves the running worker, and stopping still ends', async (t) => {
  const dir = t.testdirName;
  const table = `127.0.0.1:0 stream tcp wait - ${fixtures}/crash-while.sh crash-while ${dir}/broken ${fixtures}/helper-worker.mjs
    label = dev
    handoff = listen-fds
    ready = notify
    watch = ${dir}/app`;
  const wakeport = await startWakeport(t, table, { files: { app: { 'version.txt': 'one' } } });
  const port = wakeport.port('dev');
  t.equal((await get(port, '/before')).body, 'helper:/before');
  writeFileSync(`${dir}/broken`, '');
  writeFileSync(`${dir}/app/version.txt`, 'two');
  await wakeport.waitForLog((r) => /^the new worker pid \d+ exited before it was ready; the running worker stays$/.test(r.message));
  t.equal((await get(port, '/after')).body, 'helper:/after', 'the running worker goes on serving');
  const stopped = await Promise.race([wakeport.stop('SIGTERM'), sleep(5000).then(() => 'still running')]);
  t.same(stopped, { code: 0, signal: null }, 'SIGTERM stops wakeport');
});

t.test('a failed service whose client-closing helper cannot start (the node binary gone): logged, and wakeport goes on', async (t) => {
  const table = ['127.0.0.1:0 stream tcp wait - /bin/false false', '    label = failing', '    start-limit-burst = 1', '    failed-cooldown = 1s', '127.0.0.1:0 stream tcp nowait - internal echo', '    label = echo'];
  const { wakeport, removeNode, restoreNode } = await startWakeportOnOwnNode(t, table.join('\n'));
  await wakeport.waitForLog((r) => r.subject === 'failing' && r.message === 'waiting for a client');
  removeNode();
  const waiting = exchange(wakeport.port('failing'), 'hello\n');
  const line = await wakeport.waitForLog((r) => r.subject === 'failing' && r.message.startsWith('cannot close waiting clients'));
  t.match(line.message, /^cannot close waiting clients: spawn .*\/node ENOENT; they wait until the cooldown is over$/);
  t.equal(String(await exchange(wakeport.port('echo'), 'still here')), 'still here', 'the supervisor goes on');
  restoreNode();
  await wakeport.waitForLog((r) => r.subject === 'failing' && r.message === 'cooldown over: trying again', 5000);
  // /bin/false cannot serve it: the client is closed once the service fails again, with the helper back.
  t.equal(String(await waiting), '', 'the waiting client is closed by the next failure, not left hanging');
});

t.test('a client watch that cannot be set up again (the node binary gone) is logged once, not every retry', async (t) => {
  const table = '127.0.0.1:0 stream tcp wait - /bin/sleep sleep 1\n    label = napper';
  const { wakeport, removeNode, restoreNode } = await startWakeportOnOwnNode(t, table);
  const client = net.connect({ port: wakeport.port('napper'), host: '127.0.0.1' });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  await wakeport.waitForLog((r) => r.subject === 'napper' && r.message.startsWith('start worker'));
  removeNode();
  const failed = await wakeport.waitForLog((r) => r.subject === 'napper' && r.message.startsWith('cannot watch for clients'));
  t.match(failed.message, /^cannot watch for clients: spawn .*\/node ENOENT; trying again every 1s, further failures counted, not logged, for 1m$/);
  await sleep(2500);
  t.equal(wakeport.logs.filter((r) => r.message.startsWith('cannot watch for clients')).length, 1, 'the retries are counted, not logged');
  const starts = () => wakeport.logs.filter((r) => r.subject === 'napper' && r.message.startsWith('start worker')).length;
  const before = starts();
  restoreNode();
  await wakeport.waitForLog(() => starts() > before, 5000);
  t.pass('the retries went on: with node back, the waiting client starts the worker again');
});

t.test('a worker that spawn() cannot even try to start (its cwd is a file): logged, backed off, and the other services go on', async (t) => {
  const table = `127.0.0.1:0 stream tcp wait - ${httpServer} http-server
    label = nowhere
    handoff = listen-fds
    cwd = ./not-a-folder
    restart-delay = 50ms
127.0.0.1:0 stream tcp nowait - internal echo
    label = echo`;
  const wakeport = await startWakeport(t, table, { files: { 'not-a-folder': 'a file' } });
  const client = exchange(wakeport.port('nowhere'), 'GET / HTTP/1.0\r\n\r\n', '127.0.0.1', 5000).catch(() => null);
  const line = await wakeport.waitForLog((r) => r.subject === 'nowhere' && r.severity === 'warning');
  t.match(line.message, /^the worker could not start \(.*http-server\.js: ENOTDIR a folder on the program's path or its working directory .*not-a-folder is not a folder\); waiting for clients again in 50ms \(failure 1 of 5 within 1m\)$/);
  t.equal(String(await exchange(wakeport.port('echo'), 'still here')), 'still here', 'the supervisor goes on');
  t.equal(wakeport.process.exitCode, null);
  await client;
});

t.test('a worker that exits 0 at once, leaving its client waiting, counts as a failure: no endless restarts', async (t) => {
  const table = [
    '127.0.0.1:0 stream tcp wait - /bin/true true',
    '    label = quitter',
    '    restart-delay = 50ms',
    '    start-limit-burst = 3',
    '    failed-cooldown = 30s',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  t.equal(String(await exchange(wakeport.port('quitter'), 'hello\n')), '', 'the client is closed once the service has failed');
  const failures = wakeport.logs.filter((r) => r.subject === 'quitter' && /exited with exitcode 0 after \d+ms without accepting a client: the client that was waiting when it started still waits \(a wait worker must accept its clients\)/.test(r.message));
  t.match(failures.map((r) => r.message), [/waiting for clients again in 50ms \(failure 1 of 3 within 1m\)$/, /in 100ms \(failure 2 of 3 within 1m\)$/, /: 3 failures within 1m, giving up for 30s/]);
  t.equal(wakeport.logs.filter((r) => r.subject === 'quitter' && r.message.startsWith('start worker')).length, 4, 'four starts (the first quick exit only notes who waits), no more');
});

t.test('restart = always: a worker that exits 0 at once, leaving its client waiting, fails too, and its client is not left hanging', async (t) => {
  const table = ['127.0.0.1:0 stream tcp wait - /bin/true true', '    label = always', '    restart = always', '    start-limit-burst = 2', '    failed-cooldown = 30s'].join('\n');
  const wakeport = await startWakeport(t, table);
  t.equal(String(await exchange(wakeport.port('always'), 'hello\n')), '', 'the client is closed once the service has failed');
  t.ok(wakeport.logs.some((r) => r.subject === 'always' && /: 2 failures within 1m, giving up for 30s/.test(r.message)));
});

t.test('a worker that accepts one client and exits, with others waiting: each client is served, no failure', { skip: python.error ? 'python3 is not installed' : false }, async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp wait - ${fixtures}/one-shot.py one-shot\n    label = one-shot\n    start-limit-burst = 2`);
  const answers = await Promise.all(Array.from({ length: 8 }, () => exchange(wakeport.port('one-shot'))));
  t.equal(new Set(answers.map((answer) => /^one-shot pid (\d+)\n$/.exec(String(answer))?.[1])).size, 8, 'eight clients, eight workers, one each');
  t.notOk(wakeport.logs.some((r) => r.subject === 'one-shot' && /failure|without accepting/.test(r.message)), 'no exit counted as a failure');
});

const leaveChildTable = (then: 'exit' | 'stay') =>
  [`127.0.0.1:0 stream tcp wait - ${fixtures}/leave-child.sh leave-child ${then}`, '    label = stray', '    run-at-load = yes', '    exit-timeout = 500ms'].join('\n');

t.test('a worker that exits 0 at once counts as a failure too when the client it leaves has reset (it waits in the queue, unlisted)', async (t) => {
  const table = ['127.0.0.1:0 stream tcp wait - /bin/true true', '    label = quitter', '    restart-delay = 50ms', '    start-limit-burst = 2', '    failed-cooldown = 30s'].join('\n');
  const wakeport = await startWakeport(t, table);
  const client = net.connect({ port: wakeport.port('quitter'), host: '127.0.0.1' });
  await new Promise((resolve) => client.once('connect', resolve));
  client.resetAndDestroy();
  await wakeport.waitForLog((r) => r.subject === 'quitter' && /2 failures within 1m, giving up for 30s/.test(r.message), 10_000);
  t.ok(wakeport.logs.filter((r) => r.subject === 'quitter' && r.message.startsWith('start worker')).length <= 4, 'a few starts, not an endless loop');
});

t.test('a one-shot worker on a unix socket, with clients coming as fast as it serves them: no failure', { skip: python.error ? 'python3 is not installed' : false }, async (t) => {
  const dir = tempDir(t);
  const wakeport = await startWakeport(t, `${dir}/one.sock stream unix wait - ${fixtures}/one-shot.py one-shot\n    label = one-shot\n    start-limit-burst = 2`);
  const client = async () => {
    for (let i = 0; i < 4; i++) t.match(await readToEnd(net.connect(`${dir}/one.sock`)), /^one-shot pid \d+\n$/);
  };
  await Promise.all([client(), client(), client()]);
  t.notOk(wakeport.logs.some((r) => r.subject === 'one-shot' && /failure|without accepting/.test(r.message)), 'no exit counted as a failure');
});

t.test('a worker that exits 0 soon after serving, with a new client soon after: no failure, each client served', async (t) => {
  const table = `127.0.0.1:0 stream tcp wait - ${httpServer} http-server --idle-timeout 200ms\n    label = brief\n    handoff = listen-fds\n    ready = notify`;
  const wakeport = await startWakeport(t, table);
  const exits = () => wakeport.logs.filter((r) => r.subject === 'brief' && /exited with/.test(r.message)).length;
  for (let i = 1; i <= 3; i++) {
    const before = exits();
    t.equal((await get(wakeport.port('brief'), `/${i}`)).status, 200);
    // At once after the exit, before wakeport watches for clients again.
    await wakeport.waitForLog(() => exits() > before, 5000);
  }
  t.notOk(wakeport.logs.some((r) => r.subject === 'brief' && /failure|leaving a client waiting/.test(r.message)), 'no exit counted as a failure');
});

/** The pid a leave-child.sh worker says it left. */
async function leftChild(wakeport: Wakeport): Promise<number> {
  const said = await wakeport.waitForLog((r) => r.subject === 'stray' && r.severity === 'output' && r.message.startsWith('left '));
  return Number(said.message.slice('left '.length));
}

const goneOrZombie = (pid: number) => !isAlive(pid) || isZombie(pid);

t.test('what a worker leaves in its process group is stopped when the worker exits: it holds the sockets', async (t) => {
  const wakeport = await startWakeport(t, leaveChildTable('exit'));
  const child = await leftChild(wakeport);
  await wakeport.waitForLog((r) => r.subject === 'stray' && new RegExp(`^worker pid \\d+ has exited, leaving processes in its group that hold its sockets \\(pid ${child}\\): stopping them$`).test(r.message));
  await wakeport.waitForLog((r) => r.subject === 'stray' && /^worker pid \d+ exited with exitcode 0 after .*; waiting for the next client$/.test(r.message), 5000);
  t.ok(goneOrZombie(child), 'the child that ignored SIGTERM was killed once exit-timeout had passed');
});

t.test('stopping wakeport stops what a worker forked into its group, even a child that ignores SIGTERM', async (t) => {
  const wakeport = await startWakeport(t, leaveChildTable('stay'));
  const child = await leftChild(wakeport);
  t.ok(isAlive(child));
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(goneOrZombie(child), 'nothing of the worker outlives wakeport');
});

t.test("what a worker leaves in its group that does not hold its sockets runs on (a tftpd's transfer), and is stopped with wakeport", async (t) => {
  const wakeport = await startWakeport(t, [`127.0.0.1:0 stream tcp wait - ${fixtures}/leave-transfer.sh leave-transfer`, '    label = stray', '    run-at-load = yes'].join('\n'));
  const child = await leftChild(wakeport);
  await wakeport.waitForLog((r) => r.subject === 'stray' && /^worker pid \d+ has exited, leaving processes in its group, none holding its sockets: they run on, and are stopped when the service stops$/.test(r.message));
  await wakeport.waitForLog((r) => r.subject === 'stray' && /^worker pid \d+ exited with exitcode 0 after .*; waiting for the next client$/.test(r.message), 5000);
  await sleep(300);
  t.ok(isAlive(child) && !isZombie(child), 'the child runs on after the worker has ended');
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.ok(goneOrZombie(child), 'and is stopped with wakeport');
});

t.test('a second SIGTERM kills at once what a worker left in its group, though no worker runs', async (t) => {
  const table = [`127.0.0.1:0 stream tcp wait - ${fixtures}/leave-transfer.sh leave-transfer stubborn`, '    label = stray', '    run-at-load = yes', '    exit-timeout = 20s'].join('\n');
  const wakeport = await startWakeport(t, table);
  const child = await leftChild(wakeport);
  await wakeport.waitForLog((r) => r.subject === 'stray' && /exited with exitcode 0/.test(r.message));
  const stopped = wakeport.stop('SIGTERM');
  await sleep(300);
  const secondAt = Date.now();
  wakeport.process.kill('SIGTERM');
  t.same(await stopped, { code: 0, signal: null });
  t.ok(Date.now() - secondAt < 5000, `wakeport ended ${Date.now() - secondAt} ms after the second SIGTERM, not after exit-timeout`);
  t.ok(goneOrZombie(child), 'the child that ignored SIGTERM was killed');
});

t.test('a worker started through a wrapper that does not exec gets one SIGTERM when wakeport stops, and finishes gracefully', async (t) => {
  const dir = tempDir(t);
  const table = [`127.0.0.1:0 stream tcp wait - ${fixtures}/wrapped-graceful.sh wrapped ${dir}/marker`, '    label = wrapped', '    run-at-load = yes', '    exit-timeout = 5s'].join('\n');
  const wakeport = await startWakeport(t, table);
  await wakeport.waitForLog((r) => r.subject === 'wrapped' && r.severity === 'output' && r.message === 'up');
  t.same(await wakeport.stop(), { code: 0, signal: null });
  t.equal(existsSync(`${dir}/marker`) ? readFileSync(`${dir}/marker`, 'utf8') : 'no marker', 'done', 'the child finished its graceful stop');
  t.notOk(wakeport.logs.some((r) => /leaving processes in its group/.test(r.message)), 'no warning about what the worker left: wakeport was stopping its group');
});

t.test('stopping while the client watch is being set up: its helper ends with wakeport, quietly', async (t) => {
  const wakeport = await startWakeport(t, `127.0.0.1:0 stream tcp wait - ${httpServer} http-server\n    label = lazy\n    handoff = listen-fds`);
  const helpers = childrenOf(wakeport.supervisorPid).filter(({ pid }) => commandOf(pid).includes('helper-main'));
  t.ok(helpers.length > 0, 'a socket-copy helper was running');
  await wakeport.stop();
  await until(() => helpers.every(({ pid }) => !isAlive(pid) || isZombie(pid)), 5000);
  t.ok(helpers.every(({ pid }) => !isAlive(pid) || isZombie(pid)), 'no helper outlives wakeport');
  t.same(wakeport.rawStderr.filter((line) => /ERR_IPC_DISCONNECTED|Error/.test(line)), [], 'no stack trace in the log');
});

t.test('a worker program that does not exist: each attempt is one log line that says why, and the client waits through the back-off', async (t) => {
  const table = ['127.0.0.1:0 stream tcp wait - /no/such/worker worker', '    label = absent', '    restart-delay = 100ms', '    start-limit-burst = 3'].join('\n');
  const wakeport = await startWakeport(t, table);
  const client = net.connect({ port: wakeport.port('absent'), host: '127.0.0.1' });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  await wakeport.waitForLog((r) => r.subject === 'absent' && /giving up/.test(r.message));
  const lines = wakeport.logs.filter((r) => r.subject === 'absent' && r.severity !== 'info' && r.severity !== 'debug');
  t.match(
    lines.map((r) => `${r.severity}: ${r.message}`),
    [
      /^warning: the worker could not start \(\/no\/such\/worker: ENOENT .*\); waiting for clients again in 100ms \(failure 1 of 3 within 1m\)$/,
      /^warning: the worker could not start \(\/no\/such\/worker: ENOENT .*\); waiting for clients again in 200ms \(failure 2 of 3 within 1m\)$/,
      /^error: the worker could not start \(\/no\/such\/worker: ENOENT .*\): 3 failures within 1m, giving up for /,
    ],
  );
  t.equal(lines.length, 3, 'nothing else: one line per attempt');
});

for (const [how, mode] of [
  ['forked once', ''],
  ['forked twice, in the group of a process that has gone', 'twice'],
] as const) {
  t.test(`stopping wakeport stops a process a worker left holding its sockets in a session of its own (a daemon, ${how}), so the port is not left bound`, async (t) => {
    const table = [`127.0.0.1:0 stream tcp wait - ${fixtures}/daemonize.sh daemonize ${mode}`, '    label = daemon', '    handoff = listen-fds', '    run-at-load = yes'].join('\n');
    const wakeport = await startWakeport(t, table);
    const said = await wakeport.waitForLog((r) => r.subject === 'daemon' && /daemon \d+$/.test(r.message));
    const daemon = Number(/daemon (\d+)$/.exec(said.message)![1]);
    t.teardown(() => void (isAlive(daemon) && process.kill(daemon, 'SIGKILL')));
    await wakeport.waitForLog((r) => r.subject === 'daemon' && /^worker pid \d+ exited with exitcode 0/.test(r.message));
    t.ok(isAlive(daemon), 'the daemon outlives its worker');
    const port = wakeport.port('daemon');
    t.same(await wakeport.stop(), { code: 0, signal: null });
    t.ok(goneOrZombie(daemon), 'and not wakeport');
    t.ok(
      wakeport.logs.some((r) => r.subject === 'daemon' && r.message.startsWith(`stop pid ${daemon} (sleep): a worker left it holding 127.0.0.1:${port} outside its process group`)),
      'the log says which process was stopped, and why',
    );
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    server.close();
    t.pass('the port is free again');
  });
}

t.test('a second SIGTERM kills at once a daemon a worker left that ignores SIGTERM', async (t) => {
  const table = [`127.0.0.1:0 stream tcp wait - ${fixtures}/daemonize.sh daemonize stubborn`, '    label = daemon', '    handoff = listen-fds', '    run-at-load = yes', '    exit-timeout = 20s'].join('\n');
  const wakeport = await startWakeport(t, table);
  const said = await wakeport.waitForLog((r) => r.subject === 'daemon' && /daemon \d+$/.test(r.message));
  const daemon = Number(/daemon (\d+)$/.exec(said.message)![1]);
  t.teardown(() => void (isAlive(daemon) && process.kill(daemon, 'SIGKILL')));
  await wakeport.waitForLog((r) => r.subject === 'daemon' && /^worker pid \d+ exited with exitcode 0/.test(r.message));
  const stopped = wakeport.stop('SIGTERM');
  await wakeport.waitForLog((r) => r.subject === 'daemon' && r.message.startsWith(`stop pid ${daemon} `));
  const secondAt = Date.now();
  wakeport.process.kill('SIGTERM');
  t.same(await stopped, { code: 0, signal: null });
  t.ok(Date.now() - secondAt < 5000, `wakeport ended ${Date.now() - secondAt} ms after the second SIGTERM, not after exit-timeout`);
  t.ok(goneOrZombie(daemon), 'the daemon was killed');
});
