// Stopping a process wakeport started: SIGTERM to its whole process group
// (every program runs in a group of its own), then SIGKILL if it is still
// there after the grace period.

/** What stopping needs of a process: a ChildProcess, or a connection's process (program.ts). */
export interface StoppableProcess {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  once(event: 'exit', listener: () => void): unknown;
}

export function signalGroup(child: StoppableProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone (ESRCH): nothing left to stop.
  }
}

/** Resolves once the child has exited. */
export function stopChild(child: StoppableProcess, graceMs: number): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    signalGroup(child, 'SIGTERM');
  });
}
