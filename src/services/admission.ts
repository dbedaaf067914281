// Who is served now and who waits: at most `maxConnections` clients at once,
// at most `maxPerSource` from one address, and the rest in a first-come queue
// of at most `queueLimit`. Node cannot stop a listening socket from accepting
// (NODE-FACTS 5), so clients beyond the limits wait here, already accepted
// but unread, instead of in the kernel's backlog.

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
  #queue: Waiting<T>[] = [];

  constructor(readonly limits: AdmissionLimits) {}

  get waiting(): number {
    return this.#queue.length;
  }

  /** Queues a client; false when the queue is full (the caller refuses it and says why). */
  offer(client: T, source: string): boolean {
    if (this.#queue.length >= this.limits.queueLimit) return false;
    this.#queue.push({ client, source });
    return true;
  }

  /** Takes the first queued client the limits let in now, counting it as active. */
  admit(): Waiting<T> | undefined {
    if (this.limits.maxConnections !== null && this.#active >= this.limits.maxConnections) return undefined;
    // Without a per-source limit the first in the queue goes, and nobody needs counting by source.
    if (this.limits.maxPerSource === null) {
      const admitted = this.#queue.shift();
      if (admitted) this.#active++;
      return admitted;
    }
    const max = this.limits.maxPerSource;
    const index = this.#queue.findIndex(({ source }) => (this.#perSource.get(source) ?? 0) < max);
    if (index === -1) return undefined;
    const [admitted] = this.#queue.splice(index, 1);
    this.#active++;
    this.#perSource.set(admitted!.source, (this.#perSource.get(admitted!.source) ?? 0) + 1);
    return admitted;
  }

  /** A client admitted earlier is done. */
  release(source: string): void {
    this.#active--;
    if (this.limits.maxPerSource === null) return;
    const count = (this.#perSource.get(source) ?? 1) - 1;
    if (count === 0) this.#perSource.delete(source);
    else this.#perSource.set(source, count);
  }

  /** Empties the queue, returning who was waiting. */
  takeQueue(): T[] {
    const clients = this.#queue.map(({ client }) => client);
    this.#queue = [];
    return clients;
  }
}
