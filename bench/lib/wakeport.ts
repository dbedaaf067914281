// wakeport itself, started from dist/ on a table written to a temporary folder.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandOf, processTree, start, waitForPort, type Started } from './proc.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cli = path.join(root, 'dist/src/cli.js');
export const httpClose = path.join(root, 'services/http-close.sh');
export const httpServer = path.join(root, 'dist/services/http-server.js');

export interface LogRecord {
  readonly severity: string;
  readonly subject: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

export interface RunningWakeport {
  readonly launcher: Started;
  readonly logs: LogRecord[];
  /** Ports by label, from the "listening on" lines. */
  port(label: string): number;
  /** Node processes of wakeport's tree (launcher, supervisor, helpers), not the programs it runs. */
  runtimePids(): number[];
  /** Every process of the tree. */
  treePids(): number[];
  waitFor(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  stop(): Promise<void>;
}

/** Resolves once wakeport serves: its "serving" line, or (when the log level hides it) `readyPort` accepting. */
export async function startWakeport(table: string, args: readonly string[] = [], readyPort?: number): Promise<RunningWakeport> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wakeport-bench-'));
  writeFileSync(path.join(dir, 'services.conf'), table);
  const launcher = start(process.execPath, [cli, 'run', '-f', path.join(dir, 'services.conf'), '--log-format', 'json', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: LogRecord[] = [];
  const waiters = new Set<() => void>();
  let pending = '';
  launcher.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        continue;
      }
    }
    for (const wake of waiters) wake();
  });
  const waitFor = (predicate: (record: LogRecord) => boolean, timeoutMs = 30_000) =>
    new Promise<LogRecord>((resolve, reject) => {
      const check = () => {
        const found = logs.find(predicate);
        if (!found) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`wakeport did not log what was expected within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  try {
    if (readyPort === undefined) await waitFor((r) => r.message.startsWith('serving '));
    else await waitForPort(readyPort);
  } catch (error) {
    await launcher.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const treePids = () => processTree(launcher.pid);
  return {
    launcher,
    logs,
    port(label) {
      const record = logs.find((r) => r.subject === label && r.message.startsWith('listening on'));
      if (typeof record?.port !== 'number') throw new Error(`${label} is not listening`);
      return record.port;
    },
    treePids,
    runtimePids: () => treePids().filter((pid) => /dist\/src\//.test(commandOf(pid))),
    waitFor,
    async stop() {
      await launcher.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
