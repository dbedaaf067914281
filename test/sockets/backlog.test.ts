// A service's backlog is the kernel's for its socket while wakeport runs:
// every process that listens on the inherited socket (nowait hosts, the
// supervisor for internal services, wakeport/worker, the helper that
// closes clients of a failed service) calls listen() again, and Node would
// make it 511.

import { spawnSync } from 'node:child_process';
import t from 'tap';
import { get } from '../helpers/http.js';
import { exchange } from '../helpers/net.js';
import { root, startWakeport } from '../helpers/wakeport.js';

const ss = spawnSync('ss', ['-V']);

/** The backlog of the socket listening on 127.0.0.1:`port`, as `ss` shows it (Send-Q). */
function backlogOf(port: number): number {
  const line = spawnSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
  return Number(line.split(/\s+/)[2]);
}

t.test('the backlog option holds after each kind of service has listened on its socket', { skip: ss.error ? 'ss (iproute2) is not installed' : false }, async (t) => {
  const table = [
    '127.0.0.1:0 stream tcp nowait - /bin/echo echo hi',
    '    label = program',
    '    backlog = 1001',
    '127.0.0.1:0 stream tcp nowait - internal echo',
    '    label = internal',
    '    backlog = 1002',
    `127.0.0.1:0 stream tcp wait - ${root}/dist/services/http-server.js http-server`,
    '    label = worker',
    '    handoff = listen-fds',
    '    listen-pid = no',
    '    backlog = 1003',
    '127.0.0.1:0 stream tcp wait - /bin/false false',
    '    label = failing',
    '    start-limit-burst = 1',
    '    backlog = 1004',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  const port = (label: string) => wakeport.port(label);
  t.equal(String(await exchange(port('program'))), 'hi\n');
  t.equal(String(await exchange(port('internal'), 'x')), 'x');
  t.equal((await get(port('worker'), '/')).status, 200);
  t.equal(String(await exchange(port('failing'))), '', 'the failed service closes its clients');
  await wakeport.waitForLog((r) => r.subject === 'failing' && /closed 1 waiting client/.test(r.message));
  t.same(
    ['program', 'internal', 'worker', 'failing'].map((label) => backlogOf(port(label))),
    [1001, 1002, 1003, 1004],
    'each socket keeps its own backlog, not Node\'s 511',
  );
});
