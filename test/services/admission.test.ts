// The waiting queue's bookkeeping when clients that went are taken out of
// it: order kept, and the per-address counts the crowding rule uses.
// Also the crowding rule itself, a long queue drained from its head, and
// long random runs of every operation checked against a plain array
// searched at each step (the queue itself never searches).

import v8 from 'node:v8';
import vm from 'node:vm';
import t from 'tap';
import { Admission } from '../../src/services/admission.js';

t.test('withdrawWhere takes out the gone clients, keeps the order of the rest, and their addresses are counted right after', async (t) => {
  const admission = new Admission<string>({ maxConnections: 1, maxPerSource: null, queueLimit: 3 });
  admission.offer('busy', 'x');
  t.equal(admission.admit()?.client, 'busy');
  for (const [client, source] of [['a1', 'a'], ['a2', 'a'], ['b1', 'b']] as const) t.equal(admission.offer(client, source), null);
  t.ok(admission.queueFull);
  t.same(admission.withdrawWhere((client) => client.startsWith('a')), ['a1', 'a2']);
  t.notOk(admission.queueFull);
  t.equal(admission.offer('a3', 'a'), null, 'the places a1 and a2 left are free');
  t.equal(admission.offer('b2', 'b'), null);
  // b has two waiting and a one: taking b's place would leave a with two and b with one, no fairer.
  t.equal(admission.offer('a4', 'a'), 'a4', 'a newcomer that would only swap which address has more is refused');
  t.equal(admission.offer('c1', 'c'), 'b2', 'the address with the most waiting gives up its newest to an address with none');
  admission.release('x');
  t.equal(admission.admit()?.client, 'b1', 'the rest are served in the order they came');
  t.equal(admission.admit(), undefined, 'one at a time');
});

t.test('a long queue is served in order and counted right as it drains and refills', async (t) => {
  const admission = new Admission<number>({ maxConnections: null, maxPerSource: null, queueLimit: 1000 });
  // Offered as by a caller held back (a spawn limit): without limits, one that admits next would serve every newcomer.
  const offered = (from: number, to: number, source: (client: number) => string) =>
    Array.from({ length: to - from }, (_, index) => admission.offer(from + index, source(from + index), false));
  t.ok(offered(0, 1000, (client) => `s${client % 10}`).every((refused) => refused === null));
  const served: number[] = [];
  for (let client = 0; client < 700; client++) served.push(admission.admit()!.client);
  t.same(served, Array.from({ length: 700 }, (_, client) => client), 'first come, first served');
  t.ok(offered(1000, 1700, () => 'flood').every((refused) => refused === null));
  t.ok(admission.queueFull);
  t.equal(admission.waiting, 1000);
  // 700 from the flood, 30 from each other address: the flood gives up its newest to a newcomer.
  t.equal(admission.offer(2000, 'new', false), 1699);
  t.equal(admission.offer(2001, 's3', false), 1698, 'and to an address with 30 waiting');
  t.equal(admission.takeNewest(), 2001);
  const rest = admission.takeQueue();
  t.same(rest.slice(0, 3), [700, 701, 702], 'the oldest still wait first');
  t.same(rest.slice(-2), [1697, 2000]);
  t.equal(admission.waiting, 0);
  t.equal(admission.offer(1, 'new'), null, 'an emptied queue counts nobody');
});

t.test('a full queue refuses no one for a newcomer the limits let in now: it is served at once (found by a reviewer)', async (t) => {
  // Every address waiting is at its per-source limit; a new address has room, and so does max-connections.
  const perSource = new Admission<string>({ maxConnections: 10, maxPerSource: 1, queueLimit: 2 });
  for (const client of ['a1', 'b1', 'a2', 'b2']) {
    t.equal(perSource.offer(client, client[0]!), null);
    perSource.admit();
  }
  t.ok(perSource.queueFull, 'a2 and b2 wait');
  t.equal(perSource.offer('c1', 'c'), null, 'c1 is not refused');
  t.equal(perSource.admit()?.client, 'c1', 'it is served at once');
  t.same(perSource.takeQueue(), ['a2', 'b2'], 'and nobody lost a place');
  // One address fills the queue at its limit; another's client takes no one's place either.
  const flood = new Admission<string>({ maxConnections: 4, maxPerSource: 2, queueLimit: 8 });
  for (let client = 0; client < 10; client++) {
    flood.offer(`f${client}`, 'flood');
    flood.admit();
  }
  t.equal(flood.offer('other', 'other'), null);
  t.equal(flood.admit()?.client, 'other');
  t.equal(flood.waiting, 8, "the flood's eight still wait");
  // Held back (a spawn limit), the same newcomer goes through the crowding rule.
  t.equal(flood.offer('held', 'other', false), 'f9', "held back, it takes the crowded address's newest place");
});

