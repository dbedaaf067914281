// What socket is behind an inherited file descriptor: its transport, whether
// it listens, and its local address. Node cannot getsockname() a raw fd
// without wrapping it (and a wrapped listening socket starts accepting), so
// this reads Linux's /proc instead: the fd's socket inode, then the kernel's
// socket tables, which list each socket's inode.

import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import type { SocketSpec } from '../config/entry.js';

export interface InspectedSocket {
  readonly socket: SocketSpec;
  /** TCP and unix stream: in the LISTEN state. UDP: always true once bound. */
  readonly listening: boolean;
}

/**
 * What each of `fds` (open in this process) is: null for an fd that is not
 * a socket wakeport can serve. Reads each kernel table once, however many
 * fds there are. Throws when /proc cannot tell (not Linux, or fd not open).
 */
export function inspectFds(fds: readonly number[]): Map<number, InspectedSocket | null> {
  const inodes = new Map<number, string | undefined>();
  for (const fd of fds) inodes.set(fd, /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1]);
  const sockets = new Map<string, InspectedSocket>();
  const wanted = new Set([...inodes.values()].filter((inode) => inode !== undefined));
  if (wanted.size > 0) readInetSockets(wanted, sockets);
  if (sockets.size < wanted.size) readUnixSockets(wanted, sockets);
  return new Map(fds.map((fd) => [fd, sockets.get(inodes.get(fd) ?? '') ?? null]));
}

const inetTables = [
  { file: 'tcp', transport: 'tcp', family: 4 },
  { file: 'tcp6', transport: 'tcp', family: 6 },
  { file: 'udp', transport: 'udp', family: 4 },
  { file: 'udp6', transport: 'udp', family: 6 },
] as const;

const tcpListen = '0A';

function readInetSockets(wanted: ReadonlySet<string>, found: Map<string, InspectedSocket>): void {
  for (const table of inetTables) {
    for (const fields of readTable(`/proc/self/net/${table.file}`)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const inode = fields[9]!;
      if (!wanted.has(inode)) continue;
      const [hexHost, hexPort] = fields[1]!.split(':') as [string, string];
      const host = decodeHost(hexHost, table.family);
      const socket = { transport: table.transport, family: table.family, host, port: parseInt(hexPort, 16) };
      found.set(inode, { socket, listening: table.transport === 'udp' || fields[3] === tcpListen });
    }
  }
}

const unixStream = '0001';
const unixAcceptFlag = 0x10000;

function readUnixSockets(wanted: ReadonlySet<string>, found: Map<string, InspectedSocket>): void {
  for (const fields of readTable(`/proc/self/net/unix`)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const inode = fields[6]!;
    if (!wanted.has(inode) || fields[4] !== unixStream) continue;
    const listening = (parseInt(fields[3]!, 16) & unixAcceptFlag) !== 0;
    found.set(inode, { socket: { transport: 'unix', path: fields[7] ?? '' }, listening });
  }
}
function readTable(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => line.trim() !== '')
    .map((line) => line.trim().split(/\s+/));
}

/** The kernel prints each 32-bit word of the address in host byte order. */
function decodeHost(hex: string, family: 4 | 6): string {
  const bytes = Buffer.alloc(hex.length / 2);
  for (let word = 0; word < hex.length / 8; word++) {
    const value = parseInt(hex.slice(word * 8, word * 8 + 8), 16);
    if (os.endianness() === 'LE') bytes.writeUInt32LE(value, word * 4);
    else bytes.writeUInt32BE(value, word * 4);
  }
  if (family === 4) return [...bytes].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return compressV6(groups);
}

/** The shortest form of an IPv6 address, as Node prints it: the longest run of zero groups becomes "::". */
function compressV6(groups: string[]): string {
  let best = { start: -1, length: 0 };
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === '0') end++;
    if (end - start > best.length && end - start > 1) best = { start, length: end - start };
    start = end === start ? start + 1 : end;
  }
  if (best.start === -1) return groups.join(':');
  const head = groups.slice(0, best.start).join(':');
  const tail = groups.slice(best.start + best.length).join(':');
  return `${head}::${tail}`;
}
