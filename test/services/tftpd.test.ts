// A classic UDP wait service: Debian's in.tftpd (tftpd-hpa) with the bound
// UDP socket as stdin, started at load and kept alive, serves a file to the
// tftp client (tftp-hpa).

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { startWakeport } from '../helpers/wakeport.js';

const tftpd = '/usr/sbin/in.tftpd';
const tftp = spawnSync('sh', ['-c', 'command -v tftp'], { encoding: 'utf8' }).stdout.trim();
const skip = !existsSync(tftpd)
  ? 'in.tftpd is not installed (Debian: tftpd-hpa)'
  : tftp === ''
    ? 'tftp is not installed (Debian: tftp-hpa)'
    : process.getuid?.() !== 0
      ? 'in.tftpd -s needs root to chroot'
      : false;

t.test('in.tftpd as a dgram udp wait service serves a file to tftp', { skip }, async (t) => {
  const content = `served over TFTP by wakeport ${Date.now()}\n`;
  const table = `127.0.0.1:0 dgram udp wait root ${tftpd} in.tftpd -s ${t.testdirName}/root\n    label = tftp\n`;
  const wakeport = await startWakeport(t, table, { files: { root: { 'hello.txt': content }, got: {} } });
  await wakeport.waitForLog((r) => r.subject === 'tftp' && /^start worker pid \d+ \(at load\)$/.test(r.message));
  const result = spawnSync(tftp, ['127.0.0.1', String(wakeport.port('tftp')), '-c', 'get', 'hello.txt', `${wakeport.dir}/got/hello.txt`], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.equal(result.status, 0, result.stderr);
  t.equal(readFileSync(`${wakeport.dir}/got/hello.txt`, 'utf8'), content);
});
