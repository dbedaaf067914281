#!/usr/bin/env node
// wakeport's command line: `run` (the launcher, in the foreground) and
// `check` (validate a table and print it resolved).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatAddressRule } from './config/address-rules.js';
import { formatSocket, type AddressRule, type ServiceEntry } from './config/entry.js';
import { parseDuration } from './config/options.js';
import { loadTable } from './config/table.js';
import { formatProblem, isWakeportError, WakeportError } from './errors.js';
import { createLogger, logFormats, logLevels } from './log.js';
import { exitCodes } from './runtime/exit-codes.js';
import { run } from './runtime/launcher.js';

const usage = `Usage: wakeport run   [-f FILE] [--strict] [--log-level LEVEL] [--log-format FORMAT] [--host-idle TIME]
       wakeport check [-f FILE]

  run     bind every socket of the services table and serve it, in the foreground
  check   validate the table and print it resolved; exit 1 if it has errors

Options:
  -f, --file FILE        the services table (default: services.conf)
      --strict           run: refuse to start if any line is wrong or any socket cannot be bound
      --log-level LEVEL  run: debug | info | warn | error (default: info)
      --log-format FMT   run: text | json (default: text)
      --host-idle TIME   run: how long a nowait host runs without work before it
                         exits (500ms, 30s, 10m; 0: never; default: 10m)
  -h, --help             this help
  -V, --version          wakeport's version
`;

const runOptions = ['strict', 'log-level', 'log-format', 'host-idle'] as const;

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f', default: 'services.conf' },
      // run's options have no default here, so that check can tell one was given.
      strict: { type: 'boolean' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      'host-idle': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'V', default: false },
    },
  });
  if (values.help) return print(usage);
  if (values.version) return print(`wakeport ${version()}\n`);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new WakeportError('ERR_USAGE', `unexpected argument "${rest[0]}"`);
  switch (command) {
    case 'run': {
      const level = oneOf(values['log-level'] ?? 'info', logLevels, '--log-level');
      const format = oneOf(values['log-format'] ?? 'text', logFormats, '--log-format');
      const hostIdleMs = duration(values['host-idle'] ?? '10m', '--host-idle');
      return run({ file: values.file, strict: values.strict ?? false, hostIdleMs }, createLogger({ level, format }));
    }
    case 'check': {
      const runOnly = runOptions.find((name) => values[name] !== undefined);
      if (runOnly !== undefined) throw new WakeportError('ERR_USAGE', `--${runOnly} is an option of run, not of check`);
      return check(values.file);
    }
    case undefined:
      throw new WakeportError('ERR_USAGE', 'no command given: wakeport run or wakeport check');
    default:
      throw new WakeportError('ERR_USAGE', `unknown command "${command}" (expected run or check)`);
  }
}

async function check(file: string): Promise<number> {
  const table = await loadTable(file);
  process.stdout.write(formatTable(table.entries));
  for (const problem of table.problems) process.stderr.write(`${formatProblem(problem)}\n`);
  const errors = table.problems.filter((problem) => problem.severity === 'error').length;
  return errors > 0 ? exitCodes.checkFailed : exitCodes.ok;
}

/** One row per service: label, address, protocol, mode, user, the clients it serves, program. */
function formatTable(entries: readonly ServiceEntry[]): string {
  const rows = [
    ['LABEL', 'ADDRESS', 'PROTO', 'MODE', 'USER', 'CLIENTS', 'PROGRAM'],
    ...entries.map((entry) => [
      entry.label,
      entry.sockets.map(({ spec }) => formatSocket(spec)).join(','),
      entry.transport,
      describeMode(entry),
      entry.runAs ? `${entry.runAs.name} (${entry.runAs.uid}:${entry.runAs.gid})` : '-',
      describeAccess(entry.access),
      describeProgram(entry.program),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/**
 * `/bin/cat -u`; `/usr/sbin/tcpd (argv0 in.fingerd)` when argv[0] is not
 * the file's name (tcpd learns from it which daemon to run).
 */
function describeProgram(program: ServiceEntry['program']): string {
  if (program.kind === 'internal') return `internal ${program.name}`;
  const argv0 = program.argv0 === path.basename(program.path) ? [] : [`(argv0 ${program.argv0})`];
  return [program.path, ...argv0, ...program.args].join(' ');
}

/**
 * `all`, or the rules with each network's prefix resolved (xinetd's
 * 10.1.0.0 shows as 10.1.0.0/16), and each host name with the addresses it
 * was found to have: `only 127.0.0.0/8,::1 not localhost(127.0.0.1)`.
 */
function describeAccess({ onlyFrom, noAccess }: ServiceEntry['access']): string {
  const parts = [...(onlyFrom === null ? [] : [`only ${list(onlyFrom)}`]), ...(noAccess.length === 0 ? [] : [`not ${list(noAccess)}`])];
  return parts.length === 0 ? 'all' : parts.join(' ');
}

function list(rules: readonly AddressRule[]): string {
  const words: string[] = [];
  for (let index = 0; index < rules.length; ) {
    const { from } = rules[index]!;
    let end = index + 1;
    while (from !== undefined && rules[end]?.from === from) end++;
    const written = rules.slice(index, end).map(formatAddressRule).join(',');
    words.push(from === undefined ? written : `${from}(${written})`);
    index = end;
  }
  return words.join(',');
}

/** `nowait.10`, `wait (lazy)`, `wait (kept alive)`: how the service is run. */
function describeMode(entry: ServiceEntry): string {
  if (entry.program.kind === 'internal') return 'internal';
  if (entry.mode === 'nowait') return entry.maxSpawns === null ? 'nowait' : `nowait.${entry.maxSpawns}`;
  const { runAtLoad, restart } = entry.worker;
  return restart === 'always' && runAtLoad ? 'wait (kept alive)' : runAtLoad ? 'wait (at load)' : 'wait (lazy)';
}

function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new WakeportError('ERR_USAGE', `${flag} must be one of ${allowed.join(', ')}, not "${value}"`);
}

function duration(value: string, flag: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new WakeportError('ERR_USAGE', `${flag}: ${(error as Error).message}`);
  }
}

function version(): string {
  const packageJson = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}

function print(text: string): number {
  process.stdout.write(text);
  return exitCodes.ok;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (isWakeportError(error) && error.code === 'ERR_USAGE') {
      process.stderr.write(`wakeport: ${error.message}\n${usage}`);
      process.exitCode = exitCodes.usage;
    } else if (isWakeportError(error) || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`wakeport: ${(error as Error).message}\n`);
      process.exitCode = isWakeportError(error) ? exitCodes.system : exitCodes.usage;
    } else {
      process.stderr.write(`wakeport: internal error, please report: ${(error as Error).stack ?? error}\n`);
      process.exitCode = exitCodes.bug;
    }
  },
);
