// 3. Cold start: from a client's connect to its first response byte while
// the worker is not running, against the worker's own start-up measured the
// same way (from its spawn to the first byte it answers, binding its own
// port). Then 500 clients at once on a cold service: all must be served.
// Reference: the worker's own start-up.

import http from 'node:http';
import { freePort, start, type Started } from '../lib/proc.js';
import type { BenchOptions, Scenario, ScenarioReport } from '../lib/scenario.js';
import { formatSpread, spread, table } from '../lib/stats.js';
import { httpServer, startWakeport, type RunningWakeport } from '../lib/wakeport.js';

/** Ms from now to the first byte of the answer to one GET, or null on error. */
function firstByteMs(port: number): Promise<number | null> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, agent: false }, (response) => {
      response.once('data', () => resolve(performance.now() - started));
      response.resume();
    });
    request.on('error', () => resolve(null));
    request.setTimeout(10_000, () => request.destroy());
  });
}

/**
 * The worker binding its own port: from the moment it is running (spawn
 * returns once the child has exec'd, so the bench process's own, larger
 * fork is not counted against the worker) to its first answer, asking every
 * `pollMs` until it answers (asking more often takes CPU from the starting
 * worker on a small machine).
 */
async function ownStartup(): Promise<number> {
  const port = await freePort();
  const server: Started = start(process.execPath, [httpServer, '--port', String(port)]);
  const began = performance.now();
  try {
    for (;;) {
      const answered = await firstByteMs(port);
      if (answered !== null) return performance.now() - began;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    await server.stop();
  }
}

const workerIdle = '200ms';
const pollMs = 5;

/** A wakeport whose dev server exits soon after each use, so each trial is cold. */
async function coldWakeport(): Promise<{ wakeport: RunningWakeport; port: number }> {
  const port = await freePort();
  // Started as the worker alone is (node and the script, no #! through /usr/bin/env), so that only wakeport's part differs.
  const table = `127.0.0.1:${port} stream tcp wait - ${process.execPath} node ${httpServer} --idle-timeout ${workerIdle}\n    label = cold\n    handoff = listen-fds\n    ready = notify\n`;
  const wakeport = await startWakeport(table, ['--log-level', 'debug']);
  return { wakeport, port };
}

/** Waits until the service has no worker and watches for the next client. */
async function untilCold(wakeport: RunningWakeport, waitsSoFar: number): Promise<void> {
  await wakeport.waitFor(() => wakeport.logs.filter((r) => r.message === 'waiting for a client').length > waitsSoFar);
}

export const coldStart: Scenario = {
  name: 'cold',
  async run(options: BenchOptions): Promise<ScenarioReport> {
    const trials = options.quick ? 3 : 15;
    const own: number[] = [];
    const viaWakeport: number[] = [];
    // Each trial's two measurements are neighbours in time; their difference cancels the drift between trials.
    const differences: number[] = [];
    const { wakeport, port } = await coldWakeport();
    let waits = 0;
    const burst: { served: number; ms: number }[] = [];
    try {
      await untilCold(wakeport, waits++);
      for (let round = 0; round < options.rounds; round++) {
        for (let trial = 0; trial < trials; trial++) {
          options.progress(`cold: round ${round + 1}/${options.rounds}, trial ${trial + 1}/${trials}`);
          const ownMs = await ownStartup();
          own.push(ownMs);
          const ms = await firstByteMs(port);
          if (ms !== null) {
            viaWakeport.push(ms);
            differences.push(ms - ownMs);
          }
          await untilCold(wakeport, waits++);
        }
        options.progress(`cold: round ${round + 1}/${options.rounds}, 500 clients at once`);
        const began = performance.now();
        const results = await Promise.all(Array.from({ length: 500 }, () => firstByteMs(port)));
        burst.push({ served: results.filter((r) => r !== null).length, ms: performance.now() - began });
        await untilCold(wakeport, waits++);
      }
    } finally {
      await wakeport.stop();
    }
    const ownSpread = spread(own);
    const wakeportSpread = spread(viaWakeport);
    const overhead = spread(differences);
    const rows = [
      ['worker binding its own port (spawn → first byte)', formatSpread(ownSpread, 1), '1.00'],
      ['via wakeport, cold (connect → first byte)', formatSpread(wakeportSpread, 1), (wakeportSpread.median / ownSpread.median).toFixed(2)],
    ];
    const lost = burst.reduce((sum, b) => sum + 500 - b.served, 0);
    const notes = [
      `cold-start overhead, median of each trial's difference: ${formatSpread(overhead, 1)} ms (goal ≤ 10 ms; the worker alone is polled every ${pollMs} ms); failed first requests: ${trials * options.rounds - viaWakeport.length}`,
      `500 clients at once on a cold service: ${burst.map((b) => `${b.served}/500 served in ${b.ms.toFixed(0)} ms`).join(', ')}; lost: ${lost}`,
    ];
    return {
      title: `3. cold start (${options.rounds} rounds × ${trials} trials, medians (min–max))`,
      text: `${table(['first response', 'ms', '×own'], rows)}\n${notes.join('\n')}`,
      data: { ownStartupMs: ownSpread, coldMs: wakeportSpread, overheadMs: overhead, burst, samples: { own, viaWakeport } },
    };
  },
};
