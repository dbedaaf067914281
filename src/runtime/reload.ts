// Reloading the table on SIGHUP, as inetd does. The launcher reads the file
// again and reports its problems as at start (under --strict, a table with
// errors is not loaded), then sends the valid entries to the supervisor,
// which changes what runs (service-table.ts) and answers with the new
// services to bind; those whose sockets changed it asks for later, once
// their old sockets are let go (a BindRequest). The launcher binds them as
// it binds a socket that failed at start (late-sockets.ts), with a first
// try at once. One reload at a time: a SIGHUP during one is done after it.

import type { ChildProcess } from 'node:child_process';
import type { ServiceEntry } from '../config/entry.js';
import { loadTable, type Table } from '../config/table.js';
import type { Logger } from '../log.js';
import { hasType } from './hello.js';
import type { Inbox } from './lifecycle.js';
import { askToBind, type BindRetries } from './late-sockets.js';
import { removeSocketFiles } from '../sockets/bind.js';
import type { ServiceTable, Starters } from './service-table.js';

interface Reload {
  readonly type: 'reload';
  readonly entries: readonly ServiceEntry[];
}

interface Reloaded {
  readonly type: 'reloaded';
  /** Labels of the services the launcher must bind now (those moved come later, in a BindRequest). */
  readonly toBind: readonly string[];
}

const subject = 'wakeport';

/** What the launcher's reload works with, once the supervisor runs. */
export interface Reloading {
  readonly strict: boolean;
  readonly supervisor: ChildProcess;
  readonly retries: BindRetries;
  /** The unix socket files wakeport made: those of services taken away are removed. */
  readonly socketFiles: string[];
  readonly reportProblems: (table: Table) => void;
}

/**
 * Launcher side: reloads `file` on each SIGHUP, one reload at a time. It
 * listens from the launcher's start (a SIGHUP would kill it otherwise); one
 * that comes before the supervisor runs is done once it does.
 */
export class Hangups {
  readonly #file: string;
  readonly #log: Logger;
  #reloading: Reloading | null = null;
  #pending = false;
  #queue = Promise.resolve();

  constructor(file: string, log: Logger) {
    this.#file = file;
    this.#log = log;
    process.on('SIGHUP', this.#onHangup);
  }

  /** The supervisor runs: reloads can be done (and one asked for before is done now). */
  reloadWith(reloading: Reloading): void {
    this.#reloading = reloading;
    if (this.#pending) this.#enqueue();
  }

  close(): void {
    process.off('SIGHUP', this.#onHangup);
  }

  readonly #onHangup = (): void => {
    this.#log.info(subject, `SIGHUP: reloading ${this.#file}`);
    if (this.#reloading) this.#enqueue();
    else this.#pending = true;
  };

  #enqueue(): void {
    this.#pending = false;
    const reloading = this.#reloading!;
    this.#queue = this.#queue
      .then(() => reload(this.#file, reloading, this.#log))
      .catch((error: unknown) => {
        this.#log.error(subject, `SIGHUP: cannot reload ${this.#file}: ${(error as Error).message}; the table stays as it was`);
      });
  }
}

async function reload(file: string, { strict, supervisor, retries, socketFiles, reportProblems }: Reloading, log: Logger): Promise<void> {
  const table = await loadTable(file);
  reportProblems(table);
  if (strict && table.problems.some((problem) => problem.severity === 'error')) {
    log.error(subject, `SIGHUP: ${file} has errors and --strict is set; the table stays as it was`);
    return;
  }
  if (!supervisor.connected) return;
  const request: Reload = { type: 'reload', entries: table.entries };
  const answer = await ask(supervisor, request);
  if (!answer) return; // The supervisor exited.
  const { toBind } = answer;
  // The socket files of services the table no longer has (or has elsewhere) go; those bound again are added back.
  const kept = new Set(
    table.entries.flatMap(({ label, sockets }) =>
      toBind.includes(label) ? [] : sockets.flatMap(({ spec }) => (spec.transport === 'unix' ? [spec.path] : [])),
    ),
  );
  removeSocketFiles(socketFiles.filter((path) => !kept.has(path)));
  socketFiles.splice(0, socketFiles.length, ...socketFiles.filter((path) => kept.has(path)));
  retries.reload(table.entries, toBind);
}

/** Sends a reload and resolves with the supervisor's answer, or null if it exits first. */
function ask(supervisor: ChildProcess, request: Reload): Promise<Reloaded | null> {
  return new Promise((resolve) => {
    const done = (answer: Reloaded | null) => {
      supervisor.off('message', onMessage).off('exit', onExit);
      resolve(answer);
    };
    const onMessage = (message: unknown) => {
      if (hasType<Reloaded>(message, 'reloaded')) done(message);
    };
    const onExit = () => done(null);
    supervisor.on('message', onMessage).once('exit', onExit);
    supervisor.send(request, () => {});
  });
}

/** Supervisor side: applies each reload the launcher sends, one at a time once `ready`, and answers with what to bind. */
export function applyReloads(inbox: Inbox, table: ServiceTable, starters: Starters, ready: Promise<void>, log: Logger): void {
  let queue = ready;
  inbox.listen((message) => {
    if (!hasType<Reload>(message, 'reload')) return;
    queue = queue.then(async () => {
      const { toBind, moved, released, settled } = table.reload(message.entries, starters, log);
      const answer: Reloaded = { type: 'reloaded', toBind };
      process.send?.(answer, () => {});
      // A moved service's new sockets are bound once its old ones are let go: they may be on the same address.
      await released;
      const stillMoved = message.entries.filter(({ label }) => moved.includes(label) && !table.has(label));
      if (stillMoved.length > 0) askToBind(stillMoved);
      await settled;
    });
  });
}
