// The supervisor: given the table's listening sockets as inherited fds (by
// the launcher), it checks each is what the table says, starts each
// service on its fds, and stops them all on SIGTERM or SIGINT, or when the
// launcher goes away. It never binds; sockets the launcher binds after
// start (runtime/late-sockets.ts) arrive as bare handles over IPC, which
// neither accept nor read (NODE-FACTS 6–7). Internal services run here;
// wait services' workers and the nowait pool's hosts are its children.

import { closeSync } from 'node:fs';
import { formatSocket, isNowaitProgram, type ServiceEntry } from '../config/entry.js';
import { counted, type Logger } from '../log.js';
import { InternalDgramService } from '../services/internal/dgram.js';
import { wellKnownPorts } from '../services/internal/index.js';
import { InternalStreamService } from '../services/internal/stream.js';
import { checkOutputs } from '../processes/output.js';
import { NowaitPool, type PoolSettings } from '../services/nowait-pool.js';
import { WaitService } from '../services/wait.js';
import type { Hello, SocketAssignment, Stoppable } from './hello.js';
import { receiveLateSockets } from './late-sockets.js';
import { applyReloads } from './reload.js';
import { useInvocationId } from '../processes/environment.js';
import { EscapeeSweep, noteSocket, type ServedSocket } from './escapees.js';
import { ServiceTable, type Starters } from './service-table.js';
import { tellLauncher } from './left-workers.js';
import { checkInheritedFds, handleStopRequests, takeOver, type RunningService } from './lifecycle.js';

const subject = 'wakeport';

export async function supervise(): Promise<void> {
  const { hello, log, inbox } = await takeOver('the supervisor must be started by the launcher');
  if (hello.invocationId !== undefined) useInvocationId(hello.invocationId);
  const poolSettings: PoolSettings = { log: hello.log, idleExitMs: hello.idleExitMs ?? 0, onTakenOver: tellLauncher };
  const context: Context = { log, protectedPorts: internalPorts(hello), poolSettings };
  const table = new ServiceTable(hello.entries);
  const late = receiveLateSockets(
    inbox,
    () => table.entries,
    (label) => table.has(label),
    (assignment) => checkInheritedFds([assignment]),
    async (entry, sockets, close) => {
      table.starting(entry.label);
      const service = await startLate(entry, sockets, close, context);
      if (service) table.add(entry, sockets, service, close);
      else table.notStarted(entry.label);
    },
    log,
  );
  const started = startServices(hello, context, table);
  // A stop during start-up waits for it: services started meanwhile are stopped as they come (table.add).
  let escapees: EscapeeSweep | null = null;
  handleStopRequests(
    async () => (await started, table.running()),
    log,
    'the launcher is gone',
    'info',
    () => {
      late.stop();
      table.shutDown();
      // Noted now: the services close their sockets as they stop.
      const sockets = new Map<string, ServedSocket>();
      for (const { entry, assignment } of table.servedSockets()) {
        noteSocket(sockets, assignment.fd, { label: entry.label, socket: assignment.socket, exitTimeoutMs: entry.exitTimeoutMs });
      }
      escapees = new EscapeeSweep(sockets, log);
    },
    { stop: () => escapees?.stop() ?? Promise.resolve(), kill: () => escapees?.kill() },
  );
  // The launcher holds back stop signals until now: before, a SIGTERM would kill this process outright.
  const stoppable: Stoppable = { type: 'stoppable' };
  process.send?.(stoppable, () => {});
  const starters: Starters = {
    // The table closes the sockets of a service that cannot start.
    canStart: (entry, sockets) => canStartProgram(entry, sockets, log, () => {}),
    restart: (entry, sockets) => startOne(entry, sockets, context),
    startPool: (services) => NowaitPool.start(services, context.poolSettings, log),
  };
  // Reloads wait until the services have started.
  applyReloads(inbox, table, starters, started.then(() => {}), log);
  const count = await started;
  log.info(subject, `serving ${counted(count, 'service')} (supervisor pid ${process.pid})`, { services: count });
}

/** What starting a service needs besides its entry and sockets. */
interface Context {
  readonly log: Logger;
  /** Ports UDP internal services never answer (loop protection); grows with internal services bound late. */
  readonly protectedPorts: Set<number>;
  readonly poolSettings: PoolSettings;
}

