// What the supervisor and the nowait hosts share: taking over from their
// parent (the hello over IPC, and a check of every inherited fd), the
// parent's later messages, and stopping on request.

import { createLogger, ReportThrottle, type Logger } from '../log.js';
import { inspectFds } from '../sockets/inspect.js';
import { exitCodes } from './exit-codes.js';
import { isHello, type Hello, type SocketAssignment } from './hello.js';

export interface RunningService {
  stop(): Promise<void>;
}

const subject = 'wakeport';

type MessageListener = (message: unknown, handle: unknown) => void;

/**
 * The parent's messages after its hello. Node emits an IPC message once,
 * to whoever listens at that moment, and a message can arrive together
 * with the hello, before anyone could listen for it (a SIGHUP's reload
 * just after start, a drain to a host still starting, a socket bound late):
 * one that comes while nobody listens is kept, and given to each listener
 * that comes later.
 */
export class Inbox {
  readonly #early: [unknown, unknown][] = [];
  readonly #listeners: MessageListener[] = [];

  /** Calls `listener` with every message kept so far, then with each that comes. */
  listen(listener: MessageListener): void {
    this.#listeners.push(listener);
    for (const [message, handle] of this.#early) listener(message, handle);
  }

  deliver(message: unknown, handle: unknown): void {
    if (this.#listeners.length === 0) this.#early.push([message, handle]);
    for (const listener of this.#listeners) listener(message, handle);
  }
}

/** Waits for the parent's hello and checks the inherited fds against it (exit 100 if one is wrong). */
export async function takeOver(withoutIpc: string): Promise<{ hello: Hello; log: Logger; inbox: Inbox }> {
  const inbox = new Inbox();
  const hello = await receiveHello(withoutIpc, inbox);
  const log = createLogger(hello.log);
  const mismatch = checkInheritedFds(hello.sockets);
  if (mismatch) {
    log.error(subject, `fatal: ${mismatch}`);
    process.exit(exitCodes.usage);
  }
  return { hello, log, inbox };
}

/** The first message must be the hello; every later one goes to `inbox`. */
function receiveHello(withoutIpc: string, inbox: Inbox): Promise<Hello> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error(`${withoutIpc} (no IPC channel)`));
    let first = true;
    process.on('message', (message: unknown, handle: unknown) => {
      if (!first) return inbox.deliver(message, handle);
      first = false;
      if (isHello(message)) resolve(message);
      else reject(new Error('the first message from the parent is not a hello'));
    });
  });
}

/** A sentence naming the first fd that is not the socket the table says it is, or null. */
export function checkInheritedFds(sockets: readonly SocketAssignment[]): string | null {
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

/**
 * SIGTERM or SIGINT (forwarded by the parent), or the parent's IPC channel
 * closing (it died): stop every service and exit 0. A second signal while
 * stopping kills what is left at once. `services` is asked when the stop
 * comes (the supervisor's change after start; it may wait for a start under
 * way); `onStop` runs as it begins.
 */
export function handleStopRequests(
  services: () => readonly RunningService[] | Promise<readonly RunningService[]>,
  log: Logger,
  parentGone: string,
  level: 'info' | 'debug',
  onStop: () => void = () => {},
  /** What runs once every service has stopped, before the process exits; kill() at a second signal. */
  afterStop?: { stop(): Promise<void>; kill(): void },
): void {
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) {
      log.warn(subject, `${why} again: killing what is left`);
      void Promise.resolve(services()).then((running) => running.forEach((service) => void service.stop()));
      afterStop?.kill();
      return;
    }
    stopping = true;
    onStop();
    void Promise.resolve(services())
      .then((running) => {
        // Not a count: one nowait pool serves several services, and pools a reload replaced may still be finishing.
        log[level](subject, `${why}: stopping`);
        return Promise.all(running.map((service) => service.stop()));
      })
      .then(() => afterStop?.stop())
      .then(() => {
        ReportThrottle.flushAll();
        log[level](subject, 'stopped');
        process.exit(exitCodes.ok);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => log.warn(subject, `SIGHUP to pid ${process.pid} ignored: send it to wakeport's launcher to reload the table`));
  process.on('disconnect', () => stop(parentGone));
}
