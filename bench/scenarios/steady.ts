// 2. wait-mode steady state: the bundled keep-alive HTTP server (a) alone,
// binding its own port, and (b) started lazily by wakeport with its socket
// handed over (listen-fds). wakeport is not in the request path, so (b)
// should match (a). Reference: (a).

import { load, type LoadResult } from '../lib/load.js';
import { freePort, sleep, start, waitForPort } from '../lib/proc.js';
import type { BenchOptions, Scenario, ScenarioReport } from '../lib/scenario.js';
import { formatSpread, spread, table } from '../lib/stats.js';
import { httpServer, startWakeport } from '../lib/wakeport.js';

interface Contender {
  readonly name: string;
  /** Starts the server and returns once it answers; `stop` ends it. */
  start(port: number): Promise<() => Promise<void>>;
}

const contenders: Contender[] = [
  {
    name: 'worker alone',
    async start(port) {
      const server = start(process.execPath, [httpServer, '--port', String(port)]);
      await waitForPort(port);
      return () => server.stop();
    },
  },
  {
    name: 'wakeport (lazy, listen-fds)',
    async start(port) {
      const table = `127.0.0.1:${port} stream tcp wait - ${httpServer} http-server\n    handoff = listen-fds\n    ready = notify\n`;
      const wakeport = await startWakeport(table, ['--log-level', 'warn'], port);
      return () => wakeport.stop();
    },
  },
];

export const steadyState: Scenario = {
  name: 'steady',
  async run(options: BenchOptions): Promise<ScenarioReport> {
    const levels = options.quick ? [32] : [32, 100];
    const seconds = options.quick ? 1 : 5;
    // The goal is within 2%, closer than this machine's drift over a run:
    // more rounds, and each round's pair compared with itself (below).
    const rounds = options.quick ? options.rounds : Math.max(options.rounds, 5);
    const samples = new Map<string, LoadResult[]>();
    for (let round = 0; round < rounds; round++) {
      for (const connections of levels) {
        const order = round % 2 === 0 ? contenders : [...contenders].reverse();
        for (const contender of order) {
          options.progress(`steady: round ${round + 1}/${rounds}, c=${connections}, ${contender.name}`);
          const port = await freePort();
          const stop = await contender.start(port);
          try {
            await load({ port, connections, durationSeconds: 1, freshConnections: false }); // Warm-up (and, for wakeport, the worker's start).
            const result = await load({ port, connections, durationSeconds: seconds, freshConnections: false });
            const key = `${connections}:${contender.name}`;
            samples.set(key, [...(samples.get(key) ?? []), result]);
          } finally {
            await stop();
            await sleep(100);
          }
        }
      }
    }
    const rows: string[][] = [];
    const data: unknown[] = [];
    for (const connections of levels) {
      const reference = samples.get(`${connections}:${contenders[0]!.name}`)!.map((s) => s.requestsPerSecond);
      for (const contender of contenders) {
        const list = samples.get(`${connections}:${contender.name}`)!;
        const rate = spread(list.map((s) => s.requestsPerSecond));
        const p50 = spread(list.map((s) => s.p50Ms));
        const p99 = spread(list.map((s) => s.p99Ms));
        const errors = list.reduce((sum, s) => sum + s.errors + s.non2xx, 0);
        // Each round's two runs are neighbours in time: their ratio cancels the drift between rounds.
        const ratio = spread(list.map((s, round) => s.requestsPerSecond / reference[round]!));
        rows.push([`c=${connections} ${contender.name}`, formatSpread(rate), formatSpread(ratio, 3), formatSpread(p50), formatSpread(p99), String(errors)]);
        data.push({ connections, contender: contender.name, requestsPerSecond: rate, ratioToAlone: ratio, p50Ms: p50, p99Ms: p99, errors });
      }
    }
    return {
      title: `2. wait-mode steady state, keep-alive (${rounds} rounds × ${seconds} s; ×alone is the median of each round's ratio; goal ≥ 0.98)`,
      text: table(['keep-alive HTTP', 'req/s', '×alone', 'p50 ms', 'p99 ms', 'errors'], rows),
      data,
    };
  },
};
