// Who is served now and who waits: at most `maxConnections` clients at once,
// at most `maxPerSource` from one address, and the rest in a first-come queue
// of at most `queueLimit`. Clients beyond the limits wait here, already
// accepted but unread, instead of in the kernel's backlog: a per-source limit
// needs to know who a client is, and Node's public API cannot stop a
// listening socket from accepting (NODE-FACTS 5).
//
// When the queue is full, the client refused is the newest of the address
// that has the most clients waiting, if it has at least two more than the
// newcomer's address, or else the newcomer: one address flooding a service
// cannot crowd out the others' clients (which is what max-per-source is for).

export interface AdmissionLimits {
  readonly maxConnections: number | null;
  readonly maxPerSource: number | null;
  readonly queueLimit: number;
}

interface Waiting<T> {
  readonly client: T;
  readonly source: string;
}

export class Admission<T> {
  #active = 0;
  readonly #perSource = new Map<string, number>();
  readonly #queuedPerSource = new WaitingCounts();
  /** The queue is #queue from #head on: taking the first client moves #head instead of shifting 65535 entries. */
  #queue: Waiting<T>[] = [];
  #head = 0;

  constructor(readonly limits: AdmissionLimits) {}

  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** Whether the queue holds as many clients as it may: the next one offered refuses someone. */
  get queueFull(): boolean {
    return this.waiting >= this.limits.queueLimit;
  }

  /** Whether max-connections clients are being served. */
  get full(): boolean {
    return this.limits.maxConnections !== null && this.#active >= this.limits.maxConnections;
  }

  /**
   * Queues a client. When the queue is full, returns the client to refuse
   * (the caller closes it and says why): the newest waiting client of the
   * address with the most waiting, if that address would still have at
   * least as many waiting as this one's after the swap; otherwise this one
   * (a swap that only moves the surplus from one address to the other
   * would refuse a client that waited longer, for nothing). Otherwise
   * returns null.
   */
  offer(client: T, source: string): T | null {
    let refused: T | null = null;
    if (this.queueFull) {
      const crowded = this.#queuedPerSource.most();
      if (crowded === null || crowded.count <= this.#queuedPerSource.of(source) + 1) return client;
      let newest = this.#queue.length - 1;
      while (this.#queue[newest]!.source !== crowded.source) newest--;
      refused = this.#take(newest).client;
    }
    this.#queue.push({ client, source });
    this.#queuedPerSource.add(source, +1);
    return refused;
  }

  /** Takes the first queued client the limits let in now, counting it as active. */
  admit(): Waiting<T> | undefined {
    if (this.full || this.waiting === 0) return undefined;
    // Without a per-source limit the first in the queue goes, and nobody needs counting by source.
    const max = this.limits.maxPerSource;
    const index = max === null ? this.#head : this.#firstIndexWhere(({ source }) => (this.#perSource.get(source) ?? 0) < max);
    if (index === -1) return undefined;
    const admitted = this.#take(index);
    this.#active++;
    if (max !== null) count(this.#perSource, admitted.source, +1);
    return admitted;
  }

  /** A client admitted earlier is done. */
  release(source: string): void {
    this.#active--;
    if (this.limits.maxPerSource !== null) count(this.#perSource, source, -1);
  }

  /** Takes out of the queue, and returns, the waiting clients `gone` says have gone. One pass: the queue may hold 65535. */
  withdrawWhere(gone: (client: T) => boolean): T[] {
    const withdrawn: T[] = [];
    const kept: Waiting<T>[] = [];
    for (let index = this.#head; index < this.#queue.length; index++) {
      const waiting = this.#queue[index]!;
      if (!gone(waiting.client)) kept.push(waiting);
      else {
        withdrawn.push(waiting.client);
        this.#queuedPerSource.add(waiting.source, -1);
      }
    }
    this.#queue = kept;
    this.#head = 0;
    return withdrawn;
  }

  /** Takes the newest waiting client out of the queue, if any. */
  takeNewest(): T | undefined {
    return this.waiting === 0 ? undefined : this.#take(this.#queue.length - 1).client;
  }

  /** Empties the queue, returning who was waiting. */
  takeQueue(): T[] {
    const clients = this.#queue.slice(this.#head).map(({ client }) => client);
    this.#queue = [];
    this.#head = 0;
    this.#queuedPerSource.clear();
    return clients;
  }

  #firstIndexWhere(test: (waiting: Waiting<T>) => boolean): number {
    for (let index = this.#head; index < this.#queue.length; index++) if (test(this.#queue[index]!)) return index;
    return -1;
  }

  /** Takes out the entry at `index` of #queue (an index at or past #head). */
  #take(index: number): Waiting<T> {
    const taken = this.#queue[index]!;
    if (index === this.#head) this.#advanceHead();
    else this.#queue.splice(index, 1);
    this.#queuedPerSource.add(taken.source, -1);
    return taken;
  }

  #advanceHead(): void {
    this.#head++;
    if (this.#head === this.#queue.length) {
      // Emptied, as after most admits: nothing to copy.
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head * 2 >= this.#queue.length) {
      // Let go of the taken entries once they are half the array: each entry is copied at most once.
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}

/**
 * How many clients each address has waiting, and an address with the most,
 * found without looking at every address: a full queue may hold 65535
 * clients from as many addresses, and a flood offers one at each arrival.
 */
class WaitingCounts {
  readonly #counts = new Map<string, number>();
  /** The addresses with each count, from 1 up to the highest. */
  readonly #withCount: Set<string>[] = [];

  of(source: string): number {
    return this.#counts.get(source) ?? 0;
  }

  add(source: string, delta: 1 | -1): void {
    const before = this.of(source);
    const after = before + delta;
    if (before > 0) this.#withCount[before - 1]!.delete(source);
    if (after > 0) {
      (this.#withCount[after - 1] ??= new Set()).add(source);
      this.#counts.set(source, after);
    } else this.#counts.delete(source);
    while (this.#withCount.length > 0 && this.#withCount.at(-1)!.size === 0) this.#withCount.pop();
  }

  most(): { source: string; count: number } | null {
    const top = this.#withCount.at(-1);
    if (top === undefined) return null;
    const [source] = top;
    return { source: source!, count: this.#withCount.length };
  }

  clear(): void {
    this.#counts.clear();
    this.#withCount.length = 0;
  }
}

/** Adds `delta` to a per-address count, forgetting addresses that reach 0. */
function count(counts: Map<string, number>, source: string, delta: number): void {
  const next = (counts.get(source) ?? 0) + delta;
  if (next <= 0) counts.delete(source);
  else counts.set(source, next);
}
