// Reading a process's state from /proc (its open fds, its children), and
// running a short-lived process to its end.

import { spawn, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The pids and states (R, S, Z, …) of the direct children of `pid`. */
export function childrenOf(pid: number): { pid: number; state: string }[] {
  const children: { pid: number; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // Gone meanwhile.
    }
    // pid (comm) state ppid …: comm may hold spaces and parentheses.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === pid) children.push({ pid: Number(name), state: state! });
  }
  return children;
}

/** Whether `pid` holds the listening IPv4 TCP socket on `port` (its inode, from /proc/net/tcp, among its fds). */
export function holdsListener(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A')
    .map((fields) => `socket:[${fields[9]}]`);
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return inodes.includes(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      return false; // Closed meanwhile.
    }
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Exited but not yet reaped (where nothing reaps orphans, they stay so). */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** The command line of a process, as one string ("" once it is gone). */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/**
 * Runs a Node script with `env` (without tap's NODE_OPTIONS) and `stdio`, to
 * its exit; its stderr is collected. Bounded: killed after `timeoutMs`, so a
 * process that wrongly goes on serving cannot outlive the test.
 */
export function runNodeToExit(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  stdio: StdioOptions,
  timeoutMs = 10_000,
): Promise<{ code: number | null; stderr: string }> {
  const { NODE_OPTIONS: _options, ...clean } = { ...process.env, ...env };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: clean, stdio });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
