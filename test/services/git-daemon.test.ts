// A classic inetd client: Debian's `git daemon --inetd` as a nowait service
// serves a real `git clone git://…`.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startWakeport } from '../helpers/wakeport.js';

const gitDaemon = spawnSync('git', ['daemon', '--help'], { encoding: 'utf8' });
const skip = gitDaemon.error ? 'git is not installed' : false;

t.test('git clone through `git daemon --inetd`', { skip }, async (t) => {
  // Not under .tap/: git daemon refuses paths with a component that starts with a dot.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wakeport-git-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(`${dir}/work`);
  writeFileSync(`${dir}/work/README`, 'served by wakeport\n');
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], { cwd, stdio: 'pipe' });
  git(`${dir}/work`, 'init', '-q', '-b', 'main');
  git(`${dir}/work`, 'add', 'README');
  git(`${dir}/work`, 'commit', '-q', '-m', 'first');
  git(dir, 'clone', '-q', '--bare', 'work', 'repo.git');

  const gitPath = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const table = [
    `127.0.0.1:0 stream tcp nowait - ${gitPath} git daemon --inetd --export-all --base-path=${dir}`,
    '    label = git',
  ].join('\n');
  const wakeport = await startWakeport(t, table);
  git(dir, 'clone', '-q', `git://127.0.0.1:${wakeport.port('git')}/repo.git`, 'clone');
  t.equal(readFileSync(`${dir}/clone/README`, 'utf8'), 'served by wakeport\n');
  const end = await wakeport.waitForLog((r) => r.subject === 'git' && r.message.startsWith('end pid'));
  t.equal(end.exitCode, 0);
});
