// The supervisor: given the table's listening sockets as inherited fds (by
// the launcher), it checks each is what the table says, starts each
// service on its fd, and stops them all on SIGTERM or SIGINT, or when the
// launcher goes away. It never binds and never receives a socket any other
// way (NODE-FACTS 6–7).

import { formatSocket, type ServiceEntry } from '../config/entry.js';
import { createLogger, type Logger } from '../log.js';
import { InternalDgramService } from '../services/internal/dgram.js';
import { wellKnownPorts } from '../services/internal/index.js';
import { InternalStreamService } from '../services/internal/stream.js';
import { NowaitService } from '../services/nowait.js';
import { WaitService } from '../services/wait.js';
import { inspectFds } from '../sockets/inspect.js';
import { isHello, type Hello, type SocketAssignment } from './hello.js';
import { exitCodes } from './exit-codes.js';

interface RunningService {
  stop(): Promise<void>;
}

const subject = 'wakeport';

export async function supervise(): Promise<void> {
  const hello = await receiveHello();
  const log = createLogger(hello.log);
  const mismatch = checkInheritedFds(hello.sockets);
  if (mismatch) {
    log.error(subject, `fatal: ${mismatch}`);
    process.exit(exitCodes.usage);
  }
  const services = await startServices(hello, log);
  log.info(subject, `serving ${services.length} services (supervisor pid ${process.pid})`, { services: services.length });
  handleStopRequests(services, log);
}

function receiveHello(): Promise<Hello> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('the supervisor must be started by the launcher (no IPC channel)'));
    process.once('message', (message) => {
      if (isHello(message)) resolve(message);
      else reject(new Error('the first message from the launcher is not a hello'));
    });
  });
}

/** A sentence naming the first fd that is not the socket the table says it is, or null. */
function checkInheritedFds(sockets: readonly SocketAssignment[]): string | null {
  const found = inspectFds(sockets.map(({ fd }) => fd));
  for (const { fd, socket, label } of sockets) {
    const actual = found.get(fd);
    const expected = socket.transport === 'udp' ? 'a UDP socket' : `a listening ${socket.transport.toUpperCase()} socket`;
    if (!actual || actual.socket.transport !== socket.transport || !actual.listening) {
      return `fd ${fd}: not ${expected} (service "${label}")`;
    }
  }
  return null;
}

async function startServices(hello: Hello, log: Logger): Promise<RunningService[]> {
  const protectedPorts = internalPorts(hello);
  const started = await Promise.all(
    hello.entries.map(async (entry) => {
      const sockets = hello.sockets.filter(({ label }) => label === entry.label).sort((a, b) => a.index - b.index);
      if (sockets.length === 0) return null;
      try {
        const service = await startService(entry, sockets, log, protectedPorts);
        for (const { socket } of sockets) {
          log.info(entry.label, `listening on ${formatSocket(socket)} (${describe(entry)})`, {
            address: formatSocket(socket),
            port: socket.transport === 'unix' ? null : socket.port,
          });
        }
        return service;
      } catch (error) {
        log.error(entry.label, `cannot start: ${(error as Error).message}; the other services go on`);
        return null;
      }
    }),
  );
  return started.filter((service) => service !== null);
}

function startService(
  entry: ServiceEntry,
  sockets: readonly SocketAssignment[],
  log: Logger,
  protectedPorts: ReadonlySet<number>,
): Promise<RunningService> {
  const fds = sockets.map(({ fd }) => fd);
  if (entry.program.kind === 'exec') {
    return entry.mode === 'wait' ? WaitService.start(entry, fds, log) : NowaitService.start(entry, fds, log);
  }
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

/**
 * SIGTERM or SIGINT (forwarded by the launcher), or the launcher's IPC
 * channel closing (it died): stop every service and exit 0. A second signal
 * while stopping kills what is left at once.
 */
function handleStopRequests(services: readonly RunningService[], log: Logger): void {
  let stopping: Promise<void> | null = null;
  const stop = (why: string): void => {
    if (stopping) {
      log.warn(subject, `${why} again: killing what is left`);
      for (const service of services) void service.stop();
      return;
    }
    log.info(subject, `${why}: stopping ${services.length} services`);
    stopping = Promise.all(services.map((service) => service.stop())).then(() => {
      log.info(subject, 'stopped');
      process.exit(exitCodes.ok);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => log.warn(subject, 'SIGHUP: reloading the table is not supported yet; ignored'));
  process.on('disconnect', () => stop('the launcher is gone'));
}
