// The supervisor's side of helper-main.ts: fresh probe copies of listening
// sockets, and a refuser for a service that gave up.

import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { errnoOf } from '../errors.js';
import { runtimeEnvironment } from '../processes/environment.js';

const helperMain = fileURLToPath(new URL(`./helper-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

function startHelper(mode: 'copy' | 'refuse', fds: readonly number[], backlog?: number): ChildProcess {
  const args = [helperMain, mode, String(fds.length), ...(backlog === undefined ? [] : [String(backlog)])];
  return spawn(process.execPath, [...process.execArgv, ...args], {
    stdio: ['ignore', 'ignore', 'inherit', ...fds, 'ipc'],
    env: runtimeEnvironment(),
  });
}

const pendingErrors = new Set(['ENOTCONN', 'EINVAL']);

export interface ClientWatch {
  /** Stops watching (closes the copies); idempotent. */
  close(): void;
}

/**
 * Calls `onClient` once, as soon as a client is waiting to be accepted on
 * any of the listening sockets `fds`, without accepting it. It watches fresh
 * copies of the sockets, received from a helper: a copy that is reading
 * emits an error when a connection is pending (NODE-FACTS 8: ENOTCONN; for
 * unix sockets it is EINVAL), and that error closes only the copy. Resolves
 * once the copies are watched.
 */
export function watchForClients(fds: readonly number[], onClient: () => void, onError: (error: Error) => void): Promise<ClientWatch> {
  return new Promise((resolve, reject) => {
    const copies: net.Socket[] = [];
    let closed = false;
    const watch: ClientWatch = {
      close() {
        closed = true;
        for (const copy of copies) copy.destroy();
      },
    };
    // Receiving a copy makes the socket non-blocking for every holder (the
    // flag is the socket's): a client is told of only once every copy has
    // arrived, so that none arrives after a worker was handed the sockets in
    // blocking mode.
    let clientWaiting = false;
    const tellOnceAllArrived = () => {
      if (!clientWaiting || copies.length < fds.length) return;
      clientWaiting = false;
      onClient();
    };
    const helper = startHelper('copy', fds);
    helper.on('message', (_message: unknown, copy: net.Socket | undefined) => {
      if (!copy) return;
      copies.push(copy);
      // Node starts reading a received socket at once: listen before anything can be emitted.
      copy.on('error', (error) => {
        if (closed) return;
        // A read on a listening socket fails only once a client is pending:
        // with ENOTCONN for TCP, EINVAL for a unix socket.
        if (!pendingErrors.has(errnoOf(error) ?? '')) return onError(error);
        watch.close();
        clientWaiting = true;
        tellOnceAllArrived();
      });
      if (closed) copy.destroy();
      tellOnceAllArrived();
    });
    helper.once('error', reject);
    helper.once('close', (code) => {
      if (copies.length === fds.length) return resolve(watch);
      watch.close();
      reject(new Error(`the socket-copy helper exited with ${code} after ${copies.length} of ${fds.length} copies`));
    });
  });
}

export interface Refuser {
  /** Stops refusing (the last burst is reported first); resolves once the helper has exited. */
  stop(): Promise<void>;
}

/**
 * Accepts and closes every client of `fds` until stopped, calling `onClosed`
 * after each burst; `onError` if it cannot be started (clients then wait).
 */
export function startRefuser(fds: readonly number[], backlog: number, onClosed: (count: number) => void, onError: (error: Error) => void): Refuser {
  const helper = startHelper('refuse', fds, backlog);
  helper.on('message', (message: { closed: number }) => onClosed(message.closed));
  helper.on('error', (error) => {
    if (helper.pid === undefined) onError(error);
  });
  // 'close', not 'exit': a helper that could not be started never exits.
  const exited = new Promise<void>((resolve) => helper.once('close', () => resolve()));
  return {
    stop() {
      helper.kill('SIGTERM');
      return exited;
    },
  };
}
