// The log's throttle for problems that repeat: the first reported, the rest
// counted, and the count said even when no report comes after it.

import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { ReportThrottle } from '../src/log.js';

t.test('a count held back is said at the end of its while, even when nothing comes after it', async (t) => {
  const said: number[] = [];
  const throttle = new ReportThrottle(100, (count) => said.push(count));
  t.equal(throttle.due(), 0, 'the first is reported');
  for (let repeat = 0; repeat < 5; repeat++) t.equal(throttle.due(), null, 'the rest are held back');
  t.same(said, [], 'not yet');
  await sleep(250);
  t.same(said, [5], 'once the while is over: how many were held back');
  t.equal(throttle.due(), 0, 'the next is reported at once, with none held back before it');
  await sleep(150);
  t.same(said, [5], 'and nothing more is said when nothing was held back');
});

t.test('a report that comes after the held-back ones carries their count instead', async (t) => {
  const said: number[] = [];
  const throttle = new ReportThrottle(100, (count) => said.push(count));
  t.equal(throttle.due(), 0);
  throttle.due();
  throttle.due();
  t.equal(throttle.due(Date.now() + 100), 2, 'the next report says 2 more');
  await sleep(200);
  t.same(said, [], 'so the end of the while says nothing');
});

t.test('flushAll says every count still held back, as a process stops', async (t) => {
  const said: string[] = [];
  const a = new ReportThrottle(60_000, (count) => said.push(`a ${count}`));
  const b = new ReportThrottle(60_000, (count) => said.push(`b ${count}`));
  a.due();
  a.due();
  b.due();
  b.due();
  b.due();
  ReportThrottle.flushAll();
  t.same(said.sort(), ['a 1', 'b 2']);
  ReportThrottle.flushAll();
  t.equal(said.length, 2, 'each once');
});
