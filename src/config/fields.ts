// The meaning of each field of a service line (the order is in syntax.ts).
// Each parser returns plain values or throws a LineProblem whose message says
// what is wrong and, where it helps, what would be right.

import path from 'node:path';
import { internalNames, type InternalName, type Transport } from './entry.js';

/** A problem with one line of the table; the caller adds file and line. */
export class LineProblem extends Error {
  constructor(
    message: string,
    /** The line it is on, when it is not the service line (an option line). */
    readonly line?: number,
    /** Further problems found in the same service (other option lines), each reported. */
    readonly more: readonly LineProblem[] = [],
  ) {
    super(message);
  }
}

export type SocketType = 'stream' | 'dgram';

export function parseSocketType(field: string): SocketType {
  if (field === 'stream' || field === 'dgram') return field;
  if (['raw', 'rdm', 'seqpacket'].includes(field)) {
    throw new LineProblem(`socket type "${field}" is not supported (wakeport serves stream and dgram)`);
  }
  throw new LineProblem(`unknown socket type "${field}" (expected stream or dgram)`);
}

export interface Protocol {
  readonly transport: Transport;
  /** The address family the protocol asks for: tcp and udp mean IPv4, as in BSD inetd. */
  readonly family: 4 | 6 | null;
  /** Whether the protocol named its family (tcp4, tcp6) or left it to the host (tcp). */
  readonly familyExplicit: boolean;
}

const protocols: Record<string, Protocol> = {
  tcp: { transport: 'tcp', family: 4, familyExplicit: false },
  tcp4: { transport: 'tcp', family: 4, familyExplicit: true },
  tcp6: { transport: 'tcp', family: 6, familyExplicit: true },
  udp: { transport: 'udp', family: 4, familyExplicit: false },
  udp4: { transport: 'udp', family: 4, familyExplicit: true },
  udp6: { transport: 'udp', family: 6, familyExplicit: true },
  unix: { transport: 'unix', family: null, familyExplicit: false },
};

export function parseProtocol(field: string, socketType: SocketType): Protocol {
  if (field.startsWith('rpc/')) throw new LineProblem(`RPC services ("${field}") are not supported`);
  // FreeBSD's and NetBSD's inetd take socket buffer sizes here; Node can set them on no listening socket.
  const [base, ...buffers] = field.split(',');
  if (buffers.length > 0 && Object.hasOwn(protocols, base!) && buffers.every((b) => /^(sndbuf|rcvbuf)=/.test(b))) {
    throw new LineProblem(`socket buffer sizes ("${field}") are not supported: write ${base} alone`);
  }
  if (field === 'tcp46' || field === 'udp46') {
    const v4 = field.slice(0, 3);
    throw new LineProblem(`"${field}" (FreeBSD: IPv4 and IPv6 on one socket) is not supported: write two lines, one ${v4} and one ${v4}6`);
  }
  const protocol = Object.hasOwn(protocols, field) ? protocols[field] : undefined;
  if (!protocol) {
    throw new LineProblem(`unknown protocol "${field}" (expected one of ${Object.keys(protocols).join(', ')})`);
  }
  if (socketType === 'stream' && protocol.transport === 'udp') {
    throw new LineProblem(`socket type stream needs protocol tcp, tcp4, tcp6 or unix, not ${field}`);
  }
  if (socketType === 'dgram' && protocol.transport === 'tcp') {
    throw new LineProblem(`socket type dgram needs protocol udp, udp4 or udp6, not ${field}`);
  }
  if (socketType === 'dgram' && protocol.transport === 'unix') {
    throw new LineProblem('unix dgram sockets are not supported (Node has no AF_UNIX datagram sockets)');
  }
  return protocol;
}

export interface WaitField {
  readonly mode: 'wait' | 'nowait';
  /** Spawns per rate window (`nowait.max`). */
  readonly max: number | null;
  /** FreeBSD's `nowait/max-child/…/max-child-per-ip`: max-connections and max-per-source. */
  readonly maxConnections: number | null;
  readonly maxPerSource: number | null;
}

const connectionLimitMax = 16384;

const spawnLimitMax = 2 ** 31 - 1;

export function parseWait(field: string): WaitField {
  const match = /^(wait|nowait)(?:\.(\d+))?$/.exec(field);
  if (match) {
    const max = match[2] === undefined ? null : Number(match[2]);
    if (max === 0) throw new LineProblem(`"${field}": the spawn limit after the dot must be at least 1`);
    // inetd reads it into a C int; beyond that it is no limit, and past 2^53 not even the number written.
    if (max !== null && max > spawnLimitMax) throw new LineProblem(`"${field}": the spawn limit after the dot is at most ${spawnLimitMax}`);
    return { mode: match[1] as 'wait' | 'nowait', max, maxConnections: null, maxPerSource: null };
  }
  const freebsd = /^(wait|nowait)\/(\d+)(?:\/(\d+)(?:\/(\d+))?)?$/.exec(field);
  if (freebsd) return parseFreeBsdLimits(field, freebsd[1] as 'wait' | 'nowait', freebsd.slice(2).map((n) => Number(n ?? 0)));
  throw new LineProblem(`"${field}" is neither wait nor nowait (optionally with .max, as in nowait.100, or FreeBSD's nowait/max-child[/per-minute[/per-ip]])`);
}

