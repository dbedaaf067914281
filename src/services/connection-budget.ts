// How many client connections the supervisor's internal services may hold
// at once, all together: its open-file limit less a reserve. Past it, libuv
// would meet EMFILE, and then it closes pending connections of every
// service without a word, and the supervisor can no longer start helpers,
// workers or nowait hosts: one flooded echo service would take the others
// down. So a client past the budget is closed at once, and that is logged.

import { readFileSync } from 'node:fs';

/** The most fds kept for the rest (sockets, pipes, helpers, workers); half the limit when that is less. */
const reserveCeiling = 256;

export class ConnectionBudget {
  #held = 0;

  constructor(readonly limit: number) {}

  /** Counts one more connection; false (counting nothing) when the budget is spent. */
  take(): boolean {
    if (this.#held >= this.limit) return false;
    this.#held++;
    return true;
  }

  give(): void {
    this.#held--;
  }
}

/** The process's soft open-file limit (Node raises it to the hard one at start), or null when /proc cannot say. */
function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((text) => text.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || !/^\d+$/.test(soft) ? null : Number(soft);
  } catch {
    return null;
  }
}

function budgetFor(limit: number | null): ConnectionBudget {
  if (limit === null) return new ConnectionBudget(Number.POSITIVE_INFINITY);
  return new ConnectionBudget(limit - Math.min(reserveCeiling, Math.floor(limit / 2)));
}

/** The one budget of this process. */
export const connectionBudget = budgetFor(openFileLimit());
