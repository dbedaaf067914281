// Extended options: `key = value` lines under a service line. Every key, its
// default and its limits are in this file; an unknown key is an error.
//
//   label            unique name of the service (default: the service field and protocol)
//   env              NAME=value added to the program's environment (repeatable)
//   cwd              the program's working directory
//   stdout, stderr   a file the program's output is appended to; default: stdout is the
//                    connection, stderr goes to wakeport's log prefixed with the label
//   backlog          listen backlog, 1–65535 (default 4096; the kernel caps it at somaxconn)
//   max-connections  concurrent connections served, 1–16384 (default 64 for programs,
//                    no limit for internal services); more clients wait in a queue
//   max-per-source   concurrent connections served per client address, 1–16384
//   exit-timeout     grace between SIGTERM and SIGKILL when stopping (default 20s)
//   rate-window      the window of the spawn limit in nowait.max (default 60s)
//
// Durations are a number with ms, s, m or h (a bare number is seconds).

import path from 'node:path';
import type { OutputTarget } from './entry.js';
import { LineProblem } from './fields.js';
import type { RawOption } from './syntax.js';

export interface Options {
  readonly label: string | null;
  readonly env: readonly (readonly [string, string])[];
  readonly cwd: string | null;
  readonly stdout: OutputTarget;
  readonly stderr: OutputTarget;
  readonly backlog: number;
  readonly maxConnections: number | null;
  readonly maxPerSource: number | null;
  readonly exitTimeoutMs: number;
  readonly rateWindowMs: number;
}

export const defaultOptions: Options = {
  label: null,
  env: [],
  cwd: null,
  stdout: { kind: 'default' },
  stderr: { kind: 'default' },
  backlog: 4096,
  maxConnections: null,
  maxPerSource: null,
  exitTimeoutMs: 20_000,
  rateWindowMs: 60_000,
};

/** Options that only make sense for a program wakeport starts. */
export const programOnlyKeys: ReadonlySet<string> = new Set(['env', 'cwd', 'stdout', 'stderr', 'exit-timeout']);

type Setter = (options: Mutable<Options>, value: string, baseDir: string) => void;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const setters: Record<string, Setter> = {
  label: (o, v) => (o.label = parseLabel(v)),
  env: (o, v) => (o.env = [...o.env, parseEnv(v)]),
  cwd: (o, v, base) => (o.cwd = parsePath(v, base)),
  stdout: (o, v, base) => (o.stdout = { kind: 'file', path: parsePath(v, base) }),
  stderr: (o, v, base) => (o.stderr = { kind: 'file', path: parsePath(v, base) }),
  backlog: (o, v) => (o.backlog = parseInteger(v, 1, 65535)),
  'max-connections': (o, v) => (o.maxConnections = parseInteger(v, 1, 16384)),
  'max-per-source': (o, v) => (o.maxPerSource = parseInteger(v, 1, 16384)),
  'exit-timeout': (o, v) => (o.exitTimeoutMs = parseDuration(v)),
  'rate-window': (o, v) => (o.rateWindowMs = Math.max(1, parseDuration(v))),
};

const repeatable = new Set(['env']);

export function parseOptions(raw: readonly RawOption[], baseDir: string): Options {
  const options: Mutable<Options> = { ...defaultOptions };
  const seen = new Map<string, number>();
  for (const { key, value, line } of raw) {
    const set = setters[key];
    if (!set) throw new LineProblem(`unknown option "${key}" (known: ${Object.keys(setters).join(', ')})`, line);
    const earlier = seen.get(key);
    if (earlier !== undefined && !repeatable.has(key)) {
      throw new LineProblem(`option "${key}" is already set on line ${earlier}`, line);
    }
    seen.set(key, line);
    try {
      set(options, value, baseDir);
    } catch (error) {
      if (!(error instanceof LineProblem)) throw error;
      throw new LineProblem(`option "${key}": ${error.message}`, line);
    }
  }
  return options;
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

export function parseInteger(value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new LineProblem(`expected a whole number from ${min} to ${max}, got "${value}"`);
  const number = Number(value);
  if (number < min || number > max) throw new LineProblem(`expected a whole number from ${min} to ${max}, got ${value}`);
  return number;
}

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `2m`, `1h`; a bare number is seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value);
  if (!match) throw new LineProblem(`"${value}" is not a duration (examples: 500ms, 30s, 2m)`);
  return Math.round(Number(match[1]) * unitMs[match[2] ?? 's']!);
}
