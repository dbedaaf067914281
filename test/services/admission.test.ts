// The waiting queue's bookkeeping when clients that went are taken out of
// it: order kept, and the per-address counts the crowding rule uses.
// Also the crowding rule itself, and a long queue drained from its head.

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
  const offered = (from: number, to: number, source: (client: number) => string) =>
    Array.from({ length: to - from }, (_, index) => admission.offer(from + index, source(from + index)));
  t.ok(offered(0, 1000, (client) => `s${client % 10}`).every((refused) => refused === null));
  const served: number[] = [];
  for (let client = 0; client < 700; client++) served.push(admission.admit()!.client);
  t.same(served, Array.from({ length: 700 }, (_, client) => client), 'first come, first served');
  t.ok(offered(1000, 1700, () => 'flood').every((refused) => refused === null));
  t.ok(admission.queueFull);
  t.equal(admission.waiting, 1000);
  // 700 from the flood, 30 from each other address: the flood gives up its newest to a newcomer.
  t.equal(admission.offer(2000, 'new'), 1699);
  t.equal(admission.offer(2001, 's3'), 1698, 'and to an address with 30 waiting');
  t.equal(admission.takeNewest(), 2001);
  const rest = admission.takeQueue();
  t.same(rest.slice(0, 3), [700, 701, 702], 'the oldest still wait first');
  t.same(rest.slice(-2), [1697, 2000]);
  t.equal(admission.waiting, 0);
  t.equal(admission.offer(1, 'new'), null, 'an emptied queue counts nobody');
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