/**
 * FreeBSD's wait/max-child/max-connections-per-ip-per-minute/max-child-per-ip
 * (0: no limit): max-child is max-connections, max-child-per-ip is
 * max-per-source. A per-minute limit per address wakeport has not: rather
 * than serve without it, the line is refused.
 */
function parseFreeBsdLimits(field: string, mode: 'wait' | 'nowait', [child, perMinute, childPerIp]: number[]): WaitField {
  if (perMinute !== 0) {
    throw new LineProblem(`"${field}": a limit of connections per minute from one address (the second number) has no equivalent in wakeport: write 0 there`);
  }
  const limit = (value: number, what: string): number | null => {
    if (value > connectionLimitMax) throw new LineProblem(`"${field}": ${what} ${value} is more than ${connectionLimitMax}`);
    return value === 0 ? null : value;
  };
  return { mode, max: null, maxConnections: limit(child!, 'max-child'), maxPerSource: limit(childPerIp!, 'max-child-per-ip') };
}

export interface UserField {
  /** null for "-": the user running wakeport. */
  readonly user: string | null;
  readonly group: string | null;
  /** Written as user.group (no colon): a name with a dot in it was cut there. */
  readonly dotted: boolean;
}

export function parseUserField(field: string): UserField {
  if (field === '-') return { user: null, group: null, dotted: false };
  const slash = field.indexOf('/');
  if (slash >= 0) {
    throw new LineProblem(`"${field}": login classes ("${field.slice(slash)}") are a BSD feature Linux has not: write ${field.slice(0, slash)}`);
  }
  // With a colon, a dot is part of a name (first.last:staff), as in GNU and FreeBSD inetd.
  const dotted = !field.includes(':') && field.includes('.');
  const [user, group, extra] = field.split(dotted ? '.' : ':');
  if (!user || group === '' || extra !== undefined) {
    throw new LineProblem(`"${field}" is not a user field (expected user, user:group, user.group or -)`);
  }
  return { user, group: group ?? null, dotted };
}

export type ProgramField =
  | { readonly kind: 'internal'; readonly name: string | null }
  | { readonly kind: 'exec'; readonly path: string; readonly argv0: string; readonly args: readonly string[] };

/** `program [argv0 args…]`. Relative paths must start with ./ or ../ and are taken from `baseDir`. */
export function parseProgram(fields: readonly string[], baseDir: string): ProgramField {
  const [program, ...argv] = fields;
  if (program === undefined) throw new LineProblem('missing fields: a service line needs at least 6');
  if (program === 'internal') {
    if (argv.length > 1) {
      internalName(argv[0]!, '', null); // Says first if it is no built-in here (FreeBSD's `internal auth -r`).
      throw new LineProblem(`internal services take at most one argument, got ${argv.length}`);
    }
    return { kind: 'internal', name: argv[0] ?? null };
  }
  let resolved: string;
  if (path.isAbsolute(program)) resolved = program;
  else if (program.startsWith('./') || program.startsWith('../')) resolved = path.resolve(baseDir, program);
  else {
    throw new LineProblem(
      `program "${program}" must be an absolute path, a path starting with ./ or ../ (from this file's folder), or internal`,
    );
  }
  const [argv0 = path.basename(resolved), ...args] = argv;
  return { kind: 'exec', path: resolved, argv0, args };
}

/** The built-ins' well-known ports. */
const internalPorts: ReadonlyMap<number, InternalName> = new Map([
  [7, 'echo'],
  [9, 'discard'],
  [13, 'daytime'],
  [19, 'chargen'],
  [37, 'time'],
]);

/** Built-ins other inetds have and wakeport has not. */
const missingBuiltins: Record<string, string> = {
  tcpmux: 'TCPMUX (RFC 1078) is not provided',
  auth: 'the ident (auth) built-in is not provided',
  ident: 'the ident (auth) built-in is not provided',
};

/** An internal service's built-in, and the word after `internal` when the service field decided instead. */
export interface InternalChoice {
  readonly name: InternalName;
  readonly ignored: string | null;
}

/**
 * Which built-in an internal service is. A service field that names one (by
 * name, or by an alias whose port in /etc/services is a built-in's, as
 * GNU inetd's sink) decides, as in every inetd, which ignore the words after
 * `internal`. A port number in the field is how wakeport serves a built-in
 * elsewhere: the argument then names it, or else the port tells it
 * (`127.0.0.1:7`).
 */
