// A program that cannot be started (ENOENT, EACCES, …) fails for every
// client, maybe thousands of times a second, in whichever nowait host took
// the client. Hosts send each failure to the supervisor, which logs the
// first, counts the rest for a minute, then logs again with the count.

import { existsSync } from 'node:fs';
import type { ServiceEntry } from '../config/entry.js';
import { counted, formatDuration, ReportThrottle, type Logger } from '../log.js';

export interface SpawnFailure {
  readonly type: 'spawn-failure';
  readonly label: string;
  readonly errno: string;
  readonly message: string;
  readonly client: string;
}

export function isSpawnFailure(message: unknown): message is SpawnFailure {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'spawn-failure';
}

const reportEveryMs = 60_000;

export class SpawnFailureLog {
  readonly #throttles = new Map<string, ReportThrottle>();

  constructor(
    readonly entries: ReadonlyMap<string, ServiceEntry>,
    readonly log: Logger,
  ) {}

  add(failure: SpawnFailure): void {
    const entry = this.entries.get(failure.label);
    if (!entry || entry.program.kind !== 'exec') return;
    let throttle = this.#throttles.get(failure.label);
    if (!throttle) {
      const path = entry.program.path;
      const onHeldBack = (count: number) => this.log.error(failure.label, `cannot start ${path}: ${counted(count, 'more failure')} since the last report`);
      this.#throttles.set(failure.label, (throttle = new ReportThrottle(reportEveryMs, onHeldBack)));
    }
    const heldBack = throttle.due();
    if (heldBack === null) return;
    const { errno } = failure;
    const why = explainSpawnFailure(entry, errno, failure.message);
    const more = heldBack > 0 ? `; ${heldBack} more failed since the last report` : '';
    this.log.error(
      failure.label,
      `cannot start ${entry.program.path}: ${errno} ${why}; closed client ${failure.client}${more} ` +
        `(further failures are counted, not logged, for ${formatDuration(reportEveryMs)})`,
      { code: errno },
    );
  }
}

/** Why a program could not be started, in words a user can act on (a spawn's ENOENT may be its cwd's). */
export function explainSpawnFailure(entry: ServiceEntry, errno: string | undefined, message: string): string {
  if (errno === 'ENOENT' && entry.cwd !== null && !existsSync(entry.cwd)) return `its working directory ${entry.cwd} does not exist`;
  if (errno === 'ENOENT') return 'the program does not exist';
  if (errno === 'EACCES') return 'permission denied (is it executable, and may this user run it?)';
  if (errno === 'ENOTDIR') return `a folder on the program's path${entry.cwd === null ? '' : ` or its working directory ${entry.cwd}`} is not a folder`;
  return message;
}