/** Starts the services (all nowait programs as one pool) into `table`; returns how many of the table's it serves. */
async function startServices(hello: Hello, context: Context, table: ServiceTable): Promise<number> {
  const { log } = context;
  const socketsOf = (entry: ServiceEntry) =>
    hello.sockets.filter(({ label }) => label === entry.label).sort((a, b) => a.index - b.index);
  // nowait programs are served by a pool of small processes (see nowait-pool.ts).
  const nowait = hello.entries.filter((entry) => {
    const sockets = socketsOf(entry);
    return isNowaitProgram(entry) && sockets.length > 0 && canStartProgram(entry, sockets, log);
  });
  if (nowait.length > 0) {
    const pool = NowaitPool.start(nowait.map((entry) => ({ entry, sockets: socketsOf(entry) })), context.poolSettings, log);
    for (const entry of nowait) table.add(entry, socketsOf(entry), pool);
  }
  for (const entry of nowait) logListening(entry, socketsOf(entry), log);
  const started = await Promise.all(
    hello.entries.filter((entry) => !isNowaitProgram(entry)).map(async (entry) => {
      const sockets = socketsOf(entry);
      if (sockets.length === 0 || !canStartProgram(entry, sockets, log)) return false;
      const service = await startOne(entry, sockets, context);
      if (service) table.add(entry, sockets, service);
      return service !== null;
    }),
  );
  return nowait.length + started.filter(Boolean).length;
}

/** A service whose sockets were bound after start: a nowait program gets a pool of its own. */
async function startLate(entry: ServiceEntry, sockets: readonly SocketAssignment[], close: () => void, context: Context): Promise<RunningService | null> {
  if (!canStartProgram(entry, sockets, context.log, close)) return null;
  if (!isNowaitProgram(entry)) {
    if (entry.program.kind === 'internal') for (const { socket } of sockets) if (socket.transport !== 'unix') context.protectedPorts.add(socket.port);
    return startOne(entry, sockets, context);
  }
  const pool = NowaitPool.start([{ entry, sockets }], context.poolSettings, context.log);
  logListening(entry, sockets, context.log);
  return pool;
}

/** Starts a service that is not a nowait program; null (logged) if it cannot start. */
async function startOne(entry: ServiceEntry, sockets: readonly SocketAssignment[], { log, protectedPorts }: Context): Promise<RunningService | null> {
  try {
    const service = await startService(entry, sockets, log, protectedPorts);
    logListening(entry, sockets, log);
    return service;
  } catch (error) {
    reportCannotStart(entry, error, log);
    return null;
  }
}

/**
 * Whether a program service (wait, or nowait in the hosts) will be able to
 * start its programs: true for an internal service. If not, its sockets
 * (untouched so far) are closed, so that its clients are refused rather
 * than left waiting for a service that never comes.
 */
function canStartProgram(
  entry: ServiceEntry,
  sockets: readonly SocketAssignment[],
  log: Logger,
  close = () => sockets.forEach(({ fd }) => closeSync(fd)),
): boolean {
  if (entry.program.kind !== 'exec') return true;
  try {
    checkOutputs(entry);
    return true;
  } catch (error) {
    close();
    const closed = sockets.map(({ socket }) => formatSocket(socket)).join(', ');
    reportCannotStart(entry, error, log, `closed ${closed}, so its clients are refused`);
    return false;
  }
}

function reportCannotStart(entry: ServiceEntry, error: unknown, log: Logger, what = 'its sockets stay open, unserved'): void {
  log.error(entry.label, `cannot start: ${(error as Error).message}; ${what}; the other services go on`);
}

function logListening(entry: ServiceEntry, sockets: readonly SocketAssignment[], log: Logger): void {
  for (const { socket } of sockets) {
    log.info(entry.label, `listening on ${formatSocket(socket)} (${describe(entry)})`, {
      address: formatSocket(socket),
      port: socket.transport === 'unix' ? null : socket.port,
    });
  }
}

function startService(
  entry: ServiceEntry,
  sockets: readonly SocketAssignment[],
  log: Logger,
  protectedPorts: ReadonlySet<number>,
): Promise<RunningService> {
  const fds = sockets.map(({ fd }) => fd);
  if (entry.program.kind === 'exec') return WaitService.start(entry, fds, log, (pid, running) => tellLauncher(pid, running, entry.exitTimeoutMs));
  if (entry.transport !== 'udp') return InternalStreamService.start(entry, fds, log);
  const udp = sockets.map(({ fd, socket }) => ({ fd, family: socket.transport === 'unix' ? 4 : socket.family }));
  return InternalDgramService.start(entry, udp, log, protectedPorts);
}

/** `tcp, nowait, /usr/bin/cat`, `tcp, wait (lazy), /usr/bin/node` or `udp, internal echo`. */
function describe(entry: ServiceEntry): string {
  if (entry.program.kind === 'internal') return `${entry.transport}, internal ${entry.program.name}`;
  const mode = entry.mode === 'nowait' ? 'nowait' : entry.worker.runAtLoad ? 'wait, started at load' : 'wait, started by the first client';
  return `${entry.transport}, ${mode}, ${entry.program.path}`;
}

function internalPorts(hello: Hello): Set<number> {
  const internal = new Set(hello.entries.filter((e) => e.program.kind === 'internal').map((e) => e.label));
  const ports = hello.sockets
    .filter(({ label, socket }) => internal.has(label) && socket.transport !== 'unix')
    .map(({ socket }) => (socket.transport === 'unix' ? 0 : socket.port));
  return new Set([...wellKnownPorts, ...ports]);
}

