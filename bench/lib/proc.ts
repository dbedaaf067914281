// Processes the benchmarks start, and what /proc says about them.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last few KB it wrote to stderr. */
  readonly stderr: string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and waits for it. */
  stop(): Promise<void>;
}

// Every process the benchmarks start gets the same small environment: this
// machine's has NODE_EXTRA_CA_CERTS, for one, which costs every Node process
// tens of milliseconds at start-up (wakeport's workers get a clean
// environment anyway, so it would count against the worker alone).
export const cleanEnv: NodeJS.ProcessEnv = Object.fromEntries(
  ['PATH', 'HOME', 'LANG', 'TZ'].flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])),
);

export function start(command: string, args: readonly string[], options: SpawnOptions = {}): Started {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv, ...options });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A program that cannot start exits at once; its error is kept with its stderr.
  child.once('error', (error) => (stderr += `cannot start ${command}: ${error.message}\n`));
  return {
    child,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    },
    get stderr() {
      return stderr;
    },
  } as Started;
}

/** A port the kernel says is free now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Resolves once something accepts TCP connections on `port`. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

const ticksPerSecond = 100;

/** CPU time (user + system) of the processes themselves, not of their children, in ms. */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = statFields(pid);
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone.
    }
  }
  return (ticks * 1000) / ticksPerSecond;
}

function statusKb(pid: number, key: 'VmRSS' | 'VmHWM' | 'RssAnon'): number {
  try {
    return Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export const rssMb = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0) / 1024;
export const peakRssMb = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + statusKb(pid, 'VmHWM'), 0) / 1024;
/** The part of RSS that is the processes' own (heap, stacks), not shared program text. */
export const anonMb = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + statusKb(pid, 'RssAnon'), 0) / 1024;

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const parent = Number(statFields(Number(name))[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
    } catch {
      // Gone.
    }
  }
  const tree: number[] = [];
  const visit = (p: number) => {
    tree.push(p);
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/** Whether a program can be run (found on PATH or by path). */
export function available(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v '${program}'`], { stdio: 'ignore' }).status === 0;
}

/** The command line of a process ("" once it is gone). */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}
