// 3. Cold start: from a client's connect to its first response byte while
// the worker is not running, against the worker's own start-up measured the
// same way (from its spawn to the first byte it answers, binding its own
// port). Then 500 clients at once on a cold service: all must be served.
// Reference: the worker's own start-up.

import http from 'node:http';
import type { Readable } from 'node:stream';
import { cleanEnv, freePort, start, type Started } from '../lib/proc.js';
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
 * fork is not counted against the worker) to its first answer. The request
 * goes out when the worker says READY=1 on NOTIFY_FD, as it does once its
 * port listens: polling instead would add up to a polling interval to the
 * worker's time, and asking often takes CPU from the starting worker.
 */
async function ownStartup(): Promise<number> {
  const port = await freePort();
  const server: Started = start(process.execPath, [httpServer, '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...cleanEnv, NOTIFY_FD: '3' },
  });
  const began = performance.now();
  try {
    await untilReady(server);
    const answered = await firstByteMs(port);
    if (answered === null) throw new Error(`the worker alone said READY=1 but did not answer: ${server.stderr}`);
    return performance.now() - began;
  } finally {
    await server.stop();
  }
}

function untilReady(server: Started): Promise<void> {
  return new Promise((resolve, reject) => {
    let said = '';
    const notifications = server.child.stdio[3] as Readable;
    notifications.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.split('\n').includes('READY=1')) resolve();
    });
    server.child.once('exit', () => reject(new Error(`the worker alone exited before READY=1: ${server.stderr}`)));
  });
}

const workerIdle = '200ms';

/** A wakeport whose dev server exits soon after each use, so each trial is cold. */
class ColdService {
  #waits = 0;
  private constructor(
    readonly wakeport: RunningWakeport,
    readonly port: number,
  ) {}

  static async start(listenPid: boolean): Promise<ColdService> {
    const port = await freePort();
    // Started as the worker alone is (node and the script, no #! through /usr/bin/env), so that only wakeport's part differs.
    const table =
      `127.0.0.1:${port} stream tcp wait - ${process.execPath} node ${httpServer} --idle-timeout ${workerIdle}\n` +
      `    label = cold\n    handoff = listen-fds\n    ready = notify\n    listen-pid = ${listenPid ? 'yes' : 'no'}\n`;
    const service = new ColdService(await startWakeport(table, ['--log-level', 'debug']), port);
    await service.untilCold();
    return service;
  }

  /** Waits until the service has no worker and watches for the next client. */
  async untilCold(): Promise<void> {
    const waitsSoFar = this.#waits++;
    await this.wakeport.waitFor(() => this.wakeport.logs.filter((r) => r.message === 'waiting for a client').length > waitsSoFar);
  }
}

const sides = [
  { name: 'via wakeport, cold (connect → first byte)', listenPid: true },
  { name: 'via wakeport, cold, listen-pid = no', listenPid: false },
] as const;

export const coldStart: Scenario = {
  name: 'cold',
  async run(options: BenchOptions): Promise<ScenarioReport> {
    const trials = options.quick ? 3 : 15;
    const own: number[] = [];
    // Per side: first-byte times, and each trial's difference to the own start-up measured just before it.
    const firstBytes = sides.map(() => [] as number[]);
    const differences = sides.map(() => [] as number[]);
    const burst: { served: number; ms: number }[] = [];
    const services: ColdService[] = [];
    try {
      for (const side of sides) services.push(await ColdService.start(side.listenPid));
      for (let round = 0; round < options.rounds; round++) {
        for (let trial = 0; trial < trials; trial++) {
          options.progress(`cold: round ${round + 1}/${options.rounds}, trial ${trial + 1}/${trials}`);
          const ownMs = await ownStartup();
          own.push(ownMs);
          for (const [index, service] of services.entries()) {
            const ms = await firstByteMs(service.port);
            if (ms !== null) {
              firstBytes[index]!.push(ms);
              differences[index]!.push(ms - ownMs);
            }
            await service.untilCold();
          }
        }
        options.progress(`cold: round ${round + 1}/${options.rounds}, 500 clients at once`);
        const began = performance.now();
        const results = await Promise.all(Array.from({ length: 500 }, () => firstByteMs(services[0]!.port)));
        burst.push({ served: results.filter((r) => r !== null).length, ms: performance.now() - began });
        await services[0]!.untilCold();
      }
    } finally {
      await Promise.all(services.map((service) => service.wakeport.stop()));
    }
    const ownSpread = spread(own);
    const rows = [['worker binding its own port (spawn → first byte)', formatSpread(ownSpread, 1), '1.00']];
    const notes: string[] = [];
    const data: unknown[] = [];
    sides.forEach((side, index) => {
      const times = spread(firstBytes[index]!);
      const overhead = spread(differences[index]!);
      const failed = trials * options.rounds - firstBytes[index]!.length;
      rows.push([side.name, formatSpread(times, 1), (times.median / ownSpread.median).toFixed(2)]);
      notes.push(`${side.name}: overhead, median of each trial's difference: ${formatSpread(overhead, 1)} ms; failed first requests: ${failed}`);
      data.push({ side: side.name, coldMs: times, overheadMs: overhead, failed });
    });
    const lost = burst.reduce((sum, b) => sum + 500 - b.served, 0);
    notes.push('(goal: overhead ≤ 10 ms; the worker alone is asked once it says READY=1)');
    notes.push(`500 clients at once on a cold service: ${burst.map((b) => `${b.served}/500 served in ${b.ms.toFixed(0)} ms`).join(', ')}; lost: ${lost}`);
    return {
      title: `3. cold start (${options.rounds} rounds × ${trials} trials, medians (min–max))`,
      text: `${table(['first response', 'ms', '×own'], rows)}\n${notes.join('\n')}`,
      data: { ownStartupMs: ownSpread, sides: data, burst, samples: { own, firstBytes } },
    };
  },
};
