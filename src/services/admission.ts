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
// A newcomer the limits let in at once refuses no one: it is served.

import { EarliestFirst, Line } from './lines.js';

export interface AdmissionLimits {
  readonly maxConnections: number | null;
  readonly maxPerSource: number | null;
  readonly queueLimit: number;
}

interface Waiting<T> {
  readonly client: T;
  readonly source: string;
}

/** That the first waiting client of `source` came as the `arrival`th. */
interface FirstNote {
  readonly arrival: number;
  readonly source: string;
}

interface Entry<T> extends Waiting<T> {
  readonly arrival: number;
  /** Out of the queue: admitted, refused or taken. #arrivals may still hold it. */
  left: boolean;
}

// Each waiting client is in two lines: every client in the order they came
// (#arrivals), and its address's own (#bySource). The newest client of the
// most crowded address is the last of that address's line. With
// max-per-source, the next client to admit is the earliest of the first
// clients of the addresses with room (#firsts), so that a flood at its
// limit is never walked past at each admit.
export class Admission<T> {
  #active = 0;
  readonly #perSource = new Map<string, number>();
  /** The waiting clients in the order they came; one taken from the middle stays (left) until they are a third of the line. */
  #arrivals = new Line<Entry<T>>();
  #waiting = 0;
  #arrived = 0;
  readonly #bySource = new Map<string, Line<Entry<T>>>();
  readonly #crowding = new WaitingCounts();
  /**
   * With max-per-source: when the first waiting client of each address with
   * room came, and stale notes (that client has left) passed over when they
   * come out. Notes, not the clients: a stale one keeps no connection alive.
   */
  readonly #firsts = new EarliestFirst<FirstNote>();

  constructor(readonly limits: AdmissionLimits) {}

