// How many client connections one process's services may hold at once, all
// together: its open-file limit less a reserve. In the supervisor these are
// the internal services' clients; in a nowait host, the connections waiting
// for a program (and those being refused). Past it, libuv would meet
// EMFILE, and then it closes pending connections of every service without a
// word, and the process can no longer start anything (the supervisor its
// helpers, workers and hosts; a host its programs): one flooded service
// would take the others down. So a client past the budget is closed at
// once, and that is logged.

import { readFileSync } from 'node:fs';

/** The most fds kept for the rest (sockets, pipes, helpers, workers, programs being started); half the limit when that is less. */
const reserveCeiling = 256;

/** A service whose connections count in the budget. */
export interface BudgetHolder {
  /**
   * Closes its newest connection that it may give up (an internal service:
   * one still waiting, else one being served; a nowait host: one still
   * waiting), gives its place back at once, and says so; false when it has
   * none.
   */
  evictNewest(): boolean;
}

export class ConnectionBudget {
  #held = 0;
  readonly #byHolder = new Map<BudgetHolder, number>();

  constructor(readonly limit: number) {}

  /**
   * Counts one more connection of `holder`; false (counting nothing) when
   * the budget is spent and no service holds at least two more than
   * `holder` does (so that two flooded services do not trade places).
   */
  take(holder: BudgetHolder): boolean {
    if (this.#held >= this.limit && !this.#makeRoomFor(holder)) return false;
    this.#held++;
    this.#byHolder.set(holder, this.#holding(holder) + 1);
    return true;
  }

  give(holder: BudgetHolder): void {
    this.#held--;
    const left = this.#holding(holder) - 1;
    if (left > 0) this.#byHolder.set(holder, left);
    else this.#byHolder.delete(holder);
  }

  #holding(holder: BudgetHolder): number {
    return this.#byHolder.get(holder) ?? 0;
  }

  /**
   * With the budget spent, a client of a service that holds fewer takes the
   * place of the newest connection of the service that holds the most: one
   * flooded service cannot lock the others out (as Admission does for one
   * address within a service).
   */
  #makeRoomFor(holder: BudgetHolder): boolean {
    let most: BudgetHolder | null = null;
    for (const candidate of this.#byHolder.keys()) if (most === null || this.#holding(candidate) > this.#holding(most)) most = candidate;
    if (most === null || this.#holding(most) <= this.#holding(holder) + 1) return false;
    return most.evictNewest();
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
