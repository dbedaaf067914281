// A program's environment: a small clean base (not wakeport's own
// environment), the service's env options, then facts about the connection
// under the names CGI/systemd (REMOTE_ADDR) and UCSPI (TCPREMOTEIP) use.

import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { ServiceEntry, Transport } from '../config/entry.js';
import type { Address } from '../sockets/internals.js';

export type Environment = Record<string, string>;

const passedThrough = ['PATH', 'LANG', 'TZ'] as const;

/**
 * This wakeport's mark on its wait workers, as WAKEPORT_INVOCATION_ID (as
 * systemd's INVOCATION_ID marks a unit's processes): a process that carries
 * it descends from one of them, whatever its parent or session now
 * (runtime/escapees.ts). The launcher makes it and tells the supervisor
 * (useInvocationId), so both can find what the workers left.
 */
let invocation = randomUUID().replaceAll('-', '');

export function invocationId(): string {
  return invocation;
}

export function useInvocationId(id: string): void {
  invocation = id;
}

/**
 * The environment of wakeport's own processes (supervisor, nowait hosts,
 * helpers): only what the programs' environments are built from. Not the
 * rest of the caller's: NODE_EXTRA_CA_CERTS, for one, makes every Node
 * process read a CA bundle at start-up (measured: 80 → 285 ms).
 */
export function runtimeEnvironment(parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...passedThrough, 'HOME', 'USER']) if (parent[name] !== undefined) env[name] = parent[name];
  return env;
}
const defaultPath = '/usr/local/bin:/usr/bin:/bin';

/** The part of the environment that is the same for every process of a service. */
export function serviceEnvironment(entry: ServiceEntry, parent: NodeJS.ProcessEnv = process.env): Environment {
  const self = os.userInfo();
  const env: Environment = {
    PATH: defaultPath,
    HOME: entry.runAs?.home ?? parent.HOME ?? self.homedir,
    USER: entry.runAs?.name ?? self.username,
  };
  for (const name of passedThrough) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of entry.env) env[name] = value;
  return env;
}

/**
 * Who is connected, for a program given one connection, as NAME=value
 * (addresses are null for unix sockets).
 */
export function connectionEnvironment(peer: Address | null, local: Address | null, transport: Transport): string[] {
  if (transport === 'unix') return ['PROTO=UNIX'];
  // Empty when the client is already gone: the program will see that soon enough.
  const remoteIp = peer?.address ?? '';
  const remotePort = String(peer?.port);
  return [
    'PROTO=TCP',
    `TCPREMOTEIP=${remoteIp}`,
    `TCPREMOTEPORT=${remotePort}`,
    `TCPLOCALIP=${local?.address ?? ''}`,
    `TCPLOCALPORT=${local?.port}`,
    `REMOTE_ADDR=${remoteIp}`,
    `REMOTE_PORT=${remotePort}`,
  ];
}

/** The names connectionEnvironment sets for `transport`: the connection's values win over a service's own. */
export function connectionVariables(transport: Transport): string[] {
  return connectionEnvironment(null, null, transport).map((pair) => pair.slice(0, pair.indexOf('=')));
}
