// The waiting queue's bookkeeping when clients that went are taken out of
// it: order kept, and the per-address counts the crowding rule uses.

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
  // Now b has two waiting and a one: a newcomer from a takes the place of b's newest.
  t.equal(admission.offer('a4', 'a'), 'b2', 'the address with the most waiting gives up its newest');
  admission.release('x');
  t.equal(admission.admit()?.client, 'b1', 'the rest are served in the order they came');
});
