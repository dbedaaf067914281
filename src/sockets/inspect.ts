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
 * What each of `fds` is: null for an fd that is not a socket wakeport can
 * serve. Reads each kernel table at most once, however many fds there are,
 * the quick ones first, and stops once every socket is found: the TCP tables
 * take milliseconds each to read on a machine with much memory, because the
 * kernel walks its whole connection hash table. Throws when /proc cannot
 * tell (not Linux, or an fd not open).
 */
export function inspectFds(fds: readonly number[]): Map<number, InspectedSocket | null> {
  const { inodes, sockets } = lookUp(fds, [...udpTables, readUnixSockets, ...tcpTables]);
  return new Map(fds.map((fd) => [fd, sockets.get(inodes.get(fd) ?? '') ?? null]));
}

/**
 * Which of `fds` are UDP sockets, and of which family: all that a worker
 * must know, since a net.Server takes any listening stream socket as it is.
 * Reads only the UDP tables, which are quick (see inspectFds).
 */
export function udpFamilies(fds: readonly number[]): Map<number, 4 | 6> {
  const { inodes, sockets } = lookUp(fds, udpTables);
  const families = new Map<number, 4 | 6>();
  for (const [fd, inode] of inodes) {
    const socket = sockets.get(inode ?? '')?.socket;
    if (socket?.transport === 'udp') families.set(fd, socket.family);
  }
  return families;
}

/**
 * The connections waiting in the accept queues of the listening stream
 * sockets `fds`, each as a key that stays the same while it waits. The
 * kernel lists a connection not yet accepted with inode 0: a TCP one by its
 * two addresses, a unix one by the kernel's (hashed) address of its socket,
 * which reads as 0 where kernel addresses are hidden (kptr_restrict): then
 * they are numbered per socket, so that two readings compare by count. A
 * TCP client that reset while it waited is no longer listed, but still
 * counts in its listener's queue length, and is accepted like any other:
 * such clients are numbered too. Reads the TCP tables, which take
 * milliseconds (see inspectFds).
 */
export function waitingConnections(fds: readonly number[]): Set<string> {
  const inodes = new Set(fds.map(socketInode));
  const waiting = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    const rows = readTable(`/proc/self/net/${file}`);
    // sl local_address rem_address st tx_queue:rx_queue …: a listener's rx_queue is its accept queue's length.
    const listeners = listenerRows(rows, inodes).map((fields) => ({ local: fields[1]!, queued: parseInt(fields[4]!.split(':')[1]!, 16), listed: 0 }));
    for (const [, local, remote, state, , , , , , inode] of rows) {
      if (inode !== '0' || (state !== tcpEstablished && state !== tcpCloseWait)) continue;
      const listener = listeners.find((candidate) => listensFor(candidate.local, local!));
      if (!listener) continue;
      listener.listed++;
      waiting.add(`${local}>${remote}`);
    }
    for (const { local, queued, listed } of listeners) numbered(waiting, `${local}>reset`, queued - listed);
  }
  const unixRows = readUnixTable();
  const paths = unixPaths(unixRows, inodes);
  const hidden = new Map<string, number>();
  for (const [address, , , , , , inode, path] of unixRows) {
    if (inode !== '0' || path === undefined || !paths.has(path)) continue;
    if (/[1-9a-f]/.test(address!)) waiting.add(address!);
    else hidden.set(path, (hidden.get(path) ?? 0) + 1);
  }
  for (const [path, count] of hidden) numbered(waiting, path, count);
  return waiting;
}

/**
 * The connections accepted from the listening stream sockets `fds` that
 * some process still holds, as /proc names them (`socket:[123]`): those
 * whose local address is a listener's (no other socket can have it) and
 * that have an inode (one not yet accepted has none). Reads the TCP tables,
 * which take milliseconds (see inspectFds).
 */
export function acceptedConnections(fds: readonly number[]): Set<string> {
  const inodes = new Set(fds.map(socketInode));
  const accepted = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    const rows = readTable(`/proc/self/net/${file}`);
    const listeners = listenerRows(rows, inodes).map((fields) => fields[1]!);
    for (const [, local, , state, , , , , , inode] of rows) {
      if (inode === '0' || state === tcpListen || !listeners.some((listener) => listensFor(listener, local!))) continue;
      accepted.add(`socket:[${inode}]`);
    }
  }
  const unixRows = readUnixTable();
  // Num RefCount Protocol Flags Type St Inode Path: an accepted socket has its listener's path.
  const paths = unixPaths(unixRows, inodes);
  for (const [, , , flags, , , inode, path] of unixRows) {
    if (inode === '0' || path === undefined || !paths.has(path) || (parseInt(flags!, 16) & unixAcceptFlag) !== 0) continue;
    accepted.add(`socket:[${inode}]`);
  }
  return accepted;
}

/** The rows of a TCP table (sl local_address rem_address st tx:rx … inode) that are listeners among `inodes`. */
function listenerRows(rows: readonly string[][], inodes: ReadonlySet<string | undefined>): string[][] {
  return rows.filter((fields) => fields[3] === tcpListen && inodes.has(fields[9]));
}