t.test('clients already served are out of the queue for good: withdrawing and per-address admits look only at those still waiting', async (t) => {
  const admission = new Admission<string>({ maxConnections: null, maxPerSource: 1, queueLimit: 20 });
  for (const client of ['a1', 'b1', 'a2', 'c1', 'd1', 'e1', 'f1', 'g1']) admission.offer(client, client[0]!);
  t.equal(admission.admit()?.client, 'a1');
  t.equal(admission.admit()?.client, 'b1');
  t.equal(admission.admit()?.client, 'c1', 'a2 waits while a1 is served');
  admission.release('a');
  t.equal(admission.admit()?.client, 'a2', 'and goes once a1 is done; a1 is not served twice');
  t.same(admission.withdrawWhere(() => true), ['d1', 'e1', 'f1', 'g1'], 'only those still waiting are withdrawn');
  t.equal(admission.waiting, 0);
});

/** What the queue must do, the slow and obvious way: one array in arrival order, searched at each step. */
class Reference {
  queue: { client: number; source: string }[] = [];
  active = new Map<string, number>();
  activeCount = 0;

  constructor(readonly limits: { maxConnections: number | null; maxPerSource: number | null; queueLimit: number }) {}

  waitingFrom(source: string): number {
    return this.queue.filter((waiting) => waiting.source === source).length;
  }

  admissible(source: string): boolean {
    const full = this.limits.maxConnections !== null && this.activeCount >= this.limits.maxConnections;
    return !full && (this.limits.maxPerSource === null || (this.active.get(source) ?? 0) < this.limits.maxPerSource);
  }

  /** Who a full queue may refuse for a newcomer: nobody, when it is served at once; else the newcomer, or the newest of one of the most crowded addresses. */
  refusable(client: number, source: string, admitsNext: boolean): (number | null)[] {
    if (admitsNext && this.admissible(source)) return [null];
    const sources = [...new Set(this.queue.map((waiting) => waiting.source))];
    const most = Math.max(...sources.map((other) => this.waitingFrom(other)));
    if (most <= this.waitingFrom(source) + 1) return [client];
    return sources.filter((other) => this.waitingFrom(other) === most).map((other) => this.queue.findLast((waiting) => waiting.source === other)!.client);
  }

  nextToAdmit(): number | undefined {
    if (this.limits.maxConnections !== null && this.activeCount >= this.limits.maxConnections) return undefined;
    const max = this.limits.maxPerSource;
    return this.queue.find(({ source }) => max === null || (this.active.get(source) ?? 0) < max)?.client;
  }

  remove(client: number): { client: number; source: string } {
    const index = this.queue.findIndex((waiting) => waiting.client === client);
    return this.queue.splice(index, 1)[0]!;
  }

  countActive(source: string, delta: number): void {
    this.activeCount += delta;
    this.active.set(source, (this.active.get(source) ?? 0) + delta);
  }
}

