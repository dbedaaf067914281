// Starts a real wakeport (the built launcher in dist/) on a table written to
// a temporary folder, and reads its JSON log. Every test that uses it ends
// it by pid in teardown, and the folder is removed with the test.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cli = path.join(root, 'dist/src/cli.js');

export interface LogRecord {
  readonly severity: string;
  readonly subject: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

export interface Wakeport {
  readonly process: ChildProcess;
  readonly dir: string;
  readonly logs: LogRecord[];
  /** Lines on stderr that are not JSON log records. */
  readonly rawStderr: string[];
  /** The port a service is listening on, from its "listening on" log record. */
  port(label: string): number;
  /** The supervisor's pid, from its "serving" record. */
  readonly supervisorPid: number;
  /** Resolves with the first record (already logged or still to come) matching `predicate`. */
  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** Sends `signal` and resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  readonly args?: readonly string[];
  /** Resolve when this record appears instead of waiting for the supervisor's "serving" record. */
  readonly until?: (record: LogRecord) => boolean;
  readonly env?: NodeJS.ProcessEnv;
  /** More files for the test folder (tap's testdir fixture format). */
  readonly files?: Record<string, unknown>;
  readonly stdio?: readonly (number | 'ignore')[];
  /** How to run the launcher (for LISTEN_PID tests): the command and arguments before the CLI's own. */
  readonly wrap?: (command: readonly string[]) => readonly string[];
}

export async function startWakeport(t: Test, table: string, options: StartOptions = {}): Promise<Wakeport> {
  const dir = t.testdir({ ...(options.files as object), 'services.conf': table });
  const command = [process.execPath, cli, 'run', '-f', path.join(dir, 'services.conf'), '--log-format', 'json', '--log-level', 'debug', ...(options.args ?? [])];
  // Not tap's NODE_OPTIONS (its loaders), nor NODE_EXTRA_CA_CERTS (a CA
  // bundle read at every start): both would slow down the launcher. tap
  // puts its NODE_OPTIONS back into every spawn of this process, so env(1)
  // takes it out: with tap's loaders, wakeport's processes would carry them
  // too, and an orphaned one can hang in them at exit, holding this test's
  // pipes open.
  const [file, ...args] = ['/usr/bin/env', '-u', 'NODE_OPTIONS', ...(options.wrap ? options.wrap(command) : command)];
  const { NODE_OPTIONS: _options, NODE_EXTRA_CA_CERTS: _certs, ...env } = options.env ?? process.env;
  const child = spawn(file!, args, {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe', ...(options.stdio ?? [])],
  });
  const logs: LogRecord[] = [];
  const rawStderr: string[] = [];
  const waiters = new Set<{ predicate: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>();
  let pending = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        rawStderr.push(line);
        continue;
      }
      logs.push(record);
      for (const waiter of waiters) {
        if (waiter.predicate(record)) {
          waiters.delete(waiter);
          waiter.resolve(record);
        }
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });

  const waitForLog = (predicate: (r: LogRecord) => boolean, timeoutMs = 15_000): Promise<LogRecord> => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve: (r: LogRecord) => (clearTimeout(timer), resolve(r)) };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log record within ${timeoutMs}ms; log so far:\n${logs.map((r) => JSON.stringify(r)).join('\n')}\n${rawStderr.join('\n')}`));
      }, timeoutMs);
      waiters.add(waiter);
      void exited.then(() => setTimeout(() => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`wakeport exited before a matching log record; log:\n${logs.map((r) => JSON.stringify(r)).join('\n')}\n${rawStderr.join('\n')}`));
      }, 100));
    });
  };

  const ready = await waitForLog(options.until ?? ((r) => r.message.startsWith('serving ')));
  const supervisorPid = Number(/supervisor pid (\d+)/.exec(ready.message)?.[1] ?? -1);
  return {
    process: child,
    dir,
    logs,
    rawStderr,
    supervisorPid,
    port(label) {
      const record = logs.find((r) => r.subject === label && r.message.startsWith('listening on'));
      if (!record || typeof record.port !== 'number') throw new Error(`service ${label} is not listening`);
      return record.port;
    },
    waitForLog,
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * A wakeport run by its own link to the node binary, which the test can take
 * away and put back, as an upgrade or a cleanup might: every process
 * wakeport starts from then on fails to start until it is back.
 */
export async function startWakeportOnOwnNode(
  t: Test,
  table: string,
): Promise<{ wakeport: Wakeport; removeNode(): void; restoreNode(): void }> {
  const node = path.join(t.testdirName, 'node');
  const restoreNode = () => {
    try {
      linkSync(process.execPath, node);
    } catch {
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
    }
  };
  const wakeport = await startWakeport(t, table, { wrap: ([, ...rest]) => (restoreNode(), [node, ...rest]) });
  return { wakeport, removeNode: () => unlinkSync(node), restoreNode };
}