/** The paths of the unix sockets among `inodes` (Num RefCount Protocol Flags Type St Inode Path). */
function unixPaths(rows: readonly string[][], inodes: ReadonlySet<string | undefined>): Set<string> {
  return new Set(rows.filter((fields) => inodes.has(fields[6]) && fields[7] !== undefined).map((fields) => fields[7]!));
}

/** Adds `prefix#1` … `prefix#count`: clients that cannot be told apart. */
function numbered(keys: Set<string>, prefix: string, count: number): void {
  for (let n = 1; n <= count; n++) keys.add(`${prefix}#${n}`);
}

const tcpEstablished = '01';
// A client that has sent its FIN while it waits.
const tcpCloseWait = '08';

/** Whether a socket listening on `listener` (hex host:port, as the tables print it) accepts connections to `local`. */
function listensFor(listener: string, local: string): boolean {
  const [host, port] = listener.split(':') as [string, string];
  return local.endsWith(`:${port}`) && (/^0+$/.test(host) || local.startsWith(`${host}:`));
}

/** The inode of the socket behind `fd`, as the kernel's tables and /proc/PID/fd name it; undefined for a non-socket. */
export function socketInode(fd: number): string | undefined {
  return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
}

/** Each fd's socket inode (undefined: not a socket), and what `tables`, read in turn until all are found, say of them. */
function lookUp(fds: readonly number[], tables: readonly TableReader[]) {
  const inodes = new Map(fds.map((fd) => [fd, socketInode(fd)]));
  const wanted = new Set([...inodes.values()].filter((inode) => inode !== undefined));
  const sockets = new Map<string, InspectedSocket>();
  for (const read of tables) {
    if (sockets.size === wanted.size) break;
    read(wanted, sockets);
  }
  return { inodes, sockets };
}

type TableReader = (wanted: ReadonlySet<string>, found: Map<string, InspectedSocket>) => void;

const tcpListen = '0A';

function inetTable(file: string, transport: 'tcp' | 'udp', family: 4 | 6): TableReader {
  return (wanted, found) => {
    for (const fields of readTable(`/proc/self/net/${file}`, wanted)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const inode = fields[9]!;
      if (!wanted.has(inode)) continue;
      const [hexHost, hexPort] = fields[1]!.split(':') as [string, string];
      const socket = { transport, family, host: decodeHost(hexHost, family), port: parseInt(hexPort, 16) };
      found.set(inode, { socket, listening: transport === 'udp' || fields[3] === tcpListen });
    }
  };
}

const udpTables = [inetTable('udp', 'udp', 4), inetTable('udp6', 'udp', 6)];
const tcpTables = [inetTable('tcp', 'tcp', 4), inetTable('tcp6', 'tcp', 6)];

const unixStream = '0001';
const unixAcceptFlag = 0x10000;

function readUnixSockets(wanted: ReadonlySet<string>, found: Map<string, InspectedSocket>): void {
  for (const fields of readUnixTable(wanted)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const inode = fields[6]!;
    if (!wanted.has(inode) || fields[4] !== unixStream) continue;
    const listening = (parseInt(fields[3]!, 16) & unixAcceptFlag) !== 0;
    found.set(inode, { socket: { transport: 'unix', path: fields[7] ?? '' }, listening });
  }
}

/** The rows of a /proc/net table, split into fields: all of them, or only those that may name one of `inodes`. */
function readTable(file: string, inodes?: ReadonlySet<string>, split = (line: string) => line.trim().split(/\s+/)): string[][] {
  const text = readFileSync(file, 'utf8');
  const lines = inodes === undefined ? text.split('\n').slice(1) : linesNaming(text, inodes);
  return lines.filter((line) => line.trim() !== '').map(split);
}

/** The unix socket table's rows: Num RefCount Protocol Flags Type St Inode, and the path, which may hold spaces. */
function readUnixTable(inodes?: ReadonlySet<string>): string[][] {
  return readTable('/proc/self/net/unix', inodes, (line) => {
    const [, fields = '', path] = /^\s*(\S+(?: +\S+){6})(?: (.*))?$/.exec(line) ?? [];
    return [...fields.split(/ +/), ...(path === undefined ? [] : [path])];
  });
}

/**
 * The lines of a table's text in which one of `inodes` stands as a field
 * (the caller checks which field), found without splitting the others:
 * after a load the TCP tables hold tens of thousands of TIME_WAIT rows, and
 * splitting them all left a just-started supervisor with 30–40 MB more heap.
 */
function linesNaming(text: string, inodes: ReadonlySet<string>): string[] {
  if (inodes.size === 0) return [];
  const starts = new Set<number>();
  for (const match of text.matchAll(new RegExp(`[ \\t](?:${[...inodes].join('|')})(?=[ \\t\\n]|$)`, 'g'))) {
    const start = text.lastIndexOf('\n', match.index) + 1;
    if (start > 0) starts.add(start); // 0: the header line.
  }
  return [...starts].map((start) => {
    const end = text.indexOf('\n', start);
    return text.slice(start, end === -1 ? undefined : end);
  });
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
