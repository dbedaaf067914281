// The services table: classic inetd.conf lines, extended options, and the
// exact error for each kind of broken line (FILE:LINE: what is wrong).

import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { formatProblem } from '../../src/errors.js';
import { parseTable } from '../../src/config/table.js';

const parse = (text: string) => parseTable('services.conf', text);

t.test('classic inetd.conf lines', async (t) => {
  const table = await parse(
    [
      '# comment',
      'echo    stream  tcp   nowait  root  internal',
      'echo    dgram   udp   wait    root  internal',
      'daytime stream  tcp6  nowait  root  internal',
      '127.0.0.1:',
      '8080    stream  tcp   nowait.50  -  /bin/cat  cat -u',
      '[::1]:chargen stream tcp nowait - internal',
      '*:',
      '7777    stream  tcp   nowait  -  /bin/cat',
      '/tmp/wakeport-test.sock stream unix nowait - internal echo',
    ].join('\n'),
  );
  const root = process.getuid?.() === 0;
  t.same(table.problems.filter((p) => p.severity === 'error').map(formatProblem), root ? [] : table.problems.map(formatProblem));
  if (!root) return;
  const [echoTcp, echoUdp, daytime, cat, chargen, bare, unix] = table.entries;
  t.match(echoTcp, { label: 'echo/tcp', transport: 'tcp', sockets: [{ spec: { transport: 'tcp', host: '0.0.0.0', family: 4, port: 7 } }], program: { kind: 'internal', name: 'echo' } });
  t.match(echoUdp, { label: 'echo/udp', transport: 'udp', sockets: [{ spec: { transport: 'udp', port: 7 } }], mode: 'wait' });
  t.match(daytime, { sockets: [{ spec: { host: '::', family: 6, port: 13 } }] });
  t.match(cat, {
    label: '127.0.0.1:8080/tcp',
    sockets: [{ spec: { host: '127.0.0.1', port: 8080 } }],
    maxSpawns: 50,
    program: { kind: 'exec', path: '/bin/cat', argv0: 'cat', args: ['-u'] },
    maxConnections: null,
    exitTimeoutMs: 20_000,
  });
  t.match(chargen, { sockets: [{ spec: { host: '::1', family: 6, port: 19 } }] });
  t.match(bare, { sockets: [{ spec: { host: '0.0.0.0', port: 7777 } }], program: { argv0: 'cat', args: [] } }, 'argv0 defaults to the basename');
  t.match(unix, { transport: 'unix', sockets: [{ spec: { transport: 'unix', path: '/tmp/wakeport-test.sock' } }], program: { name: 'echo' } });
});

t.test('extended options', async (t) => {
  const table = await parse(
    [
      '127.0.0.1:8080  stream  tcp  nowait  -  /usr/bin/env  env',
      '    label        = env-dump',
      '    env          = GREETING=hello',
      '    env          = EMPTY=',
      '    cwd          = /tmp',
      '    stderr       = test/env-dump.log',
      '    max-connections = 3',
      '    max-per-source  = 1',
      '    exit-timeout = 500ms',
      '    backlog      = 16',
      '    rate-window  = 2m',
      '    only-from    = 127.0.0.0/8, ::1',
      '    only-from    = 10.0.0.0/8, 192.0.2.255/32, 2001:DB8:0:0:8000::/65, ::1.2.3.0/120',
      '    no-access    = 127.0.0.2 fe80::/10 10.1.0.0 0.0.0.0',
    ].join('\n'),
  );
  t.same(table.problems, []);
  t.match(table.entries[0], {
    label: 'env-dump',
    env: [['GREETING', 'hello'], ['EMPTY', '']],
    cwd: '/tmp',
    stderr: { kind: 'file', path: `${process.cwd()}/test/env-dump.log` },
    stdout: { kind: 'default' },
    maxConnections: 3,
    maxPerSource: 1,
    exitTimeoutMs: 500,
    backlog: 16,
    rateWindowMs: 120_000,
    access: {
      onlyFrom: [
        { address: '127.0.0.0', family: 4, prefix: 8 },
        { address: '::1', family: 6, prefix: 128 },
        { address: '10.0.0.0', family: 4, prefix: 8 },
        { address: '192.0.2.255', family: 4, prefix: 32 },
        { address: '2001:DB8:0:0:8000::', family: 6, prefix: 65 },
        { address: '::1.2.3.0', family: 6, prefix: 120 },
      ],
      noAccess: [
        { address: '127.0.0.2', family: 4, prefix: 32 },
        { address: 'fe80::', family: 6, prefix: 10 },
        { address: '10.1.0.0', family: 4, prefix: 16 },
        { address: '0.0.0.0', family: 4, prefix: 0 },
      ],
    },
  });
  t.same((await parse('8080 stream tcp nowait - /bin/cat')).entries[0]?.access, { onlyFrom: null, noAccess: [] }, 'by default every address is served');
  const named = (await parse('8080 stream tcp nowait - /bin/cat\n    only-from = localhost, 10.0.0.0/8')).entries[0]?.access.onlyFrom ?? [];
  t.ok(named.some((rule) => rule.address === '127.0.0.1' && rule.prefix === 32 && rule.from === 'localhost'), 'a host name stands for its addresses, looked up at load');
  t.same(named.at(-1), { address: '10.0.0.0', family: 4, prefix: 8 });
});

