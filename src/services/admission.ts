// Who is served now and who waits: at most `maxConnections` clients at once,
// at most `maxPerSource` from one address, and the rest in a first-come queue
// of at most `queueLimit`. Clients beyond the limits wait here, already
// accepted but unread, instead of in the kernel's backlog: a per-source limit
// needs to know who a client is, and Node's public API cannot stop a
// listening socket from accepting (NODE-FACTS 5).
//
// When the queue is full, the client refused is one of the address that has
// the most clients waiting: one address flooding a service cannot crowd out
// the others' clients (which is what max-per-source is for).

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
  /** How many clients each address has in the queue. */
  readonly #queuedPerSource = new Map<string, number>();
  #queue: Waiting<T>[] = [];

  constructor(readonly limits: AdmissionLimits) {}

  get waiting(): number {
    return this.#queue.length;
  }

  /** Whether the queue holds as many clients as it may: the next one offered refuses someone. */
  get queueFull(): boolean {
    return this.#queue.length >= this.limits.queueLimit;
  }

  /** Whether max-connections clients are being served. */
  get full(): boolean {
    return this.limits.maxConnections !== null && this.#active >= this.limits.maxConnections;
  }

  /**
   * Queues a client. When the queue is full, returns the client to refuse
   * (the caller closes it and says why): this one, or the newest waiting
   * client of the address with the most waiting, if that address has more
   * waiting than this one's. Otherwise returns null.
   */
  offer(client: T, source: string): T | null {
    let refused: T | null = null;
    if (this.queueFull) {
      const crowded = this.#mostWaiting();
      if (crowded === null || crowded.count <= (this.#queuedPerSource.get(source) ?? 0)) return client;
      let newest = this.#queue.length - 1;
      while (this.#queue[newest]!.source !== crowded.source) newest--;
      refused = this.#take(newest).client;
    }
    this.#queue.push({ client, source });
    count(this.#queuedPerSource, source, +1);
    return refused;
  }

  /** Takes the first queued client the limits let in now, counting it as active. */
  admit(): Waiting<T> | undefined {
    if (this.full) return undefined;
    // Without a per-source limit the first in the queue goes, and nobody needs counting by source.
    const max = this.limits.maxPerSource;
    const index = max === null ? 0 : this.#queue.findIndex(({ source }) => (this.#perSource.get(source) ?? 0) < max);
    if (index === -1 || this.#queue.length === 0) return undefined;
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
    for (const waiting of this.#queue) {
      if (!gone(waiting.client)) kept.push(waiting);
      else {
        withdrawn.push(waiting.client);
        count(this.#queuedPerSource, waiting.source, -1);
      }
    }
    this.#queue = kept;
    return withdrawn;
  }

  /** Takes the newest waiting client out of the queue, if any. */
  takeNewest(): T | undefined {
    return this.#queue.length === 0 ? undefined : this.#take(this.#queue.length - 1).client;
  }

  /** Empties the queue, returning who was waiting. */
  takeQueue(): T[] {
    const clients = this.#queue.map(({ client }) => client);
    this.#queue = [];
    this.#queuedPerSource.clear();
    return clients;
  }

  #take(index: number): Waiting<T> {
    const [taken] = this.#queue.splice(index, 1);
    count(this.#queuedPerSource, taken!.source, -1);
    return taken!;
  }

  #mostWaiting(): { source: string; count: number } | null {
    let most: { source: string; count: number } | null = null;
    for (const [source, waiting] of this.#queuedPerSource) if (!most || waiting > most.count) most = { source, count: waiting };
    return most;
  }
}

/** Adds `delta` to a per-address count, forgetting addresses that reach 0. */
function count(counts: Map<string, number>, source: string, delta: number): void {
  const next = (counts.get(source) ?? 0) + delta;
  if (next <= 0) counts.delete(source);
  else counts.set(source, next);
}
