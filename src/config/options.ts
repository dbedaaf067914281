// Extended options: `key = value` lines under a service line. Every key, its
// default and its limits are in this file; an unknown key is an error, and so
// is a key that does not apply to the service's kind (see `keyScope`).
//
// Every service
//   label            unique name of the service (default: the service field and protocol)
//   listen           one more address to listen on, written like the service field
//                    (repeatable; the service field is the first)
//   name             the name of the socket above it (the service field's, or the
//                    last listen's), passed in LISTEN_FDNAMES (default: the label)
//   backlog          listen backlog, 1–65535 (default 4096; the kernel caps it at somaxconn)
// Services with a program
//   env              NAME=value added to the program's environment (repeatable)
//   cwd              the program's working directory
//   stdout, stderr   a file the program's output is appended to; default: stdout is the
//                    connection (nowait stdio) or the log, stderr goes to the log
//   handoff          stdio (the socket is fd 0 and 1, as in inetd) or listen-fds (the
//                    sockets are fd 3, 4, … as in systemd); default stdio
//   listen-pid       with listen-fds: no skips setting LISTEN_PID, and with it the /bin/sh
//                    that sets it and the blocking mode (default yes)
//   exit-timeout     grace between SIGTERM and SIGKILL when stopping (default 20s)
// nowait services
//   max-connections  concurrent connections served, 1–16384 (default 64 for programs,
//                    no limit for internal services); more clients wait in a queue
//   max-per-source   concurrent connections served per client address, 1–16384
//   rate-window      the window of the spawn limit in nowait.max (default 60s)
//   only-from        addresses, networks or host names (10.0.0.0/8, ::1, localhost) whose clients are served;
//                    the rest are refused (repeatable; default: every address)
//   no-access        addresses, networks or host names whose clients are refused (repeatable)
// wait services
//   run-at-load      yes: start the worker at startup, not at the first client (default no)
//   keep-alive       yes: start at load and restart whenever it exits (launchd KeepAlive)
//   restart          no | on-failure | always: restart without waiting for a client
//                    after an exit (default no: the next client starts it)
//   ready            spawn (up once started) or notify (up once it writes READY=1 to NOTIFY_FD)
//   start-timeout    how long a notify worker has to check in (default 30s)
//   restart-delay    the first back-off after a failure, doubled each time (default 100ms)
//   restart-max-delay  the longest back-off; a worker up this long resets it (default 10s)
//   start-limit-burst, start-limit-interval
//                    this many failures within this interval mark the service failed
//                    (default 5 within 60s)
//   failed-cooldown  how long a failed service refuses clients before it tries again (default 60s)
//   watch            a file or folder (recursively) whose changes restart the worker
//                    gracefully (repeatable)
//
// Durations are a number with ms, s, m or h (a bare number is seconds).

import path from 'node:path';
import { parseAddressRules, type WrittenRule } from './address-rules.js';
import type { OutputTarget, ServiceEntry, WorkerPolicy } from './entry.js';
import { LineProblem } from './fields.js';
import type { RawOption } from './syntax.js';


/** An extra address, as written; table.ts resolves it with the service's protocol. */
export interface RawListen {
  readonly line: number;
  readonly address: string;
  readonly name: string | null;
}

export interface Options extends WorkerPolicy {
  readonly label: string | null;
  readonly primaryName: string | null;
  readonly listens: readonly RawListen[];
  readonly env: readonly (readonly [string, string])[];
  readonly cwd: string | null;
  readonly stdout: OutputTarget;
  readonly stderr: OutputTarget;
  readonly handoff: ServiceEntry['handoff'];
  readonly listenPid: boolean;
  readonly backlog: number;
  readonly maxConnections: number | null;
  readonly maxPerSource: number | null;
  readonly exitTimeoutMs: number;
  readonly rateWindowMs: number;
  readonly onlyFrom: readonly WrittenRule[] | null;
  readonly noAccess: readonly WrittenRule[];
  /** launchd KeepAlive: implies run-at-load and restart = always (table.ts derives the worker policy). */
  readonly keepAlive: boolean;
  /** The line each key was set on. */
  readonly keyLines: ReadonlyMap<string, number>;
}

