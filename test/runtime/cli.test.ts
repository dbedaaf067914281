// The command line: check, help, version, usage errors.

import { spawnSync } from 'node:child_process';
import t from 'tap';
import { cli, root } from '../helpers/wakeport.js';

const wakeport = (args: string[], cwd = root) => spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8' });

t.test('check prints the resolved table and exits 0', async (t) => {
  const dir = t.testdir({
    'services.conf': [
      '127.0.0.1:7007 stream tcp nowait - internal echo',
      '[::1]:8080 stream tcp6 nowait.10 - /bin/cat cat -u',
      '    label = cat',
      '127.0.0.1:8081 stream tcp nowait - /bin/sh login-sh -c id',
      '    label = sh',
      '    only-from = 127.0.0.0/8 ::1',
      '    no-access = 127.0.2.0 127.0.0.9',
      '127.0.0.1:8082 stream tcp nowait - /bin/true true',
      '    label = nobody-local',
      '    no-access = 127.0.0.0/8',
    ].join('\n'),
  });
  const result = wakeport(['check', '-f', `${dir}/services.conf`]);
  t.equal(result.status, 0);
  t.equal(result.stderr, '');
  t.equal(
    result.stdout,
    [
      'LABEL               ADDRESS         PROTO  MODE       USER  CLIENTS                                          PROGRAM',
      '127.0.0.1:7007/tcp  127.0.0.1:7007  tcp    internal   -     all                                              internal echo',
      'cat                 [::1]:8080      tcp    nowait.10  -     all                                              /bin/cat -u',
      'sh                  127.0.0.1:8081  tcp    nowait     -     only 127.0.0.0/8,::1 not 127.0.2.0/24,127.0.0.9  /bin/sh (argv0 login-sh) -c id',
      'nobody-local        127.0.0.1:8082  tcp    nowait     -     not 127.0.0.0/8                                  /bin/true',
      '',
    ].join('\n'),
  );
});

t.test('check shows a host name in an access rule with the addresses it was found to have', async (t) => {
  const dir = t.testdir({ 'services.conf': '127.0.0.1:7007 stream tcp nowait - internal echo\n    only-from = localhost 10.0.0.0/8\n' });
  const result = wakeport(['check', '-f', `${dir}/services.conf`]);
  t.equal(result.status, 0);
  // On some machines localhost is ::1 too.
  t.match(result.stdout, /\n127\.0\.0\.1:7007\/tcp +127\.0\.0\.1:7007 +tcp +internal +- +only localhost\(127\.0\.0\.1(,::1)?\),10\.0\.0\.0\/8 +internal echo\n/);
});

t.test('check shows the user a program runs as, with its uid and gid', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const dir = t.testdir({ 'services.conf': '127.0.0.1:8081 stream tcp nowait root.nogroup /bin/true true\n' });
  const result = wakeport(['check', '-f', `${dir}/services.conf`]);
  t.match(result.stdout, /\n127\.0\.0\.1:8081\/tcp +127\.0\.0\.1:8081 +tcp +nowait +root \(0:\d+\) +all +\/bin\/true\n/);
  t.notMatch(result.stdout, /root \(0:0\)/, 'the group given, not root\'s own');
});

t.test('check reports every error as FILE:LINE and exits 1', async (t) => {
  const dir = t.testdir({ 'bad.conf': 'echo strem tcp nowait - internal\n7 stream tcp nowait - internal echo\n    colour = red\n' });
  const result = wakeport(['check', '-f', 'bad.conf'], dir);
  t.equal(result.status, 1);
  t.equal(
    result.stderr,
    'bad.conf:1: unknown socket type "strem" (expected stream or dgram)\n' +
      'bad.conf:3: unknown option "colour" (known: label, listen, name, backlog, env, cwd, stdout, stderr, handoff, listen-pid, exit-timeout, max-connections, max-per-source, rate-window, only-from, no-access, run-at-load, keep-alive, restart, ready, start-timeout, restart-delay, restart-max-delay, start-limit-burst, start-limit-interval, failed-cooldown, watch); an argument of the form key=value goes on the service line\n',
  );
});

t.test('check on a file that does not exist', async (t) => {
  const result = wakeport(['check', '-f', '/no/such/services.conf']);
  t.equal(result.status, 111);
  t.equal(result.stderr, 'wakeport: cannot read the services table /no/such/services.conf: ENOENT (no such file)\n');
  const folder = wakeport(['check', '-f', root]);
  t.equal(folder.stderr, `wakeport: cannot read the services table ${root}: EISDIR (a folder, not a file)\n`);
});

t.test('the default table is valid', async (t) => {
  const result = wakeport(['check']);
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /hello-http\s+127\.0\.0\.1:8081\s+tcp\s+nowait/);
});

t.test('--help, --version and usage errors', async (t) => {
  const help = wakeport(['--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: wakeport run/);
  const version = wakeport(['--version']);
  t.equal(version.stdout, `wakeport ${JSON.parse((await import('node:fs')).readFileSync(`${root}/package.json`, 'utf8')).version}\n`);
  for (const args of [[], ['serve'], ['run', '--log-level', 'loud'], ['run', '--no-such-flag']]) {
    const result = wakeport(args);
    t.equal(result.status, 100, `wakeport ${args.join(' ')} exits 100`);
    t.match(result.stderr, /^wakeport: /);
  }
  const idle = wakeport(['run', '--host-idle', 'soon']);
  t.equal(idle.status, 100);
  t.match(idle.stderr, /--host-idle: "soon" is not a duration \(examples: 500ms, 30s, 2m\)/);
  for (const args of [['--strict'], ['--host-idle', '5s'], ['--log-format', 'json']]) {
    const result = wakeport(['check', ...args, '-f', `${root}/services.conf`]);
    t.equal(result.status, 100, `check ${args.join(' ')} is a usage error, not an option silently ignored`);
    t.match(result.stderr, new RegExp(`^wakeport: ${args[0]} is an option of run, not of check\n`));
  }
});
