// 5. Footprint and scale: idle RSS of wakeport's whole process tree with
// the default table; time to start with a table of 1,000 services; and the
// memory and open fds of wakeport's own processes after many nowait
// connections, which must come back to where they were.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { anonMb, commandOf, freePort, openFds, rssMb, sleep } from '../lib/proc.js';
import type { BenchOptions, Scenario, ScenarioReport } from '../lib/scenario.js';
import { formatSpread, spread } from '../lib/stats.js';
import { root, startWakeport } from '../lib/wakeport.js';

function pssMb(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // Gone.
    }
  }
  return kb / 1024;
}

/** The default table, on ports the kernel picks, with its programs found from the repository. */
function defaultTable(): string {
  return readFileSync(path.join(root, 'services.conf'), 'utf8')
    .replace(/^127\.0\.0\.1:\d+/gm, '127.0.0.1:0')
    .replace(/ \.\//g, ` ${root}/`);
}

const roles = ['supervisor', 'nowait hosts', 'launcher'] as const;
type Role = (typeof roles)[number];

function roleOf(pid: number): Role {
  const command = commandOf(pid);
  return command.includes('supervisor-main') ? 'supervisor' : command.includes('nowait-host-main') ? 'nowait hosts' : 'launcher';
}

interface Usage {
  readonly processes: number;
  readonly rssMb: number;
  /** RssAnon: what the processes wrote themselves, without the node binary's shared pages. */
  readonly anonMb: number;
  readonly fds: number;
}

/** Memory and open fds of wakeport's own processes, by role. */
function usageByRole(pids: readonly number[]): Record<Role, Usage> {
  const usage = {} as Record<Role, Usage>;
  for (const role of roles) {
    const mine = pids.filter((pid) => roleOf(pid) === role);
    usage[role] = { processes: mine.length, rssMb: rssMb(mine), anonMb: anonMb(mine), fds: mine.reduce((sum, pid) => sum + openFds(pid), 0) };
  }
  return usage;
}

const formatUsage = (usage: Usage) => `${usage.rssMb.toFixed(1)} / ${usage.anonMb.toFixed(1)} / ${usage.fds}`;

function oneExchange(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end());
    socket.resume();
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

const settleMs = 10_000;

export const footprint: Scenario = {
  name: 'footprint',
  async run(options: BenchOptions): Promise<ScenarioReport> {
    const lines: string[] = [];
    const data: Record<string, unknown> = {};

    options.progress('footprint: idle tree with the default table');
    const idle = await startWakeport(defaultTable());
    await sleep(2000);
    const tree = idle.treePids();
    data.idle = { processes: tree.length, rssMb: rssMb(tree), pssMb: pssMb(tree) };
    lines.push(
      `idle, default table: ${tree.length} processes, RSS ${rssMb(tree).toFixed(1)} MB in all (PSS ${pssMb(tree).toFixed(1)} MB; goal < 120 MB RSS)`,
    );
    await idle.stop();

    const startTimes: number[] = [];
    const services = 1000;
    const big = Array.from({ length: services }, (_, i) => `127.0.0.1:0 stream tcp nowait - internal echo\n    label = echo-${i}`).join('\n');
    for (let round = 0; round < options.rounds; round++) {
      options.progress(`footprint: start with ${services} services, round ${round + 1}/${options.rounds}`);
      const began = performance.now();
      const wakeport = await startWakeport(big, ['--log-level', 'info']);
      startTimes.push(performance.now() - began);
      await wakeport.stop();
    }
    data.startWith1000Ms = spread(startTimes);
    lines.push(`start with ${services} services (spawn → "serving"): ${formatSpread(spread(startTimes))} ms`);

    const connections = options.quick ? 3000 : 100_000;
    const port = await freePort();
    const wakeport = await startWakeport(`127.0.0.1:${port} stream tcp nowait - /bin/true true\n`, ['--log-level', 'warn'], port);
    try {
      let done = 0;
      const run = async (count: number) => {
        const target = done + count;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (done < target) {
              done++;
              await oneExchange(port);
              if (done % 5000 === 0) options.progress(`footprint: ${done}/${connections} nowait connections`);
            }
          }),
        );
        await sleep(1000);
      };
      await run(1000);
      const before = usageByRole(wakeport.runtimePids());
      await run(connections);
      const after = usageByRole(wakeport.runtimePids());
      options.progress(`footprint: ${settleMs / 1000} s without clients`);
      await sleep(settleMs);
      const settled = usageByRole(wakeport.runtimePids());
      data.nowait = { connections, before, after, settled };
      lines.push(
        `after ${connections} nowait connections, RSS MB / anonymous MB / open fds: after the first 1,000 → right after → ${settleMs / 1000} s later`,
        ...roles.map((role) => `  ${after[role].processes} ${role}: ${formatUsage(before[role])} → ${formatUsage(after[role])} → ${formatUsage(settled[role])}`),
      );
    } finally {
      await wakeport.stop();
    }
    return { title: '5. footprint and scale', text: lines.join('\n'), data };
  },
};
