// The two orders admission.ts keeps its waiting clients in, each with no
// operation that walks the whole line: a full queue may hold 65535 clients,
// and a flood offers one at each arrival.

/** First in, first out, and the last can be taken back: an array and the index of its first entry. */
export class Line<E> {
  #items: E[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  first(): E | undefined {
    return this.size === 0 ? undefined : this.#items[this.#head];
  }

  last(): E | undefined {
    return this.size === 0 ? undefined : this.#items.at(-1);
  }

  push(item: E): void {
    this.#items.push(item);
  }

  shift(): E | undefined {
    if (this.size === 0) return undefined;
    const item = this.#items[this.#head]!;
    // Let go of it now, not at the next rebase: it may be a closed connection's.
    this.#items[this.#head++] = undefined as E;
    if (this.#head === this.#items.length) this.#reset();
    // Moving the head instead of shifting the array; the taken entries are let go once they are half of it, so each is copied at most once.
    else if (this.#head * 2 >= this.#items.length) this.#rebase();
    return item;
  }

  pop(): E | undefined {
    if (this.size === 0) return undefined;
    const item = this.#items.pop()!;
    if (this.size === 0) this.#reset();
    return item;
  }

  /** Keeps only the entries `keep` says to, in order. */
  filter(keep: (item: E) => boolean): void {
    this.#items = this.#items.slice(this.#head).filter(keep);
    this.#head = 0;
  }

  *[Symbol.iterator](): IterableIterator<E> {
    for (let index = this.#head; index < this.#items.length; index++) yield this.#items[index]!;
  }

  #reset(): void {
    this.#items.length = 0;
    this.#head = 0;
  }

  #rebase(): void {
    this.#items = this.#items.slice(this.#head);
    this.#head = 0;
  }
}

/** Entries by their arrival number, the earliest first: a binary heap. */
export class EarliestFirst<E extends { readonly arrival: number }> {
  readonly #heap: E[] = [];

  get size(): number {
    return this.#heap.length;
  }

  push(entry: E): void {
    const heap = this.#heap;
    let index = heap.push(entry) - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent]!.arrival <= entry.arrival) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = entry;
  }

  pop(): E | undefined {
    const heap = this.#heap;
    const earliest = heap[0];
    const moved = heap.pop();
    if (heap.length === 0 || moved === undefined) return earliest;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.arrival < heap[left]!.arrival ? right : left;
      if (moved.arrival <= heap[child]!.arrival) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = moved;
    return earliest;
  }

  clear(): void {
    this.#heap.length = 0;
  }
}
