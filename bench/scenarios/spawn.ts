// 1. nowait spawn rate: every HTTP request is a new connection and a new
// process (services/http-close.sh, the same shell responder for every
// contender). Reference: xinetd.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { load, type LoadResult } from '../lib/load.js';
import { available, commandOf, cpuMs, freePort, peakRssMb, processTree, sleep, start, waitForPort, type Started } from '../lib/proc.js';
import type { BenchOptions, Scenario, ScenarioReport } from '../lib/scenario.js';
import { formatSpread, spread, table } from '../lib/stats.js';
import { httpClose, root, startWakeport } from '../lib/wakeport.js';

interface Running {
  /** The runtime's own processes (not the responders it starts). */
  runtimePids(): number[];
  stop(): Promise<void>;
}

interface Contender {
  readonly name: string;
  /** Why it cannot run here, or null. */
  readonly missing: string | null;
  start(port: number, dir: string): Promise<Running>;
}

const openbsdInetd = path.join(root, 'bench/.peers/openbsd-inetd/usr/sbin/inetd');
const user = os.userInfo().username;

/** A runtime that is one foreground process (its children are the responders). */
async function single(started: Started, port: number): Promise<Running> {
  await waitForPort(port);
  return {
    runtimePids: () => processTree(started.pid).filter((pid) => pid === started.pid || !commandOf(pid).includes('http-close')),
    stop: () => started.stop(),
  };
}

const contenders: Contender[] = [
  {
    name: 'wakeport',
    missing: null,
    async start(port) {
      const wakeport = await startWakeport(
        `127.0.0.1:${port} stream tcp nowait - ${httpClose}\n`,
        ['--log-level', 'warn'],
        port,
      );
      return { runtimePids: () => wakeport.runtimePids(), stop: () => wakeport.stop() };
    },
  },
  {
    name: 'xinetd',
    missing: available('xinetd') ? null : 'xinetd is not installed (bench/setup.sh)',
    start(port, dir) {
      const conf = path.join(dir, 'xinetd.conf');
      writeFileSync(
        conf,
        `defaults\n{\n}\nservice bench\n{\n  type = UNLISTED\n  socket_type = stream\n  protocol = tcp\n  wait = no\n  user = ${user}\n` +
          `  server = ${httpClose}\n  port = ${port}\n  bind = 127.0.0.1\n  instances = UNLIMITED\n  per_source = UNLIMITED\n` +
          `  cps = 1000000 1\n  log_on_success =\n  log_on_failure =\n}\n`,
      );
      return single(start('xinetd', ['-dontfork', '-f', conf]), port);
    },
  },
  {
    name: 'openbsd-inetd',
    missing: available(openbsdInetd) ? null : 'openbsd-inetd is not unpacked (bench/setup.sh)',
    start(port, dir) {
      const conf = path.join(dir, 'inetd.conf');
      writeFileSync(conf, `127.0.0.1:${port} stream tcp nowait.1000000 ${user} ${httpClose} http-close.sh\n`);
      return single(start(openbsdInetd, ['-i', '-R', '1000000', conf]), port);
    },
  },
  {
    name: 'tcpserver',
    missing: available('tcpserver') ? null : 'tcpserver is not installed (Debian: ucspi-tcp)',
    start(port) {
      return single(start('tcpserver', ['-c', '1024', '-b', '1024', '-H', '-R', '-l', '0', '127.0.0.1', String(port), httpClose]), port);
    },
  },
  {
    name: 'socat',
    missing: available('socat') ? null : 'socat is not installed',
    start(port) {
      return single(start('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=1024`, `EXEC:${httpClose},nofork`]), port);
    },
  },
  {
    name: 'systemd-socket-activate',
    missing: available('systemd-socket-activate') ? null : 'systemd-socket-activate is not installed (Debian: systemd)',
    start(port) {
      return single(start('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--accept', '--inetd', httpClose]), port);
    },
  },
];

const reference = 'xinetd';

interface Sample extends LoadResult {
  readonly cpuPercent: number;
  readonly peakRssMb: number;
}

async function measure(contender: Contender, connections: number, seconds: number): Promise<Sample> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wakeport-bench-'));
  const port = await freePort();
  const running = await contender.start(port, dir);
  try {
    await load({ port, connections, durationSeconds: 0.5, freshConnections: true }); // Warm-up.
    const pids = running.runtimePids();
    const cpuBefore = cpuMs(pids);
    const result = await load({ port, connections, durationSeconds: seconds, freshConnections: true });
    const cpuPercent = ((cpuMs(pids) - cpuBefore) / (seconds * 1000)) * 100;
    return { ...result, cpuPercent, peakRssMb: peakRssMb(pids) };
  } finally {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
    await sleep(200); // Let the last responders exit.
  }
}