  get waiting(): number {
    return this.#waiting;
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
   * returns null. `admitsNext`: the caller admits right after (it is not
   * held back, as by a spawn limit); then a newcomer the limits let in now
   * refuses no one, even when the queue is full: those waiting are all
   * held back by the limits, and it is served at once.
   */
  offer(client: T, source: string, admitsNext = true): T | null {
    let refused: T | null = null;
    if (this.queueFull && !(admitsNext && this.#admissibleNow(source))) {
      const crowded = this.#crowding.most();
      if (crowded === null || crowded.count <= this.#waitingFrom(source) + 1) return client;
      refused = this.#takeOut(this.#bySource.get(crowded.source)!.last()!).client;
    }
    this.#enqueue(client, source);
    return refused;
  }

  /** Takes the first queued client the limits let in now, counting it as active. */
  admit(): Waiting<T> | undefined {
    if (this.full || this.waiting === 0) return undefined;
    // Without a per-source limit the first in the queue goes, and nobody needs counting by source.
    const limited = this.limits.maxPerSource !== null;
    const admitted = limited ? this.#earliestWithRoom() : this.#arrivals.first();
    if (admitted === undefined) return undefined;
    this.#active++;
    if (limited) count(this.#perSource, admitted.source, +1);
    this.#takeOut(admitted);
    return admitted;
  }

  /** A client admitted earlier is done. */
  release(source: string): void {
    this.#active--;
    if (this.limits.maxPerSource === null) return;
    count(this.#perSource, source, -1);
    // Its address may have room again: its first waiting client is a candidate once more.
    this.#offerFirstOf(source);
  }

  /** Takes out of the queue, and returns, the waiting clients `gone` says have gone. One pass: the queue may hold 65535. */
  withdrawWhere(gone: (client: T) => boolean): T[] {
    const withdrawn: T[] = [];
    const kept: Waiting<T>[] = [];
    for (const entry of this.#stillWaiting()) {
      if (gone(entry.client)) withdrawn.push(entry.client);
      else kept.push(entry);
    }
    this.#clear();
    for (const { client, source } of kept) this.#enqueue(client, source);
    return withdrawn;
  }

  /** Takes the newest waiting client out of the queue, if any. */
  takeNewest(): T | undefined {
    const newest = this.#arrivals.last();
    return newest === undefined ? undefined : this.#takeOut(newest).client;
  }

  /** Empties the queue, returning who was waiting. */
  takeQueue(): T[] {
    const clients = [...this.#stillWaiting()].map(({ client }) => client);
    this.#clear();
    return clients;
  }

  #enqueue(client: T, source: string): void {
    const entry: Entry<T> = { client, source, arrival: this.#arrived++, left: false };
    this.#arrivals.push(entry);
    let line = this.#bySource.get(source);
    if (line === undefined) this.#bySource.set(source, (line = new Line()));
    line.push(entry);
    this.#waiting++;
    this.#crowding.moved(source, line.size - 1, line.size);
    if (line.size === 1) this.#offerFirstOf(source);
  }

  /**
   * Takes a waiting client out: the first or the last of its address's
   * line, as every caller's is (the earliest waiting, the earliest of an
   * address with room, the newest, the newest of an address).
   */
  #takeOut(entry: Entry<T>): Entry<T> {
    entry.left = true;
    this.#waiting--;
    const line = this.#bySource.get(entry.source)!;
    const wasFirst = line.first() === entry;
    if (wasFirst) line.shift();
    else line.pop();
    this.#crowding.moved(entry.source, line.size + 1, line.size);
    if (line.size === 0) this.#bySource.delete(entry.source);
    else if (wasFirst) this.#offerFirstOf(entry.source);
    this.#tidyArrivals();
    if (this.#waiting === 0) this.#firsts.clear();
    return entry;
  }

  /** Keeps #arrivals' ends on waiting clients, and lets go of the left ones in the middle once they are a third of it. */
  #tidyArrivals(): void {
    while (this.#arrivals.first()?.left) this.#arrivals.shift();
    while (this.#arrivals.last()?.left) this.#arrivals.pop();
    if (this.#arrivals.size > this.#waiting * 1.5 + 16) this.#arrivals.filter((entry) => !entry.left);
  }

  #earliestWithRoom(): Entry<T> | undefined {
    for (let note = this.#firsts.pop(); note !== undefined; note = this.#firsts.pop()) {
      // A stale note (its client has left) is dropped. A note is made only while its address has room, and the
      // address fills only when its first is admitted, which makes that note stale: a current one has room.
      const first = this.#bySource.get(note.source)?.first();
      if (first?.arrival === note.arrival) return first;
    }
    return undefined;
  }

  #offerFirstOf(source: string): void {
    if (this.limits.maxPerSource === null || !this.#hasRoom(source)) return;
    const first = this.#bySource.get(source)?.first();
    if (first === undefined) return;
    this.#firsts.push({ arrival: first.arrival, source });
    // Stale notes pile up while nobody is admitted (evictions, releases): past twice the addresses waiting, start afresh.
    if (this.#firsts.size > 2 * this.#bySource.size + 16) this.#noteFirstsAfresh();
  }

  #noteFirstsAfresh(): void {
    this.#firsts.clear();
    for (const [source, line] of this.#bySource) {
      if (this.#hasRoom(source)) this.#firsts.push({ arrival: line.first()!.arrival, source });
    }
  }

  /** Whether a client from `source` would be admitted now if nobody waited before it. */
  #admissibleNow(source: string): boolean {
    return !this.full && (this.limits.maxPerSource === null || this.#hasRoom(source));
  }

  #hasRoom(source: string): boolean {
    return (this.#perSource.get(source) ?? 0) < this.limits.maxPerSource!;
  }

  #waitingFrom(source: string): number {
    return this.#bySource.get(source)?.size ?? 0;
  }

  *#stillWaiting(): IterableIterator<Entry<T>> {
    for (const entry of this.#arrivals) if (!entry.left) yield entry;
  }

  #clear(): void {
    this.#arrivals = new Line();
    this.#waiting = 0;
    this.#bySource.clear();
    this.#crowding.clear();
    this.#firsts.clear();
  }
}

/**
 * Which addresses have how many clients waiting, so that one with the most
 * is found without looking at every address.
 */
class WaitingCounts {
  /** The addresses with each count, from 1 up to the highest. */
  readonly #withCount: Set<string>[] = [];

  /** `source` had `from` clients waiting and now has `to`. */
  moved(source: string, from: number, to: number): void {
    if (from > 0) this.#withCount[from - 1]!.delete(source);
    if (to > 0) (this.#withCount[to - 1] ??= new Set()).add(source);
    while (this.#withCount.length > 0 && this.#withCount.at(-1)!.size === 0) this.#withCount.pop();
  }

  most(): { source: string; count: number } | null {
    const top = this.#withCount.at(-1);
    if (top === undefined) return null;
    const [source] = top;
    return { source: source!, count: this.#withCount.length };
  }

  clear(): void {
    this.#withCount.length = 0;
  }
}

/** Adds `delta` to a per-address count, forgetting addresses that reach 0. */
function count(counts: Map<string, number>, source: string, delta: number): void {
  const next = (counts.get(source) ?? 0) + delta;
  if (next <= 0) counts.delete(source);
  else counts.set(source, next);
}