const defaultOptions: Omit<Options, 'keyLines'> = {
  label: null,
  primaryName: null,
  listens: [],
  env: [],
  cwd: null,
  stdout: { kind: 'default' },
  stderr: { kind: 'default' },
  handoff: 'stdio',
  listenPid: true,
  backlog: 4096,
  maxConnections: null,
  maxPerSource: null,
  exitTimeoutMs: 20_000,
  rateWindowMs: 60_000,
  onlyFrom: null,
  noAccess: [],
  runAtLoad: false,
  keepAlive: false,
  restart: 'no',
  ready: 'spawn',
  startTimeoutMs: 30_000,
  restartDelayMs: 100,
  restartMaxDelayMs: 10_000,
  startLimitBurst: 5,
  startLimitIntervalMs: 60_000,
  failedCooldownMs: 60_000,
  watch: [],
};

/** Which services a key applies to. */
export type KeyScope = 'any' | 'program' | 'nowait' | 'wait';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Setter = (options: Mutable<Omit<Options, 'keyLines'>>, value: string, baseDir: string, line: number) => void;

const keys: Record<string, { scope: KeyScope; repeatable?: true; set: Setter }> = {
  label: { scope: 'any', set: (o, v) => (o.label = parseLabel(v)) },
  listen: { scope: 'any', repeatable: true, set: (o, v, _, line) => (o.listens = [...o.listens, { line, address: v, name: null }]) },
  name: { scope: 'any', repeatable: true, set: setName },
  backlog: { scope: 'any', set: (o, v) => (o.backlog = parseInteger(v, 1, 65535)) },
  env: { scope: 'program', repeatable: true, set: (o, v) => (o.env = [...o.env, parseEnv(v)]) },
  cwd: { scope: 'program', set: (o, v, base) => (o.cwd = parsePath(v, base)) },
  stdout: { scope: 'program', set: (o, v, base) => (o.stdout = { kind: 'file', path: parsePath(v, base) }) },
  stderr: { scope: 'program', set: (o, v, base) => (o.stderr = { kind: 'file', path: parsePath(v, base) }) },
  handoff: { scope: 'program', set: (o, v) => (o.handoff = parseChoice(v, ['stdio', 'listen-fds'])) },
  'listen-pid': { scope: 'program', set: (o, v) => (o.listenPid = parseYesNo(v)) },
  'exit-timeout': { scope: 'program', set: (o, v) => (o.exitTimeoutMs = parseDuration(v)) },
  'max-connections': { scope: 'nowait', set: (o, v) => (o.maxConnections = parseInteger(v, 1, 16384)) },
  'max-per-source': { scope: 'nowait', set: (o, v) => (o.maxPerSource = parseInteger(v, 1, 16384)) },
  'rate-window': { scope: 'nowait', set: (o, v) => (o.rateWindowMs = parseNonZeroDuration(v)) },
  'only-from': { scope: 'nowait', repeatable: true, set: (o, v, _, line) => (o.onlyFrom = [...(o.onlyFrom ?? []), ...parseAddressRules(v, line)]) },
  'no-access': { scope: 'nowait', repeatable: true, set: (o, v, _, line) => (o.noAccess = [...o.noAccess, ...parseAddressRules(v, line)]) },
  'run-at-load': { scope: 'wait', set: (o, v) => (o.runAtLoad = parseYesNo(v)) },
  'keep-alive': { scope: 'wait', set: (o, v) => (o.keepAlive = parseYesNo(v)) },
  restart: { scope: 'wait', set: (o, v) => (o.restart = parseChoice(v, ['no', 'on-failure', 'always'])) },
  ready: { scope: 'wait', set: (o, v) => (o.ready = parseChoice(v, ['spawn', 'notify'])) },
  'start-timeout': { scope: 'wait', set: (o, v) => (o.startTimeoutMs = parseNonZeroDuration(v)) },
  'restart-delay': { scope: 'wait', set: (o, v) => (o.restartDelayMs = parseDuration(v)) },
  'restart-max-delay': { scope: 'wait', set: (o, v) => (o.restartMaxDelayMs = parseDuration(v)) },
  'start-limit-burst': { scope: 'wait', set: (o, v) => (o.startLimitBurst = parseInteger(v, 1, 1000)) },
  'start-limit-interval': { scope: 'wait', set: (o, v) => (o.startLimitIntervalMs = parseDuration(v)) },
  'failed-cooldown': { scope: 'wait', set: (o, v) => (o.failedCooldownMs = parseDuration(v)) },
  watch: { scope: 'wait', repeatable: true, set: (o, v, base) => (o.watch = [...o.watch, parsePath(v, base)]) },
};

/** The option's spec; undefined for an unknown key (also for "constructor" and other names every object has). */
function specOf(key: string): (typeof keys)[string] | undefined {
  return Object.hasOwn(keys, key) ? keys[key] : undefined;
}