/** wrk opens a new connection per request when asked for Connection: close. */
function wrkRate(port: number, connections: number, seconds: number): number | null {
  const result = spawnSync('wrk', ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`], {
    encoding: 'utf8',
  });
  const match = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout ?? '');
  return match ? Number(match[1]) : null;
}

async function crossCheck(contender: Contender, connections: number, seconds: number): Promise<{ wrk: number | null; autocannon: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wakeport-bench-'));
  const port = await freePort();
  const running = await contender.start(port, dir);
  try {
    const autocannon = (await load({ port, connections, durationSeconds: seconds, freshConnections: true })).requestsPerSecond;
    return { wrk: wrkRate(port, connections, seconds), autocannon };
  } finally {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const spawnRate: Scenario = {
  name: 'spawn',
  async run(options: BenchOptions): Promise<ScenarioReport> {
    const levels = options.quick ? [8] : [1, 8, 32];
    const seconds = options.quick ? 1 : 4;
    const present = contenders.filter((c) => c.missing === null);
    const skipped = contenders.filter((c) => c.missing !== null).map((c) => `${c.name}: skipped, ${c.missing}`);
    const samples = new Map<string, Sample[]>();
    for (let round = 0; round < options.rounds; round++) {
      for (const connections of levels) {
        // Rotate the order each round: A B C, B C A, … so no one always goes first.
        const order = present.map((_, i) => present[(i + round) % present.length]!);
        for (const contender of order) {
          options.progress(`spawn: round ${round + 1}/${options.rounds}, c=${connections}, ${contender.name}`);
          const key = `${connections}:${contender.name}`;
          samples.set(key, [...(samples.get(key) ?? []), await measure(contender, connections, seconds)]);
        }
      }
    }
    const rows: string[][] = [];
    const data: Record<string, unknown>[] = [];
    for (const connections of levels) {
      const referenceRate = samples.get(`${connections}:${reference}`)?.map((s) => s.requestsPerSecond);
      for (const contender of present) {
        const list = samples.get(`${connections}:${contender.name}`)!;
        const rate = spread(list.map((s) => s.requestsPerSecond));
        const ratio = referenceRate ? rate.median / spread(referenceRate).median : null;
        const p50 = spread(list.map((s) => s.p50Ms));
        const p99 = spread(list.map((s) => s.p99Ms));
        const cpu = spread(list.map((s) => s.cpuPercent));
        const rss = spread(list.map((s) => s.peakRssMb));
        const errors = list.reduce((sum, s) => sum + s.errors + s.non2xx, 0);
        rows.push([
          `c=${connections} ${contender.name}`,
          formatSpread(rate),
          ratio === null ? '-' : ratio.toFixed(2),
          formatSpread(p50),
          formatSpread(p99),
          String(errors),
          formatSpread(cpu),
          rss.median.toFixed(1),
        ]);
        data.push({ connections, contender: contender.name, requestsPerSecond: rate, ratioToXinetd: ratio, p50Ms: p50, p99Ms: p99, errors, runtimeCpuPercent: cpu, runtimePeakRssMb: rss, samples: list });
      }
    }
    const check = present.find((c) => c.name === reference) && available('wrk') ? await crossCheck(present.find((c) => c.name === reference)!, 8, seconds) : null;
    const notes = [
      ...skipped,
      check ? `cross-check, xinetd c=8: wrk ${check.wrk?.toFixed(0) ?? 'failed'} req/s, autocannon (fresh connections) ${check.autocannon.toFixed(0)} req/s` : 'cross-check with wrk: skipped (wrk or xinetd missing)',
    ];
    const text = table(['nowait, Connection: close', 'req/s', `×${reference}`, 'p50 ms', 'p99 ms', 'errors', 'runtime CPU %', 'peak RSS MB'], rows);
    return { title: `1. nowait spawn rate (${options.rounds} rounds × ${seconds} s, medians (min–max); CPU and RSS of the runtime, children excluded)`, text: `${text}\n${notes.join('\n')}`, data: { rows: data, notes } };
  },
};
