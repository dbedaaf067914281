// Reloading the table on SIGHUP, as inetd does. The launcher reads the file
// again and reports its problems as at start (under --strict, a table with
// errors is not loaded), then sends the valid entries to the supervisor,
// which changes what runs (service-table.ts) and answers with the services
// to bind: new ones, and those whose sockets changed. The launcher binds
// them as it binds a socket that failed at start (late-sockets.ts), with a
// first try at once. One reload at a time: a SIGHUP during one is done
// after it.

import type { ChildProcess } from 'node:child_process';
import type { ServiceEntry } from '../config/entry.js';
import { loadTable, type Table } from '../config/table.js';
import type { Logger } from '../log.js';
import { hasType } from './hello.js';
import type { BindRetries } from './late-sockets.js';
import { removeSocketFiles } from '../sockets/bind.js';
import type { ServiceTable, Restart, StartPool } from './service-table.js';

interface Reload {
  readonly type: 'reload';
  readonly entries: readonly ServiceEntry[];
}

interface Reloaded {
  readonly type: 'reloaded';
  /** Labels of the services the launcher must bind. */
  readonly toBind: readonly string[];
}

const subject = 'wakeport';

/** What the launcher's reload works with. */
export interface Reloading {
  readonly file: string;
  readonly strict: boolean;
  readonly supervisor: ChildProcess;
  readonly retries: BindRetries;
  /** The unix socket files wakeport made: those of services taken away are removed. */
  readonly socketFiles: string[];
  readonly reportProblems: (table: Table) => void;
  readonly log: Logger;
}

/** Launcher side: reloads the table on each SIGHUP, one reload at a time. Returns a function that stops listening. */
export function reloadOnHangup(reloading: Reloading): () => void {
  const { file, log } = reloading;
  let queue = Promise.resolve();
  const onHangup = () => {
    log.info(subject, `SIGHUP: reloading ${file}`);
    queue = queue.then(() => reload(reloading)).catch((error: unknown) => {
      log.error(subject, `SIGHUP: cannot reload ${file}: ${(error as Error).message}; the table stays as it was`);
    });
  };
  process.on('SIGHUP', onHangup);
  return () => process.off('SIGHUP', onHangup);
}

async function reload({ file, strict, supervisor, retries, socketFiles, reportProblems, log }: Reloading): Promise<void> {
  const table = await loadTable(file);
  reportProblems(table);
  if (strict && table.problems.some((problem) => problem.severity === 'error')) {
    log.error(subject, `SIGHUP: ${file} has errors and --strict is set; the table stays as it was`);
    return;
  }
  if (!supervisor.connected) return;
  const answered = new Promise<Reloaded>((resolve) => {
    const onMessage = (message: unknown) => {
      if (!hasType<Reloaded>(message, 'reloaded')) return;
      supervisor.off('message', onMessage);
      resolve(message);
    };
    supervisor.on('message', onMessage);
  });
  const request: Reload = { type: 'reload', entries: table.entries };
  supervisor.send(request, () => {});
  const { toBind } = await answered;
  // The socket files of services the table no longer has (or has elsewhere) go; those bound again are added back.
  const kept = new Set(table.entries.flatMap(({ label, sockets }) => (toBind.includes(label) ? [] : sockets.map(({ spec }) => (spec.transport === 'unix' ? spec.path : '')))));
  removeSocketFiles(socketFiles.filter((file) => !kept.has(file)));
  socketFiles.splice(0, socketFiles.length, ...socketFiles.filter((file) => kept.has(file)));
  retries.reload(table.entries, toBind);
}

/** Supervisor side: applies each reload the launcher sends, one at a time, and answers with what to bind. */
export function applyReloads(table: ServiceTable, restart: Restart, startPool: StartPool, log: Logger): void {
  let queue = Promise.resolve();
  process.on('message', (message: unknown) => {
    if (!hasType<Reload>(message, 'reload')) return;
    queue = queue.then(async () => {
      const { toBind, settled } = table.reload(message.entries, restart, startPool, log);
      const answer: Reloaded = { type: 'reloaded', toBind };
      process.send?.(answer, () => {});
      await settled;
    });
  });
}
