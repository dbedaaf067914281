// npm run bench [-- --quick] [--json] [--only spawn,steady,cold,echo,footprint]
//
// Side-by-side benchmarks: every scenario runs its contenders interleaved in
// one run and prints medians with min–max and ratios to its reference,
// because these machines are shared and noisy. Load goes to loopback only.

import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Scenario } from './lib/scenario.js';
import { coldStart } from './scenarios/cold.js';
import { echoThroughput } from './scenarios/echo.js';
import { footprint } from './scenarios/footprint.js';
import { spawnRate } from './scenarios/spawn.js';
import { steadyState } from './scenarios/steady.js';

const scenarios: Scenario[] = [spawnRate, steadyState, coldStart, echoThroughput, footprint];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
  },
});

const only = values.only?.split(',');
const quick = values.quick ?? false;
const rounds = Math.max(3, Number(values.rounds ?? 3));
const started = Date.now();
const progress = (line: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`;

const reports = [];
for (const scenario of scenarios) {
  if (only && !only.includes(scenario.name)) continue;
  const report = await scenario.run({ quick, rounds, progress });
  reports.push({ name: scenario.name, ...report });
  if (!values.json) process.stdout.write(`\n${report.title}\n${report.text}\n`);
}
const summary = { machine, quick, rounds, seconds: Math.round((Date.now() - started) / 1000), date: new Date().toISOString() };
if (values.json) process.stdout.write(JSON.stringify({ ...summary, scenarios: reports.map(({ name, data }) => ({ name, data })) }, null, 2) + '\n');
else process.stdout.write(`\nmachine: ${machine}; ${summary.seconds} s in all${quick ? ' (quick)' : ''}\n`);