export function internalName(argument: string | null, service: string, port: number | null): InternalChoice {
  const named = /^\d+$/.test(service) ? undefined : builtinOf(service, port);
  if (named !== undefined) return { name: named, ignored: argument !== null && argument !== named ? argument : null };
  const name = argument ?? service;
  if (isInternalName(name)) return { name, ignored: null };
  const byPort = argument === null && port !== null ? internalPorts.get(port) : undefined;
  if (byPort !== undefined) return { name: byPort, ignored: null };
  const list = internalNames.join(', ');
  if (Object.hasOwn(missingBuiltins, name)) throw new LineProblem(`"${name}": ${missingBuiltins[name]} (internal services: ${list})`);
  if (argument === null) {
    throw new LineProblem(`"${service}" is not an internal service (${list}); name one after "internal"`);
  }
  throw new LineProblem(`unknown internal service "${argument}" (expected one of ${list})`);
}

function builtinOf(service: string, port: number | null): InternalName | undefined {
  if (isInternalName(service)) return service;
  return port === null ? undefined : internalPorts.get(port);
}

export function isInternalName(name: string): name is InternalName {
  return (internalNames as readonly string[]).includes(name);
}

export interface ServiceField {
  /** Each host as written, brackets removed; null means every address. More than one for a list (`127.0.0.1,[::1]:echo`). */
  readonly hosts: readonly (string | null)[];
  /** A service name or a port number, as written. */
  readonly service: string;
}

/**
 * `service`, `host:service`, `[v6addr]:service` or `*:service`; the host
 * may be a comma-separated list, one socket each (GNU inetd's service node).
 */
export function parseServiceField(field: string, stickyHost: string | null): ServiceField {
  if (/(^|:)tcpmux\//.test(field)) throw new LineProblem(`"${field}": ${missingBuiltins.tcpmux}: TCPMUX services cannot be served`);
  const split = /^(.*):([^:\]]*)$/.exec(field);
  if (!split) {
    if (field.startsWith('[')) throw new LineProblem(`"${field}" is not of the form [v6addr]:service`);
    return { hosts: stickyHost === null ? [null] : parseHostLine(stickyHost), service: field };
  }
  const service = split[2]!;
  if (service === '') throw new LineProblem(`"${field}" has no service or port after the colon`);
  return { hosts: parseHosts(split[1]!, { where: `"${field}"`, after: `:${service}`, bareIpv6Alone: false }), service };
}

/** The hosts of a host line (`127.0.0.1,[::1]:` alone on a line, its colon left out here); throws a LineProblem naming it. */
function parseHostLine(text: string): (string | null)[] {
  return parseHosts(text, { where: `host line "${text}:"`, after: ':', bareIpv6Alone: true });
}

/** What is wrong with a host line, or null. */
export function hostLineProblem(text: string): string | null {
  try {
    parseHostLine(text);
    return null;
  } catch (error) {
    if (!(error instanceof LineProblem)) throw error;
    return error.message;
  }
}

const bracketed = /^\[[^\]]+\]$/;

interface HostsSpelling {
  /** How an error names what it is about: the service field, or the host line. */
  readonly where: string;
  /** What follows the hosts there, to show them corrected. */
  readonly after: string;
  /** One IPv6 address without brackets is allowed (a host line always allowed it). */
  readonly bareIpv6Alone: boolean;
}

/** The hosts written before a service's colon, or on a host line; `*` or nothing is every address (null). */
function parseHosts(text: string, { where, after, bareIpv6Alone }: HostsSpelling): (string | null)[] {
  if (/\s/.test(text)) throw new LineProblem(`${where}: write a list of hosts without spaces, as 127.0.0.1,[::1]${after}`);
  const hosts = text.split(',');
  for (const host of hosts) {
    if (host === '' && hosts.length > 1) throw new LineProblem(`${where}: an empty address in the list of hosts`);
    if (!bracketed.test(host) && (host.includes('[') || host.includes(']'))) throw new LineProblem(`${where}: "${host}" is not of the form [v6addr]`);
  }
  const unbracketedIpv6 = (host: string) => host.includes(':') && !bracketed.test(host);
  if (hosts.some(unbracketedIpv6) && !(bareIpv6Alone && hosts.length === 1)) {
    const fixed = hosts.map((host) => (unbracketedIpv6(host) ? `[${host}]` : host)).join(',');
    throw new LineProblem(`${where}: write an IPv6 address in brackets, as ${fixed}${after}`);
  }
  return hosts.map((host) => (host === '*' || host === '' ? null : unbracket(host)));
}

function unbracket(host: string): string {
  const match = /^\[(.+)\]$/.exec(host);
  return match ? match[1]! : host;
}