export function scopeOf(key: string): KeyScope {
  return specOf(key)!.scope;
}

export function parseOptions(raw: readonly RawOption[], baseDir: string): Options {
  const options: Mutable<Omit<Options, 'keyLines'>> = { ...defaultOptions };
  const keyLines = new Map<string, number>();
  // Every bad option line is reported, not only the first.
  const problems: LineProblem[] = [];
  for (const { key, value, line } of raw) {
    const problem = setOption(options, keyLines, key, value, baseDir, line);
    if (problem) problems.push(problem);
  }
  const [first, ...more] = problems;
  if (first) throw new LineProblem(first.message, first.line, more);
  return { ...options, keyLines };
}

/** Sets one option; the problem with its line, if any. */
function setOption(
  options: Mutable<Omit<Options, 'keyLines'>>,
  keyLines: Map<string, number>,
  key: string,
  value: string,
  baseDir: string,
  line: number,
): LineProblem | null {
  const spec = specOf(key);
  if (!spec) return new LineProblem(`unknown option "${key}" (known: ${Object.keys(keys).join(', ')}); an argument of the form key=value goes on the service line`, line);
  const earlier = keyLines.get(key);
  if (earlier !== undefined && !spec.repeatable) return new LineProblem(`option "${key}" is already set on line ${earlier}`, line);
  keyLines.set(key, line);
  try {
    spec.set(options, value, baseDir, line);
    return null;
  } catch (error) {
    if (!(error instanceof LineProblem)) throw error;
    return new LineProblem(`option "${key}": ${error.message}`, line);
  }
}

/** `name` names the socket above it: the last listen, or else the service field's. */
function setName(o: Mutable<Omit<Options, 'keyLines'>>, v: string): void {
  const name = parseSocketName(v);
  const last = o.listens.at(-1);
  if (last === undefined) {
    if (o.primaryName !== null) throw new LineProblem('the service field\'s socket already has a name');
    o.primaryName = name;
  } else {
    if (last.name !== null) throw new LineProblem(`the listen on line ${last.line} already has a name`);
    o.listens = [...o.listens.slice(0, -1), { ...last, name }];
  }
}

// systemd's rule for FileDescriptorName: printable ASCII without ":", at most 255.
function parseSocketName(value: string): string {
  if (!/^[!-9;-~]{1,255}$/.test(value)) {
    throw new LineProblem(`"${value}" is not a socket name (printable characters without ":" or spaces)`);
  }
  return value;
}

function parseYesNo(value: string): boolean {
  return parseChoice(value, ['yes', 'no']) === 'yes';
}

function parseChoice<T extends string>(value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new LineProblem(`expected ${choices.join(' or ')}, got "${value}"`);
}

function parseLabel(value: string): string {
  if (!/^[A-Za-z0-9_.:@/[\]-]+$/.test(value)) {
    throw new LineProblem(`"${value}" is not a label (letters, digits and _ . : @ / [ ] - only)`);
  }
  return value;
}

function parseEnv(value: string): [string, string] {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(value);
  if (!match) throw new LineProblem(`"${value}" is not of the form NAME=value`);
  return [match[1]!, match[2]!];
}

function parsePath(value: string, baseDir: string): string {
  if (value === '') throw new LineProblem('the path is empty');
  return path.resolve(baseDir, value);
}

function parseInteger(value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new LineProblem(`expected a whole number from ${min} to ${max}, got "${value}"`);
  const number = Number(value);
  if (number < min || number > max) throw new LineProblem(`expected a whole number from ${min} to ${max}, got ${value}`);
  return number;
}

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// A Node timer cannot wait longer (2^31 - 1 ms, about 24.8 days): it fires after 1 ms instead.
const maxDurationMs = 2 ** 31 - 1;

/** `500ms`, `30s`, `2m`, `1h`; a bare number is seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value);
  if (!match) throw new LineProblem(`"${value}" is not a duration (examples: 500ms, 30s, 2m)`);
  const ms = Math.round(Number(match[1]) * unitMs[match[2] ?? 's']!);
  if (ms > maxDurationMs) throw new LineProblem(`"${value}" is longer than a timer can wait (at most 596h)`);
  return ms;
}

/** A duration that must be at least 1 ms (a window or a timeout of 0 would make the option mean nothing). */
function parseNonZeroDuration(value: string): number {
  const ms = parseDuration(value);
  if (ms === 0) throw new LineProblem(`"${value}" is no time at all (at least 1ms)`);
  return ms;
}