// Each kind of broken line, and the exact error it gets.
const knownOptions =
  'label, listen, name, backlog, env, cwd, stdout, stderr, handoff, listen-pid, exit-timeout, max-connections, max-per-source, rate-window, only-from, no-access, ' +
  'run-at-load, keep-alive, restart, ready, start-timeout, restart-delay, restart-max-delay, start-limit-burst, start-limit-interval, failed-cooldown, watch';
const broken: [string, string][] = [
  ['echo stream tcp nowait', 'services.conf:1: a service line needs at least 6 fields (service socket-type protocol wait user program), found 4'],
  ['echo strem tcp nowait - internal', 'services.conf:1: unknown socket type "strem" (expected stream or dgram)'],
  ['echo raw tcp nowait - internal', 'services.conf:1: socket type "raw" is not supported (wakeport serves stream and dgram)'],
  ['echo stream tcpx nowait - internal', 'services.conf:1: unknown protocol "tcpx" (expected one of tcp, tcp4, tcp6, udp, udp4, udp6, unix)'],
  ['echo stream udp nowait - internal', 'services.conf:1: socket type stream needs protocol tcp, tcp4, tcp6 or unix, not udp'],
  ['echo dgram tcp wait - internal', 'services.conf:1: socket type dgram needs protocol udp, udp4 or udp6, not tcp'],
  ['/tmp/x.sock dgram unix wait - internal echo', 'services.conf:1: unix dgram sockets are not supported (Node has no AF_UNIX datagram sockets)'],
  ['echo stream tcp sometimes - internal', 'services.conf:1: "sometimes" is neither wait nor nowait (optionally with .max, as in nowait.100, or FreeBSD\'s nowait/max-child[/per-minute[/per-ip]])'],
  ['echo stream tcp nowait.0 - internal', 'services.conf:1: "nowait.0": the spawn limit after the dot must be at least 1'],
  ['8080 stream tcp nowait.99999999999999999999 - /bin/cat', 'services.conf:1: "nowait.99999999999999999999": the spawn limit after the dot is at most 2147483647'],
  ['echo stream tcp nowait/10/5 - internal', 'services.conf:1: "nowait/10/5": a limit of connections per minute from one address (the second number) has no equivalent in wakeport: write 0 there'],
  ['echo stream tcp nowait/20000 - internal', 'services.conf:1: "nowait/20000": max-child 20000 is more than 16384'],
  ['8080 stream tcp nowait/10 - /bin/cat\n    max-connections = 5', 'services.conf:2: option "max-connections" is set on the service line already ("nowait/10"): keep one'],
  ['8080 stream tcp nowait nobody/daemon /bin/cat', 'services.conf:1: "nobody/daemon": login classes ("/daemon") are a BSD feature Linux has not: write nobody'],
  ['127.0.0.1:1 stream tcp nowait root internal tcpmux', 'services.conf:1: "tcpmux": TCPMUX (RFC 1078) is not provided (internal services: echo, discard, chargen, daytime, time)'],
  ['127.0.0.1:113 stream tcp nowait root internal auth -r', 'services.conf:1: "auth": the ident (auth) built-in is not provided (internal services: echo, discard, chargen, daytime, time)'],
  ['tcpmux/+date stream tcp nowait root /bin/date date', 'services.conf:1: "tcpmux/+date": TCPMUX (RFC 1078) is not provided: TCPMUX services cannot be served'],
  [':::9:/tmp/x.sock stream unix nowait - internal echo', 'services.conf:1: ":::9:/tmp/x.sock": mode "9" is not a file mode (three octal digits, as 660)'],
  [':nosuchuser::660:/tmp/x.sock stream unix nowait - internal echo', 'services.conf:1: unknown user "nosuchuser"'],
  ['8080 stream tcp46 nowait - /bin/cat', 'services.conf:1: "tcp46" (FreeBSD: IPv4 and IPv6 on one socket) is not supported: write two lines, one tcp and one tcp6'],
  ['8080 stream tcp nowait - /bin/cat\n    backlog = 5\n    8081 stream tcp nowait - /bin/cat', 'services.conf:3: indented line is not an option of the form "key = value": "8081 stream tcp nowait - /bin/cat" (a service line starts at the beginning of its line)'],
  ['nosuchservice stream tcp nowait - internal echo', 'services.conf:1: unknown service "nosuchservice" for tcp (not in /etc/services; write a port number)'],
  ['70000 stream tcp nowait - internal echo', 'services.conf:1: port 70000 is out of range (0–65535)'],
  ['8080 stream tcp nowait - internal', 'services.conf:1: "8080" is not an internal service (echo, discard, chargen, daytime, time); name one after "internal"'],
  ['8080 stream tcp nowait - internal qotd', 'services.conf:1: unknown internal service "qotd" (expected one of echo, discard, chargen, daytime, time)'],
  ['8080 stream tcp nowait - bin/cat', 'services.conf:1: program "bin/cat" must be an absolute path, a path starting with ./ or ../ (from this file\'s folder), or internal'],
  ['8080 dgram udp nowait - /bin/cat', 'services.conf:1: a dgram service with a program must be "wait": a datagram socket has no connections to hand out one at a time'],
  ['8080 stream tcp nowait nosuchuser /bin/cat', 'services.conf:1: unknown user "nosuchuser"'],
  ['8080 stream tcp nowait first.last /bin/cat', 'services.conf:1: unknown user "first" (read as user.group; for a user whose name has a dot, write first.last:GROUP)'],
  ['8080 stream tcp nowait a:b:c /bin/cat', 'services.conf:1: "a:b:c" is not a user field (expected user, user:group, user.group or -)'],
  ['[::1]:8080 stream tcp4 nowait - /bin/cat', 'services.conf:1: ::1 is an IPv6 address, but the protocol asks for IPv4'],
  ['::1:8080 stream tcp6 nowait - /bin/cat', 'services.conf:1: "::1:8080": write an IPv6 address in brackets, as [::1]:8080'],
  ['no.such.host.invalid:8080 stream tcp nowait - /bin/cat', 'services.conf:1: cannot resolve host "no.such.host.invalid" to an IPv4 address (ENOTFOUND)'],
  ['rpcbind/1 stream rpc/tcp nowait - /bin/cat', 'services.conf:1: RPC services ("rpc/tcp") are not supported'],
  ['echo stream tcp,sndbuf=8192 nowait - internal', 'services.conf:1: socket buffer sizes ("tcp,sndbuf=8192") are not supported: write tcp alone'],
  ['127.0.0.1:-1 stream tcp nowait - internal echo', 'services.conf:1: port -1 is out of range (0–65535)'],
  ['[::ffff:127.0.0.1]:7 stream tcp nowait - internal echo', 'services.conf:1: ::ffff:127.0.0.1 is an IPv4-mapped address, which an IPv6-only socket cannot bind: write 127.0.0.1'],
  ['[0:0:0:0:0:ffff:a00:1]:7 dgram udp6 wait - internal echo', 'services.conf:1: 0:0:0:0:0:ffff:a00:1 is an IPv4-mapped address, which an IPv6-only socket cannot bind: write 10.0.0.1'],
  ['8080 stream tcp nowait - /bin/cat\n    colour = blue', `services.conf:2: unknown option "colour" (known: ${knownOptions}); an argument of the form key=value goes on the service line`],
  ['echo stream constructor nowait - internal', 'services.conf:1: unknown protocol "constructor" (expected one of tcp, tcp4, tcp6, udp, udp4, udp6, unix)'],
  ['8080 stream tcp nowait - /bin/cat\n    toString = 1', `services.conf:2: unknown option "toString" (known: ${knownOptions}); an argument of the form key=value goes on the service line`],
  ['8080 stream tcp wait - /bin/cat\n    start-timeout = 1000h', 'services.conf:2: option "start-timeout": "1000h" is longer than a timer can wait (at most 596h)'],
  ['8080 stream tcp nowait - /bin/cat\n    exit-timeout = soon', 'services.conf:2: option "exit-timeout": "soon" is not a duration (examples: 500ms, 30s, 2m)'],
  ['8080 stream tcp nowait - /bin/cat\n    max-connections = 0', 'services.conf:2: option "max-connections": expected a whole number from 1 to 16384, got 0'],
  ['8080 stream tcp nowait - /bin/cat\n    env = 1X=y', 'services.conf:2: option "env": "1X=y" is not of the form NAME=value'],
  ['8080 stream tcp nowait - /bin/cat\n    label = a b', 'services.conf:2: option "label": "a b" is not a label (letters, digits and _ . : @ / [ ] - only)'],
  ['8080 stream tcp nowait - /bin/cat\n    backlog = 5\n    just some words', 'services.conf:3: indented line is not an option of the form "key = value": "just some words"'],
  ['8080 stream tcp nowait - /bin/cat\n# 8081 stream tcp nowait - /bin/cat\n    backlog = 5', 'services.conf:3: option "backlog" is not directly under a service line'],
  ['8080 stream tcp nowait 2147483648 /bin/cat', 'services.conf:1: uid 2147483648 is out of range (0 to 2147483647: Node cannot start a program as a larger one)'],
  ['8080 stream tcp nowait root:99999999999 /bin/cat', 'services.conf:1: gid 99999999999 is out of range (0 to 2147483647: Node cannot start a program as a larger one)'],
  ['8080 stream tcp nowait - /bin/cat\n    backlog = 5\n    only-from = no.such.host.invalid', 'services.conf:3: option "only-from": cannot resolve host "no.such.host.invalid" (ENOTFOUND)'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = 10.0.0.{1,2}', 'services.conf:2: option "no-access": "10.0.0.{1,2}": xinetd\'s {a,b} form is not read here: write each address, or a network (10.0.0.0/24)'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = 0x7f.1', 'services.conf:2: option "only-from": "0x7f.1" is not an address, a network or a host name (as 10.0.0.0/8, ::1 or localhost)'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = 0x7f000001', 'services.conf:2: option "only-from": "0x7f000001" is not an address, a network or a host name (as 10.0.0.0/8, ::1 or localhost)'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = 0.0.0.0x1', 'services.conf:2: option "no-access": "0.0.0.0x1" is not an address, a network or a host name (as 10.0.0.0/8, ::1 or localhost)'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = 10.0.0.256', 'services.conf:2: option "no-access": "10.0.0.256" is not an address, a network or a host name (as 10.0.0.0/8, ::1 or localhost)'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = 10.0.0.0/33', 'services.conf:2: option "only-from": "10.0.0.0/33": the prefix length of an IPv4 network is 0 to 32'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = 10.1.2.3/016', 'services.conf:2: option "only-from": "10.1.2.3/016" has bits set past its /16 prefix: write 10.1.0.0/16 for that network, or the address alone'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = ::ffff:10.0.0.1/200', 'services.conf:2: option "only-from": "::ffff:10.0.0.1/200": the prefix length of an IPv6 network is 0 to 128'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = 10.1.2.3/16', 'services.conf:2: option "only-from": "10.1.2.3/16" has bits set past its /16 prefix: write 10.1.0.0/16 for that network, or the address alone'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = 2001:db8::1:0:0:1/64', 'services.conf:2: option "no-access": "2001:db8::1:0:0:1/64" has bits set past its /64 prefix: write 2001:db8::/64 for that network, or the address alone'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = ::1.2.3.4/100', 'services.conf:2: option "no-access": "::1.2.3.4/100" has bits set past its /100 prefix: write ::/100 for that network, or the address alone'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = 10.0.0.1/8/8', 'services.conf:2: option "no-access": "10.0.0.1/8/8" is not an address, a network or a host name (as 10.0.0.0/8, ::1 or localhost)'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = fe80::1%eth0', 'services.conf:2: option "no-access": "fe80::1%eth0": a rule cannot name a zone (%eth0)'],
  ['8080 stream tcp nowait - /bin/cat\n    only-from = ::ffff:10.0.0.1', 'services.conf:2: option "only-from": "::ffff:10.0.0.1" is an IPv4-mapped address: write the IPv4 address or network (IPv4 rules cover IPv4 clients on dual-stack sockets too)'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = ::ffff:7f00:0/104', 'services.conf:2: option "no-access": "::ffff:7f00:0/104" is an IPv4-mapped address: write the IPv4 address or network (IPv4 rules cover IPv4 clients on dual-stack sockets too)'],
  ['8080 stream tcp nowait - /bin/cat\n    no-access = 0:0:0:0:0:ffff:127.0.0.1', 'services.conf:2: option "no-access": "0:0:0:0:0:ffff:127.0.0.1" is an IPv4-mapped address: write the IPv4 address or network (IPv4 rules cover IPv4 clients on dual-stack sockets too)'],
  ['8080 stream tcp wait - /bin/cat\n    no-access = 10.0.0.1', 'services.conf:2: option "no-access" does not apply to wait services (only to nowait and internal services)'],
  ['/tmp/x.sock stream unix nowait - internal echo\n    only-from = 127.0.0.1', 'services.conf:2: option "only-from" does not apply to a unix socket: its clients have no address (use the socket file\'s owner and mode)'],
  ['8080 stream tcp nowait - /bin/cat\n    rate-window = 0', 'services.conf:2: option "rate-window": "0" is no time at all (at least 1ms)'],
  ['8080 stream tcp nowait - /bin/cat\n    backlog = 5\n    backlog = 6', 'services.conf:3: option "backlog" is already set on line 2'],
  ['8080 stream tcp nowait - internal echo\n    env = A=b', 'services.conf:2: option "env" does not apply to internal services (only to services with a program)'],
  ['    backlog = 5', 'services.conf:1: option "backlog" is not directly under a service line'],
  ['8080 stream tcp wait - /bin/cat\n    max-connections = 5', 'services.conf:2: option "max-connections" does not apply to wait services (only to nowait and internal services)'],
  ['8080 stream tcp nowait - /bin/cat\n    ready = notify', 'services.conf:2: option "ready" does not apply to nowait services (only to wait services with a program)'],
  ['8080 stream tcp wait - /bin/cat\n    ready = maybe', 'services.conf:2: option "ready": expected spawn or notify, got "maybe"'],
  ['8080 stream tcp wait - /bin/cat\n    listen = 8081', 'services.conf:2: handoff = stdio passes one socket, as fd 0 and 1; use handoff = listen-fds for 2 sockets, or a list of hosts in the service field (one service per address)'],
  ['127.0.0.1,[::1]:69 dgram udp wait - /bin/cat\n    label = tftp', 'services.conf:2: label = tftp names one service, but a wait service handed its socket as stdin serves each address of the list on its own: remove the label (each gets its address as label), or use handoff = listen-fds'],
  ['127.0.0.1,[::1]:69 dgram udp wait - /bin/cat\n    listen = 127.0.0.2:69', 'services.conf:2: handoff = stdio passes one socket, as fd 0 and 1; use handoff = listen-fds for 3 sockets, or a list of hosts in the service field (one service per address)'],
  [',[::1]:', 'services.conf:1: host line ",[::1]:": an empty address in the list of hosts'],
  ['127.0.0.1,::1:', 'services.conf:1: host line "127.0.0.1,::1:": write an IPv6 address in brackets, as 127.0.0.1,[::1]:'],
  ['127.0.0.1,[::1:', 'services.conf:1: host line "127.0.0.1,[::1:": "[::1" is not of the form [v6addr]'],
  ['8080 stream tcp wait - /bin/cat\n    handoff = listen-fds\n    listen = 127.0.0.2, [::1]:8081', 'services.conf:3: option "listen": "127.0.0.2, [::1]:8081": write a list of hosts without spaces, as 127.0.0.1,[::1]:8081'],
  ['127.0.0.1, [::1]:8080 stream tcp nowait - /bin/cat', 'services.conf:1: "127.0.0.1," ends with a comma: write a list of hosts without spaces, as 127.0.0.1,[::1]:echo'],
  ['127.0.0.1,*:8080 stream tcp nowait - /bin/cat', 'services.conf:1: 0.0.0.0:8080/tcp overlaps 127.0.0.1:8080/tcp in the same list of hosts (an address twice, or a wildcard beside an address)'],
  ['[::1%lo],[::1]:8080 stream tcp nowait - /bin/cat', 'services.conf:1: [::1]:8080/tcp overlaps [::1]:8080/tcp in the same list of hosts (an address twice, or a wildcard beside an address)'],
  ['127.0.0.1,,[::1]:8080 stream tcp nowait - /bin/cat', 'services.conf:1: "127.0.0.1,,[::1]:8080": an empty address in the list of hosts'],
  ['127.0.0.1,::1:8080 stream tcp nowait - /bin/cat', 'services.conf:1: "127.0.0.1,::1:8080": write an IPv6 address in brackets, as 127.0.0.1,[::1]:8080'],
  ['127.0.0.1,[::1:8080 stream tcp nowait - /bin/cat', 'services.conf:1: "127.0.0.1,[::1:8080": "[::1" is not of the form [v6addr]'],
  ['127.0.0.1,[::1]:8080 stream tcp4 nowait - /bin/cat', 'services.conf:1: ::1 is an IPv6 address, but the protocol asks for IPv4'],
  ['127.0.0.1,127.0.0.1:8080 stream tcp nowait - /bin/cat', 'services.conf:1: 127.0.0.1:8080/tcp overlaps 127.0.0.1:8080/tcp in the same list of hosts (an address twice, or a wildcard beside an address)'],
  ['8080 stream tcp wait - /bin/cat\n    listen-pid = no', 'services.conf:2: listen-pid applies to handoff = listen-fds only'],
  ['8080 stream tcp wait - /bin/cat\n    handoff = listen-fds\n    listen-pid = maybe', 'services.conf:3: option "listen-pid": expected yes or no, got "maybe"'],
  ['8080 stream tcp wait - /bin/cat\n    handoff = listen-fds\n    listen = 127.0.0.1:nosuch', 'services.conf:3: option "listen": unknown service "nosuch" for tcp (not in /etc/services; write a port number)'],
  ['8080 stream tcp wait - /bin/cat\n    keep-alive = yes\n    restart = on-failure', 'services.conf:3: keep-alive = yes is always restarted: remove restart = on-failure'],
  ['8080 dgram udp wait - /bin/cat\n    run-at-load = no', 'services.conf:2: a UDP wait service always starts at load: remove run-at-load = no'],
  ['8080 stream tcp wait - /bin/cat\n    name = a:b', 'services.conf:2: option "name": "a:b" is not a socket name (printable characters without ":" or spaces)'],
  ['8080 stream tcp wait - /bin/cat\n    name = a\n    name = b', 'services.conf:3: option "name": the service field\'s socket already has a name'],
  ['127.0.0.1:8080 stream tcp wait - /bin/cat\n    handoff = listen-fds\n    listen = 127.0.0.1:8080', 'services.conf:3: 127.0.0.1:8080/tcp is already bound by line 1'],
  ['8080 stream tcp nowait - /bin/cat\n\n    backlog = 5', 'services.conf:3: option "backlog" is not directly under a service line'],
];

t.test('wait services: several listen addresses with names, and the worker policy', async (t) => {
  const table = await parse(
    [
      '127.0.0.1:8080 stream tcp wait - /bin/cat',
      '    label = web',
      '    handoff = listen-fds',
      '    name = http',
      '    listen = [::1]:8080',
      '    listen = 127.0.0.1:8443',
      '    name = https',
      '    ready = notify',
      '    start-timeout = 5s',
      '    restart = on-failure',
      '    watch = src',
      '127.0.0.1:6969 dgram udp wait - /bin/cat',
    ].join('\n'),
  );
  t.same(table.problems, []);
  const [web, udp] = table.entries;
  t.match(web, {
    handoff: 'listen-fds',
    sockets: [
      { name: 'http', line: 1, spec: { host: '127.0.0.1', port: 8080, family: 4 } },
      { name: 'web', line: 5, spec: { host: '::1', port: 8080, family: 6 } },
      { name: 'https', line: 6, spec: { host: '127.0.0.1', port: 8443 } },
    ],
    worker: { runAtLoad: false, restart: 'on-failure', ready: 'notify', startTimeoutMs: 5000, watch: [`${process.cwd()}/src`] },
  });
  t.match(udp, { handoff: 'stdio', worker: { runAtLoad: true, restart: 'always' } }, 'a UDP wait service starts at load and is kept alive');
});

t.test('broken lines: each gets its documented error, and the good lines stand', async (t) => {
  for (const [line, expected] of broken) {
    const table = await parse(line);
    t.same(table.problems.filter((p) => p.severity === 'error').map(formatProblem), [expected], line);
  }
  const mixed = await parse('echo strem tcp nowait - internal\n127.0.0.1:7 stream tcp nowait - internal echo');
  t.equal(mixed.entries.length, 1, 'the good line after a broken one is kept');
  const marked = await parse('\uFEFF127.0.0.1:7 stream tcp nowait - internal echo');
  t.same(marked.problems.map(formatProblem), [], 'a byte-order mark (Windows editors) is not part of the first line');
  t.equal(marked.entries.length, 1);
});

t.test('every bad option of a service is reported, each on its line', async (t) => {
  const table = await parse('8080 stream tcp nowait - /bin/cat\n    backlog = 0\n    max-connections = 0\n    exit-timeout = soon');
  t.same(table.problems.map(formatProblem), [
    'services.conf:2: option "backlog": expected a whole number from 1 to 65535, got 0',
    'services.conf:3: option "max-connections": expected a whole number from 1 to 16384, got 0',
    'services.conf:4: option "exit-timeout": "soon" is not a duration (examples: 500ms, 30s, 2m)',
  ]);
  t.same(table.entries, []);
});

t.test('BSD inetd continuation lines, commented-out options, a sticky host for listen, socket names without ":"', async (t) => {
  const table = await parse(
    [
      '127.0.0.1:',
      '8080 stream tcp nowait - /bin/echo',
      '\techo hello',
      '    world',
      '    # label = not-this',
      '    max-connections = 3',
      '8081 stream tcp wait - /bin/cat',
      '    handoff = listen-fds',
      '    listen = 8082',
    ].join('\n'),
  );
  t.same(table.problems, []);
  const [echo, cat] = table.entries;
  t.match(echo, { label: '127.0.0.1:8080/tcp', program: { argv0: 'echo', args: ['hello', 'world'] }, maxConnections: 3 });
  t.match(cat, {
    sockets: [
      { name: '127.0.0.1_8081/tcp', spec: { host: '127.0.0.1', port: 8081 } },
      { name: '127.0.0.1_8081/tcp', spec: { host: '127.0.0.1', port: 8082 } },
    ],
  });
});

t.test('a comma-separated list of hosts (GNU inetd) gives one socket each: in the service field, a sticky host and listen', async (t) => {
  const table = await parse(
    [
      '127.0.0.1,[::1]:8080 stream tcp nowait - /bin/cat',
      '127.0.0.1,[::1]:8081 stream tcp wait - /bin/cat',
      '    handoff = listen-fds',
      '    name = web',
      '    listen = 127.0.0.2,127.0.0.3:8082',
      '127.0.0.4,[::1]:',
      '8083 stream tcp nowait - internal echo',
      '127.0.0.1,[::1]:tftp dgram udp wait - /bin/cat',
      '::1:',
      '8084 stream tcp nowait - internal echo',
    ].join('\n'),
  );
  t.same(table.problems, []);
  const [cat, web, echo, tftp4, tftp6, sticky6] = table.entries;
  t.match(cat, {
    label: '127.0.0.1,[::1]:8080/tcp',
    sockets: [{ spec: { host: '127.0.0.1', family: 4, port: 8080 } }, { spec: { host: '::1', family: 6, port: 8080 } }],
  });
  t.equal(cat!.sockets.length, 2);
  t.match(web, {
    sockets: [
      { name: 'web', line: 2, spec: { host: '127.0.0.1', port: 8081 } },
      { name: 'web', line: 2, spec: { host: '::1', port: 8081 } },
      { line: 5, spec: { host: '127.0.0.2', port: 8082 } },
      { line: 5, spec: { host: '127.0.0.3', port: 8082 } },
    ],
  });
  t.match(echo, { label: '127.0.0.4,[::1]:8083/tcp', sockets: [{ spec: { host: '127.0.0.4' } }, { spec: { host: '::1' } }] });
  // A wait service handed its socket as stdin: one service per address, as GNU inetd starts one server per address.
  t.match(tftp4, { label: '127.0.0.1:tftp/udp', mode: 'wait', sockets: [{ spec: { host: '127.0.0.1', port: 69 } }] });
  t.match(tftp6, { label: '[::1]:tftp/udp', mode: 'wait', sockets: [{ spec: { host: '::1', port: 69 } }] });
  t.equal(tftp4!.sockets.length + tftp6!.sockets.length, 2);
  t.match(sticky6, { sockets: [{ spec: { host: '::1', port: 8084 } }] }, 'a host line of one IPv6 address may leave out the brackets');
});

t.test('a broken host line is reported on its own line, and on each service line that would use it', async (t) => {
  const table = await parse(['127.0.0.1,,[::1]:', '7 stream tcp nowait - internal echo', '127.0.0.2:9 stream tcp nowait - internal discard'].join('\n'));
  t.same(table.problems.map(formatProblem), [
    'services.conf:1: host line "127.0.0.1,,[::1]:": an empty address in the list of hosts',
    'services.conf:2: host line "127.0.0.1,,[::1]:": an empty address in the list of hosts',
  ]);
  t.match(table.entries, [{ label: '127.0.0.2:9/tcp' }], 'a service line with a host of its own stands');
});

t.test('a continuation line that starts with NAME=value (for env) continues the argv; options stay options', async (t) => {
  const table = await parse(['8080 stream tcp nowait - /usr/bin/env env', '\tLANG=C /bin/date -u', '    env = GREETING=hello world', '    label = date'].join('\n'));
  t.same(table.problems, []);
  t.match(table.entries[0], { label: 'date', program: { argv0: 'env', args: ['LANG=C', '/bin/date', '-u'] }, env: [['GREETING', 'hello world']] });
});

t.test('quotes keep blanks in a word, as in FreeBSD and GNU inetd; a line with a quote left open is read as OpenBSD inetd reads it, with a warning', async (t) => {
  const table = await parse(
    [
      `8080 stream tcp nowait - /bin/sh sh -c "echo 'hello  world'" ''`,
      '8081 stream tcp nowait - /usr/bin/printf printf',
      '\t"%s|%s" a\'b c\'d',
      '8082 stream tcp nowait - /usr/bin/env env',
      '\tLANG=C',
      '\t/bin/date',
      "8083 stream tcp nowait - /bin/echo echo it's",
      '    label = open',
      '8084 stream tcp nowait - /bin/echo echo',
      '\t"hello',
      '\t"again',
      '    label = open-too',
    ].join('\n'),
  );
  const warning = `warning: a quote is left open: read as words split at blanks, quotes kept (as OpenBSD inetd does); to keep blanks in a word, close it, and to pass a lone ' write it inside "…"`;
  t.same(table.problems.map(formatProblem), [`services.conf:7: ${warning}`, `services.conf:10: ${warning}`, `services.conf:11: ${warning}`]);
  t.match(table.entries, [
    { program: { path: '/bin/sh', argv0: 'sh', args: ['-c', "echo 'hello  world'", ''] } },
    { program: { argv0: 'printf', args: ['%s|%s', 'ab cd'] } },
    { program: { argv0: 'env', args: ['LANG=C', '/bin/date'] } },
    { label: 'open', program: { argv0: 'echo', args: ["it's"] } },
    { label: 'open-too', program: { argv0: 'echo', args: ['"hello', '"again'] } },
  ]);
});

t.test("FreeBSD's and GNU's forms: nowait/max-child/0/max-child-per-ip, first.last:group, a built-in named by its port or alias, an IPsec line warned of, :user:group:mode:/path", async (t) => {
  const table = await parse(
    [
      '127.0.0.1:8080 stream tcp nowait/10/0/2 - /bin/cat cat',
      '127.0.0.1:8081 stream tcp nowait/0 - /bin/cat cat',
      '127.0.0.1:8082 stream tcp wait/5 - /bin/cat cat',
      '#@ ipsec esp/transport//require',
      '127.0.0.1:7 stream tcp nowait root internal',
      '127.0.0.1:9 stream tcp nowait root internal',
      '127.0.0.1:19 stream tcp nowait root internal',
      ':::0600:/tmp/wakeport-test.sock stream unix nowait - internal echo',
      '127.0.0.1:9002 stream tcp wait/3 root internal echo',
      '127.0.0.1:9003 stream tcp wait root internal echo',
      '    max-connections = 1',
    ].join('\n'),
  );
  t.same(table.problems.map(formatProblem), [
    'services.conf:3: warning: "wait/5": the connection limits are ignored, as a wait service is handed its socket (its worker takes every connection)',
    'services.conf:4: warning: IPsec policy lines ("#@ …", FreeBSD and NetBSD inetd) are not supported: the services after it get no IPsec policy',
  ]);
  t.match(table.entries, [
    { maxConnections: 10, maxPerSource: 2, maxSpawns: null },
    { maxConnections: null, maxPerSource: null },
    { mode: 'wait', maxConnections: null },
    { program: { kind: 'internal', name: 'echo' } },
    { program: { kind: 'internal', name: 'discard' } },
    { program: { kind: 'internal', name: 'chargen' } },
    { label: '/tmp/wakeport-test.sock/unix', sockets: [{ spec: { transport: 'unix', path: '/tmp/wakeport-test.sock', mode: 0o600 } }] },
    { maxConnections: 3 },
    { maxConnections: 1 },
  ]);
  const { parseUserField } = await import('../../src/config/fields.js');
  t.same(parseUserField('first.last:staff'), { user: 'first.last', group: 'staff', dotted: false }, 'with a colon, a dot is part of the user name');
  t.same(parseUserField('nobody.nogroup'), { user: 'nobody', group: 'nogroup', dotted: true });
});

const hasTimserver = existsSync('/etc/services') && /\stimserver\b/.test(readFileSync('/etc/services', 'utf8'));

t.test('an internal service named by an alias from /etc/services is the built-in on its port', { skip: !hasTimserver && '/etc/services has no timserver alias' }, async (t) => {
  const table = await parse('127.0.0.1:timserver stream tcp nowait root internal');
  t.same(table.problems, []);
  t.match(table.entries, [{ label: '127.0.0.1:timserver/tcp', program: { kind: 'internal', name: 'time' } }]);
});

t.test('an internal service ignores its user field: it runs inside wakeport', async (t) => {
  const table = await parse('127.0.0.1:7 stream tcp nowait nosuchuser internal echo\n127.0.0.1:9 stream tcp nowait root internal discard');
  t.same(table.problems, []);
  t.match(table.entries, [{ runAs: null }, { runAs: null }]);
});

t.test('an IPv6 address is kept in one spelling, with its zone where it is link-local', async (t) => {
  const table = await parse('[0:0::1]:9000 stream tcp nowait - internal echo\n[fe80::1%lo]:9000 stream tcp nowait - internal echo\n[::1%lo]:9001 stream tcp nowait - internal echo');
  t.match(table.entries, [{ sockets: [{ spec: { host: '::1' } }] }, { sockets: [{ spec: { host: 'fe80::1%lo' } }] }, { sockets: [{ spec: { host: '::1', port: 9001 } }] }]);
});

t.test('collisions name both lines', async (t) => {
  const table = await parse(
    [
      '127.0.0.1:9000 stream tcp nowait - internal echo',
      '127.0.0.1:9000 stream tcp nowait - internal discard',
      '9000 stream tcp nowait - internal chargen',
      '127.0.0.1:9000 dgram udp wait - internal echo',
      '127.0.0.1:0 stream tcp nowait - internal echo',
      '    label = same',
      '127.0.0.1:0 stream tcp nowait - internal echo',
      '    label = same',
      '[::1]:9001 stream tcp nowait - internal echo',
      '[0:0::1]:9001 stream tcp nowait - internal echo',
    ].join('\n'),
  );
  t.same(table.problems.map(formatProblem), [
    'services.conf:2: 127.0.0.1:9000/tcp is already bound by line 1',
    'services.conf:3: 0.0.0.0:9000/tcp is already bound by line 1 (service "127.0.0.1:9000/tcp")',
    'services.conf:7: label "same" is already used by line 5; give one of them a label = option',
    'services.conf:10: [::1]:9001/tcp is already bound by line 9 (service "[::1]:9001/tcp")',
  ]);
  t.equal(table.entries.length, 4, 'udp on the same port, and port 0, do not collide');
});

t.test('a spawn limit where nothing is spawned per connection is a warning: the line stands, the limit does nothing', async (t) => {
  const table = await parse('8080 stream tcp wait.5 - /bin/cat\necho stream tcp nowait.50 - internal');
  t.same(table.problems.map(formatProblem), [
    'services.conf:1: warning: "wait.5": the spawn limit is ignored, as it applies to nowait services with a program only; a wait service\'s restarts are limited by start-limit-burst',
    'services.conf:2: warning: "nowait.50": the spawn limit is ignored, as it applies to nowait services with a program only; limit an internal service with max-connections',
  ]);
  t.match(table.entries, [{ mode: 'wait', maxSpawns: null }, { program: { kind: 'internal' }, maxSpawns: null }]);
});

t.test('a service field that names a built-in decides which one, as in every inetd; a port number lets the word after internal name it', async (t) => {
  const table = await parse(
    [
      'echo stream tcp nowait root internal daytime',
      'discard stream tcp nowait root internal whatever',
      '127.0.0.1:13 stream tcp nowait - internal chargen',
      '127.0.0.1:7007 stream tcp nowait - internal time',
      'sink dgram udp wait - internal',
    ].join('\n'),
  );
  t.same(table.problems.map(formatProblem), [
    'services.conf:1: warning: "internal daytime": the service field "echo" names echo, which this line serves, as inetd does (it ignores the words after internal); to serve daytime, write its name or a port number in the service field',
    'services.conf:2: warning: "internal whatever": the service field "discard" names discard, which this line serves, as inetd does (it ignores the words after internal)',
  ]);
  t.same(
    table.entries.map(({ program }) => (program.kind === 'internal' ? program.name : null)),
    ['echo', 'discard', 'chargen', 'time', 'discard'],
  );
});

t.test('a missing program is a warning: the service still stands', async (t) => {
  const table = await parse('8080 stream tcp nowait - /no/such/program');
  t.same(table.problems.map(formatProblem), [
    'services.conf:1: warning: program /no/such/program does not exist; its clients will be closed until it can be started',
  ]);
  t.equal(table.entries.length, 1);
});

t.test('what will keep a service from starting is a warning on its line: a wait program missing, an output file or a unix socket in a folder that is not there', async (t) => {
  const table = await parse(
    [
      '127.0.0.1:0 stream tcp wait - /no/such/program',
      '127.0.0.1:0 stream tcp nowait - /bin/cat',
      '    stdout = /no/such/folder/out.log',
      '    handoff = listen-fds',
      '    label = logged',
      '127.0.0.1:0 stream tcp nowait - /bin/cat',
      '    stderr = /no/such/folder/err.log',
      '    label = errors',
      '/tmp/wakeport-test.sock stream unix nowait - internal echo',
      '    listen = /no/such/folder/echo.sock',
      '127.0.0.1:0 stream tcp nowait - /bin/cat',
      '    stdout = /tmp',
      '    label = into-a-folder',
      '/etc/passwd/echo.sock stream unix nowait - internal echo',
    ].join('\n'),
  );
  t.same(table.problems.map(formatProblem), [
    'services.conf:1: warning: program /no/such/program does not exist; its worker cannot start until it does (clients wait through the restart back-off, then are closed once the service has failed)',
    'services.conf:2: warning: stdout file /no/such/folder/out.log: its folder /no/such/folder does not exist; the service will not start (its sockets closed, its clients refused) until the table is reloaded with it put right',
    'services.conf:6: warning: stderr file /no/such/folder/err.log: its folder /no/such/folder does not exist; the service will not start (its sockets closed, its clients refused) until the table is reloaded with it put right',
    'services.conf:10: warning: folder /no/such/folder does not exist; the unix socket /no/such/folder/echo.sock is bound once it is one',
    'services.conf:11: warning: stdout file /tmp: it is a folder; the service will not start (its sockets closed, its clients refused) until the table is reloaded with it put right',
    'services.conf:14: warning: folder /etc/passwd is a file, not a folder; the unix socket /etc/passwd/echo.sock is bound once it is one',
  ]);
  t.equal(table.entries.length, 6, 'every service stands');
});

t.test('a unix service written like an address and port is a warning: a mistyped protocol is likelier than such a file name', async (t) => {
  const fields = ['127.0.0.1:7001', '[::1]:7002', '*:7003', '127.0.0.1,[::1]:echo'];
  const table = await parse([...fields, '/run/echo.sock'].map((field) => `${field} stream unix nowait - internal echo`).join('\n'));
  const warning = (field: string) => `warning: "${field}" looks like an address and port, but the protocol is unix: it names a socket file in the table's folder (for TCP, write tcp)`;
  t.same(table.problems.map(formatProblem), fields.map((field, index) => `services.conf:${index + 1}: ${warning(field)}`));
  t.equal(table.entries.length, 5);
});

t.test('a non-root wakeport may only run programs as itself', { skip: process.getuid?.() === 0 ? 'runs as root' : false }, async (t) => {
  const table = await parse('8080 stream tcp nowait root /bin/cat');
  t.match(table.problems.map(formatProblem)[0], /so it can only run programs as that user and group; write "-" or run wakeport as root$/);
});

t.test('a working directory that does not exist is a warning: the service still stands', async (t) => {
  const table = await parse('8080 stream tcp nowait - /bin/cat\n    cwd = /no/such/folder');
  t.same(table.problems.map(formatProblem), ['services.conf:1: warning: working directory /no/such/folder does not exist; its programs cannot start until it does']);
  t.equal(table.entries.length, 1);
});
