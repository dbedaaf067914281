// 4. Internal echo throughput: 32 connections each streaming data and
// reading it back, against wakeport's internal echo and a plain Node `net`
// echo server (socket.pipe(socket)) in a process of its own. Reference: the
// plain Node server.

import net from 'node:net';
import { freePort, sleep, start, waitForPort } from '../lib/proc.js';
import type { BenchOptions, Scenario, ScenarioReport } from '../lib/scenario.js';
import { formatSpread, spread, table } from '../lib/stats.js';
import { startWakeport } from '../lib/wakeport.js';

const plainEcho = `require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(Number(process.argv[1]), '127.0.0.1')`;
const chunk = Buffer.alloc(16 * 1024, 'x');

/**
 * MB/s echoed back over `seconds` by `connections` clients that keep 64 KB
 * in flight each. The clients read into one reused buffer (net.Socket's
 * onread; what comes back is counted, not kept). With a Buffer and a 'data'
 * event per read, this process was the bottleneck and hid the servers'
 * difference (top: this process at 100% of a core, the server at 67%; now
 * each server at 100%, this process at 44–56%).
 */
async function echoRate(port: number, connections: number, seconds: number): Promise<number> {
  let received = 0;
  let running = true;
  const readBuffer = Buffer.allocUnsafe(64 * 1024);
  const clients = Array.from(
    { length: connections },
    () =>
      new Promise<void>((resolve) => {
        let inFlight = 0;
        const socket: net.Socket = net.connect({
          port,
          host: '127.0.0.1',
          onread: {
            buffer: readBuffer,
            callback: (length) => {
              received += length;
              inFlight -= length;
              if (running) pump();
              else socket.destroy();
              return true;
            },
          },
        });
        const pump = () => {
          while (running && inFlight < 4 * chunk.length) {
            inFlight += chunk.length;
            if (!socket.write(chunk)) break;
          }
        };
        socket.on('connect', pump);
        socket.on('drain', pump);
        socket.on('close', () => resolve());
        socket.on('error', () => resolve());
      }),
  );
  await sleep(seconds * 1000);
  const total = received;
  running = false;
  await Promise.race([Promise.all(clients), sleep(1000)]);
  return total / seconds / 1e6;
}

interface Contender {
  readonly name: string;
  start(port: number): Promise<() => Promise<void>>;
}

const contenders: Contender[] = [
  {
    name: 'plain Node echo server',
    async start(port) {
      const server = start(process.execPath, ['-e', plainEcho, String(port)]);
      await waitForPort(port);
      return () => server.stop();
    },
  },
  {
    name: 'wakeport internal echo',
    async start(port) {
      const wakeport = await startWakeport(`127.0.0.1:${port} stream tcp nowait - internal echo\n`, ['--log-level', 'warn'], port);
      return () => wakeport.stop();
    },
  },
];

export const echoThroughput: Scenario = {
  name: 'echo',
  async run(options: BenchOptions): Promise<ScenarioReport> {
    const seconds = options.quick ? 1 : 5;
    const rates = new Map<string, number[]>();
    for (let round = 0; round < options.rounds; round++) {
      for (const contender of round % 2 === 0 ? contenders : [...contenders].reverse()) {
        options.progress(`echo: round ${round + 1}/${options.rounds}, ${contender.name}`);
        const port = await freePort();
        const stop = await contender.start(port);
        try {
          await echoRate(port, 32, 0.5); // Warm-up.
          rates.set(contender.name, [...(rates.get(contender.name) ?? []), await echoRate(port, 32, seconds)]);
        } finally {
          await stop();
        }
      }
    }
    const reference = spread(rates.get(contenders[0]!.name)!).median;
    const rows = contenders.map((c) => {
      const rate = spread(rates.get(c.name)!);
      return [c.name, formatSpread(rate), (rate.median / reference).toFixed(2)];
    });
    return {
      title: `4. internal echo throughput, 32 connections (${options.rounds} rounds × ${seconds} s; goal ≥ 0.95 × plain Node)`,
      text: table(['echo', 'MB/s', '×plain'], rows),
      data: Object.fromEntries([...rates].map(([name, list]) => [name, { mbPerSecond: spread(list), samples: list }])),
    };
  },
};
