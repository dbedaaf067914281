// wakeport/worker: for Node programs that wakeport (or systemd) starts with
// their listening sockets handed over (handoff = listen-fds).
//
//   import http from 'node:http';
//   import { listenFds, ready } from 'wakeport/worker';
//
//   const sockets = listenFds({ createServer: () => http.createServer(app), idleTimeout: 60_000 });
//   ready();
//
// listenFds() takes the sockets at fd 3, 4, … (only when LISTEN_PID is this
// process), serves each stream socket with a server of yours and binds each
// UDP socket to a dgram.Socket, keyed by name (LISTEN_FDNAMES). On SIGTERM it
// stops accepting, lets the requests under way finish (HTTP responses then
// say "Connection: close"), and exits 0 once every connection is closed, or
// after `stopTimeout`. With `idleTimeout`, it does the same once no
// connection has been open, and no datagram has come, for that long:
// wakeport starts it again at the next client.

import dgram from 'node:dgram';
import { writeSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { udpFamilies } from './sockets/inspect.js';
import { listenOnFd, takeListenFds } from './sockets/listen-fds.js';

export interface ListenFdsOptions<S extends net.Server> {
  /** Makes the server for each inherited stream socket (default: net.createServer()). */
  readonly createServer?: () => S;
  /** Stop and exit 0 after this many ms without an open connection or a datagram. */
  readonly idleTimeout?: number;
  /** After SIGTERM (or idleTimeout), exit anyway after this many ms (default 10 s). */
  readonly stopTimeout?: number;
}

export type Inherited<S extends net.Server> = S | dgram.Socket;

/** The inherited sockets, served and bound, keyed by name (several may share one). */
export function listenFds<S extends net.Server = net.Server>(options: ListenFdsOptions<S> = {}): Record<string, Inherited<S>[]> {
  const given = takeListenFds();
  const udp = udpFamilies(given.map(({ fd }) => fd));
  const byName: Record<string, Inherited<S>[]> = {};
  const servers: S[] = [];
  const datagrams: dgram.Socket[] = [];
  for (const { fd, name } of given) {
    const family = udp.get(fd);
    let handle: Inherited<S>;
    if (family !== undefined) {
      const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      socket.bind({ fd });
      datagrams.push(socket);
      handle = socket;
    } else {
      // Any other socket is served as a stream: listen() takes a listening TCP or unix socket as it is.
      const server = options.createServer ? options.createServer() : (net.createServer() as S);
      explainListenFailure(server, fd);
      listenOnFd(server, fd);
      servers.push(server);
      handle = server;
    }
    (byName[name ?? 'unknown'] ??= []).push(handle);
  }
  const stop = gracefulStop(servers, options.stopTimeout ?? 10_000);
  process.once('SIGTERM', stop);
  if (options.idleTimeout !== undefined) exitWhenIdle(servers, datagrams, options.idleTimeout, stop);
  return byName;
}

/**
 * listen() fails, asynchronously, on a socket that is not a listening stream
 * socket (a connected one, a unix datagram one) with just "listen EINVAL":
 * unless the program listens for the server's errors itself, it crashes
 * saying which fd it was given.
 */
function explainListenFailure(server: net.Server, fd: number): void {
  const explain = (error: Error) => {
    if (server.listenerCount('error') > 0) return;
    throw new Error(`wakeport/worker: fd ${fd} from LISTEN_FDS is not a listening stream socket: ${error.message}`, { cause: error });
  };
  server.once('error', explain);
  server.once('listening', () => server.off('error', explain));
}

/** Tells wakeport the worker is ready (ready = notify). Does nothing when not asked to. */
export function ready(): void {
  notify('READY=1');
}

/** Sends sd_notify-style lines (READY=1, STATUS=…, STOPPING=1, WATCHDOG=1) to NOTIFY_FD, if there is one. */
export function notify(...lines: string[]): void {
  const fd = Number(process.env.NOTIFY_FD);
  if (!Number.isInteger(fd) || fd < 0) return;
  writeSync(fd, lines.map((line) => `${line}\n`).join(''));
}

/**
 * Stops accepting, keeps serving the connections that are open, and exits
 * once they are closed. Closing idle keep-alive connections at once (what
 * http.Server.close() does) would race with requests already on their way,
 * so each gets "Connection: close" on its next response instead.
 */
function gracefulStop(servers: readonly net.Server[], timeoutMs: number): () => void {
  let stopping = false;
  return () => {
    if (stopping) return;
    stopping = true;
    notify('STOPPING=1');
    for (const server of servers) {
      server.prependListener('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
        if (!response.headersSent) response.setHeader('Connection', 'close');
      });
      net.Server.prototype.close.call(server);
    }
    setTimeout(() => process.exit(0), timeoutMs).unref();
    setInterval(() => {
      void openConnections(servers).then((count) => {
        if (count === 0) process.exit(0);
      });
    }, 50).unref();
  };
}

function openConnections(servers: readonly net.Server[]): Promise<number> {
  const counts = servers.map(
    (server) => new Promise<number>((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count))),
  );
  return Promise.all(counts).then((all) => all.reduce((sum, count) => sum + count, 0));
}

/** Stops once no connection has been open, and no datagram has come, for `idleMs`. */
function exitWhenIdle(servers: readonly net.Server[], datagrams: readonly dgram.Socket[], idleMs: number, stop: () => void): void {
  let open = 0;
  let timer: NodeJS.Timeout | null = setTimeout(stop, idleMs);
  for (const socket of datagrams) socket.on('message', () => timer?.refresh());
  for (const server of servers) {
    server.on('connection', (socket: net.Socket) => {
      open++;
      if (timer) clearTimeout(timer);
      timer = null;
      socket.once('close', () => {
        if (--open === 0) timer = setTimeout(stop, idleMs);
      });
    });
  }
}
