// What a host name in only-from/no-access stands for: the addresses a lookup
// gave, once each, in an order that does not depend on the resolver's (so
// that a reload does not take an unchanged rule for a changed one), and an
// IPv4-mapped answer as the IPv4 address its clients are matched as.
// (Resolving itself is tested through the table, with localhost.)

import t from 'tap';
import { addressesOf } from '../../src/config/address-rules.js';

t.test('the addresses of a lookup: once each, sorted, IPv4-mapped answers as IPv4', async (t) => {
  const answer = [
    { address: '192.0.2.2', family: 4 },
    { address: '2001:DB8::1', family: 6 },
    { address: '::ffff:192.0.2.1', family: 6 },
    { address: '192.0.2.2', family: 4 },
  ];
  const sorted = [
    { address: '192.0.2.1', family: 4 },
    { address: '192.0.2.2', family: 4 },
    { address: '2001:db8::1', family: 6 },
  ];
  t.same(addressesOf(answer), sorted);
  t.same(addressesOf([...answer].reverse()), sorted, 'whatever order the resolver gave');
});
