// Small real clients for tests: one TCP exchange, one UDP exchange, a held connection.

import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Whether this machine has IPv6 (and so ::1). */
export function hasIpv6(): boolean {
  return existsSync('/proc/net/if_inet6');
}

/** Everything a socket receives until the other side closes, as text. */
export function readToEnd(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

/**
 * Connects (from `localAddress`, if given: any 127.x.y.z on Linux's
 * loopback), writes `input` (then half-closes), and resolves with
 * everything received until the server closes.
 */
export function exchange(port: number, input: Buffer | string = '', host = '127.0.0.1', timeoutMs = 15_000, localAddress?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => socket.end(input));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no end from port ${port} within ${timeoutMs}ms`)));
  });
}

/** Sends one datagram and resolves with the first answer, or null if none comes within `waitMs`. */
export function datagram(port: number, input: Buffer | string, waitMs = 1000, host = '127.0.0.1'): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, waitMs);
    socket.on('message', (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(message);
    });
    socket.on('error', reject);
    socket.send(input, port, host);
  });
}

/** A connection from a chosen local address, once it is established. */
export function connectFrom(localAddress: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Resolves once `condition` holds, or after `timeoutMs` (the caller asserts what it then sees). */
export async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  for (const start = Date.now(); !condition() && Date.now() - start < timeoutMs; ) await sleep(20);
}