t.test('random offers, admits, releases, withdrawals and evictions give what the slow obvious queue gives', async (t) => {
  let seed = 12345;
  const random = (below: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    // The high bits: a power-of-two LCG's low bits repeat within a few steps.
    return Math.floor((seed / 2 ** 31) * below);
  };
  const settings = [
    { maxConnections: null, maxPerSource: 1, queueLimit: 6 },
    { maxConnections: 4, maxPerSource: 2, queueLimit: 8 },
    { maxConnections: 3, maxPerSource: null, queueLimit: 5 },
    { maxConnections: null, maxPerSource: 3, queueLimit: 40 },
  ];
  const seen = { newcomerRefused: 0, crowdedRefused: 0, servedPastFullQueue: 0, admitted: 0, blocked: 0, withdrawn: 0 };
  for (const limits of settings) {
    const admission = new Admission<number>(limits);
    const reference = new Reference(limits);
    const served: { client: number; source: string }[] = [];
    let next = 0;
    let step = 0;
    const admitStep = (): string | null => {
      const expected = reference.nextToAdmit();
      const admitted = admission.admit();
      if (admitted?.client !== expected) return `step ${step}: admitted ${admitted?.client}, expected ${expected}`;
      if (expected === undefined) {
        if (reference.queue.length > 0) seen.blocked++;
        return null;
      }
      seen.admitted++;
      served.push(reference.remove(expected));
      reference.countActive(admitted!.source, +1);
      return null;
    };
    for (; step < 20_000; step++) {
      const choice = random(100);
      if (choice < 45) {
        const client = next++;
        const source = `s${random(5)}`;
        // Mostly as a serving caller does (admit right after), at times as one held back by a spawn limit.
        const admitsNext = random(4) !== 0;
        const full = reference.queue.length >= limits.queueLimit;
        const allowed = full ? reference.refusable(client, source, admitsNext) : [null];
        const refused = admission.offer(client, source, admitsNext);
        if (!allowed.includes(refused)) return t.fail(`step ${step}: offer of ${client} from ${source} refused ${refused}; allowed ${allowed}`);
        if (refused === client) seen.newcomerRefused++;
        else if (refused !== null) seen.crowdedRefused++;
        else if (full) seen.servedPastFullQueue++;
        if (refused !== client) reference.queue.push({ client, source });
        if (refused !== null && refused !== client) reference.remove(refused);
        const failure = admitsNext ? admitStep() : null;
        if (failure !== null) return t.fail(failure);
      } else if (choice < 80) {
        const failure = admitStep();
        if (failure !== null) return t.fail(failure);
      } else if (choice < 95) {
        if (served.length === 0) continue;
        const { source } = served.splice(random(served.length), 1)[0]!;
        admission.release(source);
        reference.countActive(source, -1);
      } else if (choice < 98) {
        const residue = random(7);
        const gone = (client: number) => client % 7 === residue;
        const expected = reference.queue.map(({ client }) => client).filter(gone);
        const withdrawn = admission.withdrawWhere(gone);
        if (withdrawn.join() !== expected.join()) return t.fail(`step ${step}: withdrew ${withdrawn}, expected ${expected}`);
        for (const client of expected) reference.remove(client);
        seen.withdrawn += expected.length;
      } else {
        const expected = reference.queue.at(-1)?.client;
        const newest = admission.takeNewest();
        if (newest !== expected) return t.fail(`step ${step}: took newest ${newest}, expected ${expected}`);
        if (expected !== undefined) reference.remove(expected);
      }
      if (admission.waiting !== reference.queue.length) return t.fail(`step ${step}: ${admission.waiting} waiting, expected ${reference.queue.length}`);
    }
    t.same(admission.takeQueue(), reference.queue.map(({ client }) => client), `the queue at the end, ${JSON.stringify(limits)}`);
  }
  // Each case happened often enough to have been compared.
  for (const [event, times] of Object.entries(seen)) t.ok(times > 100, `${event}: ${times} times`);
});

/** Offers `count` clients, each from an address of its own, and takes each out again as the newest; weak references to them. */
function offerAndEvict(admission: Admission<object>, count: number): { evicted: WeakRef<object>[]; takenBack: number } {
  // Not in the async test: a suspended async function keeps its last locals alive.
  const evicted: WeakRef<object>[] = [];
  let takenBack = 0;
  for (let client = 0; client < count; client++) {
    const connection = {};
    evicted.push(new WeakRef(connection));
    admission.offer(connection, `s${client}`);
    if (admission.takeNewest() === connection) takenBack++;
  }
  return { evicted, takenBack };
}

t.test('clients taken out while nobody can be admitted are not kept alive by the queue', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const admission = new Admission<object>({ maxConnections: 1, maxPerSource: 5, queueLimit: 100 });
  admission.offer({}, 'busy');
  t.ok(admission.admit(), 'max-connections is reached');
  admission.offer({}, 'waiting');
  const { evicted, takenBack } = offerAndEvict(admission, 200);
  t.equal(takenBack, 200, 'each newcomer is the newest, and is taken out');
  // A WeakRef holds its target until the job that made it ends.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  t.equal(evicted.filter((ref) => ref.deref() !== undefined).length, 0, 'every evicted client can be collected');
  t.equal(admission.waiting, 1);
});
