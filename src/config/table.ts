// Reading a services table: split the text (syntax.ts), give each service line
// its meaning (fields.ts, options.ts), resolve names to numbers, then check
// the table as a whole (labels and addresses must not collide). A bad line is
// reported and left out; the rest of the table stands.

import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import dns from 'node:dns/promises';
import net from 'node:net';
import path from 'node:path';
import { errnoOf, WakeportError, type ConfigProblem } from '../errors.js';
import { mappedIpv4, resolveAddressRules } from './address-rules.js';
import {
  formatSocket,
  type ListenSocket,
  type Program,
  type InternalName,
  type ServiceEntry,
  type SocketSpec,
  type WorkerPolicy,
} from './entry.js';
import {
  internalName,
  isInternalName,
  LineProblem,
  parseProgram,
  parseProtocol,
  parseServiceField,
  parseSocketType,
  parseUserField,
  parseWait,
  type Protocol,
  type WaitField,
} from './fields.js';
import { parseOptions, scopeOf, type KeyScope, type Options } from './options.js';
import { lookupPort, readPortTable, type PortTable } from './ports.js';
import { splitTable, type RawService } from './syntax.js';
import { readUserDatabase, resolveSocketOwner, resolveUser, type UserDatabase } from './users.js';

export interface Table {
  readonly file: string;
  readonly entries: readonly ServiceEntry[];
  /** Errors (their lines are left out of `entries`) and warnings, in line order. */
  readonly problems: readonly ConfigProblem[];
}

interface Context {
  readonly file: string;
  readonly baseDir: string;
  readonly ports: PortTable;
  readonly users: UserDatabase;
  /** Problems with lines that are kept all the same. */
  readonly warnings: ConfigProblem[];
}

const unreadableBecause: Record<string, string> = {
  ENOENT: ' (no such file)',
  EISDIR: ' (a folder, not a file)',
  EACCES: ' (permission denied)',
};

/** Reads and checks a table; throws ERR_CONFIG_READ only when the file cannot be read at all. */
export async function loadTable(file: string): Promise<Table> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const errno = errnoOf(error);
    const why = errno === undefined ? String(error) : `${errno}${unreadableBecause[errno] ?? ''}`;
    throw new WakeportError('ERR_CONFIG_READ', `cannot read the services table ${file}: ${why}`, { cause: error });
  }
  return parseTable(file, text);
}

export async function parseTable(file: string, text: string): Promise<Table> {
  const context: Context = {
    file,
    baseDir: path.dirname(path.resolve(file)),
    ports: readPortTable(),
    users: readUserDatabase(),
    warnings: [],
  };
  const split = splitTable(file, text);
  const built = await Promise.all(split.services.map((raw) => buildEntries(raw, context)));
  const problems: ConfigProblem[] = [...split.problems, ...context.warnings];
  const entries: ServiceEntry[] = [];
  for (const result of built) {
    if ('problems' in result) problems.push(...result.problems);
    else entries.push(...result.entries);
  }
  const accepted = rejectCollisions(entries, problems);
  problems.push(...(await startWarnings(accepted)));
  problems.sort((a, b) => a.line - b.line);
  return { file, entries: accepted, problems };
}

async function buildEntries(
  raw: RawService,
  context: Context,
): Promise<{ entries: ServiceEntry[] } | { problems: ConfigProblem[] }> {
  try {
    return { entries: await interpret(raw, context) };
  } catch (error) {
    if (!(error instanceof LineProblem)) throw error;
    const problems = [error, ...error.more].map(({ line, message }): ConfigProblem => ({ file: raw.file, line: line ?? raw.line, severity: 'error', message }));
    return { problems };
  }
}

/** A service line's entry; one per address for a wait service with a list of hosts and its socket as stdin (see perAddress). */
async function interpret(raw: RawService, context: Context): Promise<ServiceEntry[]> {
  const [serviceField, typeField, protocolField, waitField, userField] = raw.fields;
  if (raw.fields.length < 6) {
    throw new LineProblem(
      `a service line needs at least 6 fields (service socket-type protocol wait user program), found ${raw.fields.length}`,
    );
  }
  if (serviceField!.endsWith(',')) {
    throw new LineProblem(`"${serviceField}" ends with a comma: write a list of hosts without spaces, as 127.0.0.1,[::1]:echo`);
  }
  const socketType = parseSocketType(typeField!);
  const protocol = parseProtocol(protocolField!, socketType);
  const wait = parseWait(waitField!);
  const userSpec = parseUserField(userField!);
  const programField = parseProgram(raw.fields.slice(5), context.baseDir);
  // An internal service runs inside wakeport: its user field (root, in every stock inetd.conf) names no one to run as.
  const runAs = programField.kind === 'internal' ? null : resolveUser(userSpec, context.users);
  const options = parseOptions(raw.options, context.baseDir);
  const label = options.label ?? defaultLabel(serviceField!, raw.stickyHost, protocolField!);
  const sockets = await resolveSockets(raw, options, protocol, label, context);
  if (protocol.transport === 'unix' && !serviceField!.includes('/') && /^[\w.*,[\]:-]*:\w+$/.test(serviceField!)) {
    // A unix socket may be named so, but a line copied from a TCP one with its protocol mistyped is likelier.
    context.warnings.push(lineWarning(raw, `"${serviceField}" looks like an address and port, but the protocol is unix: it names a socket file in the table's folder (for TCP, write tcp)`));
  }

  let program: Program;
  if (programField.kind === 'internal') {
    const service = protocol.transport === 'unix' ? '' : parseServiceField(serviceField!, null).service;
    const spec = sockets[0]!.spec;
    const { name, ignored } = internalName(programField.name, service, spec.transport === 'unix' ? null : spec.port);
    if (ignored !== null) context.warnings.push(ignoredInternalArgument(raw, name, ignored, service));
    program = { kind: 'internal', name };
  } else {
    program = programField;
  }
  checkKeyScopes(options, program.kind === 'internal' ? 'internal' : wait.mode);
  const spawnsPerConnection = program.kind === 'exec' && wait.mode === 'nowait';
  const worker = workerPolicy(options, socketType, program);
  if (program.kind === 'exec') {
    if (socketType === 'dgram' && wait.mode === 'nowait') {
      throw new LineProblem(
        'a dgram service with a program must be "wait": a datagram socket has no connections to hand out one at a time',
      );
    }
    // A nowait program gets one connection, whichever socket it came from; a wait worker gets the sockets themselves.
    if (wait.mode === 'wait' && options.handoff === 'stdio' && options.listens.length > 0) {
      throw new LineProblem(
        `handoff = stdio passes one socket, as fd 0 and 1; use handoff = listen-fds for ${sockets.length} sockets, or a list of hosts in the service field (one service per address)`,
        options.keyLines.get('listen'),
      );
    }
    if (options.handoff === 'stdio' && options.keyLines.has('listen-pid')) {
      throw new LineProblem('listen-pid applies to handoff = listen-fds only', options.keyLines.get('listen-pid'));
    }
  }
  // A wait worker takes every connection itself; an internal service ignores wait and nowait.
  const workerTakesConnections = program.kind === 'exec' && wait.mode === 'wait';
  const limits = connectionLimits(wait, options, waitField!, workerTakesConnections);
  if (workerTakesConnections && (wait.maxConnections !== null || wait.maxPerSource !== null)) {
    context.warnings.push(lineWarning(raw, `"${waitField}": the connection limits are ignored, as a wait service is handed its socket (its worker takes every connection)`));
  }
  if (wait.max !== null && !spawnsPerConnection) {
    // OpenBSD's inetd.conf allows wait.max, and internal lines may carry one: the line stays, and the user learns the limit does nothing here.
    const instead = program.kind === 'internal' ? 'limit an internal service with max-connections' : "a wait service's restarts are limited by start-limit-burst";
    context.warnings.push(lineWarning(raw, `"${waitField}": the spawn limit is ignored, as it applies to nowait services with a program only; ${instead}`));
  }

  const entry: ServiceEntry = {
    label,
    file: raw.file,
    line: raw.line,
    transport: protocol.transport,
    sockets,
    socketType,
    mode: wait.mode,
    maxSpawns: spawnsPerConnection ? wait.max : null,
    rateWindowMs: options.rateWindowMs,
    runAs,
    program,
    handoff: options.handoff,
    listenPid: options.listenPid,
    env: options.env,
    cwd: options.cwd,
    stdout: options.stdout,
    stderr: options.stderr,
    backlog: options.backlog,
    maxConnections: limits.maxConnections,
    maxPerSource: limits.maxPerSource,
    access: await clientAccess(options, protocol.transport),
    exitTimeoutMs: options.exitTimeoutMs,
    worker,
  };
  const oneWorkerPerAddress = program.kind === 'exec' && wait.mode === 'wait' && options.handoff === 'stdio' && sockets.length > 1;
  return oneWorkerPerAddress ? perAddress(entry, raw, options) : [entry];
}

/** only-from and no-access, host names looked up; a unix socket's clients have no address to check. */
async function clientAccess(options: Options, transport: ServiceEntry['transport']): Promise<ServiceEntry['access']> {
  const key = ['only-from', 'no-access'].find((k) => options.keyLines.has(k));
  if (key !== undefined && transport === 'unix') {
    throw new LineProblem(`option "${key}" does not apply to a unix socket: its clients have no address (use the socket file's owner and mode)`, options.keyLines.get(key));
  }
  const [onlyFrom, noAccess] = await Promise.all([
    options.onlyFrom === null ? null : resolveAddressRules(options.onlyFrom, 'only-from'),
    resolveAddressRules(options.noAccess, 'no-access'),
  ]);
  return { onlyFrom, noAccess };
}

/** max-connections and max-per-source, from the options or FreeBSD's wait field (not both); none for a wait worker. */
function connectionLimits(
  wait: WaitField,
  options: Options,
  waitField: string,
  workerTakesConnections: boolean,
): { maxConnections: number | null; maxPerSource: number | null } {
  if (workerTakesConnections) return { maxConnections: null, maxPerSource: null };
  for (const [key, fromField] of [['max-connections', wait.maxConnections], ['max-per-source', wait.maxPerSource]] as const) {
    if (fromField !== null && options.keyLines.has(key)) {
      throw new LineProblem(`option "${key}" is set on the service line already ("${waitField}"): keep one`, options.keyLines.get(key));
    }
  }
  return { maxConnections: options.maxConnections ?? wait.maxConnections, maxPerSource: options.maxPerSource ?? wait.maxPerSource };
}

/**
 * A wait service handed its socket as stdin serves one socket: with a list
 * of hosts, as in GNU inetd, each address is a service of its own, labelled
 * as if written on a line of its own (`127.0.0.1:tftp/udp`, `[::1]:tftp/udp`).
 */
function perAddress(entry: ServiceEntry, raw: RawService, options: Options): ServiceEntry[] {
  if (options.label !== null) {
    throw new LineProblem(
      `label = ${options.label} names one service, but a wait service handed its socket as stdin serves each address of the list on its own: ` +
        'remove the label (each gets its address as label), or use handoff = listen-fds',
      options.keyLines.get('label'),
    );
  }
  const [serviceField, , protocolField] = raw.fields as [string, string, string];
  const { hosts, service } = parseServiceField(serviceField, raw.stickyHost);
  return entry.sockets.map((socket, index) => {
    const host = hosts[index] ?? null;
    const written = host === null ? '*' : host.includes(':') ? `[${host}]` : host;
    const label = `${written}:${service}/${protocolField}`;
    return { ...entry, label, sockets: [{ ...socket, name: label.replaceAll(':', '_') }] };
  });
}

/** The service field's socket, then one per `listen` option, each with its name. */
async function resolveSockets(
  raw: RawService,
  options: Options,
  protocol: Protocol,
  label: string,
  context: Context,
): Promise<ListenSocket[]> {
  // systemd's names cannot hold ":" (LISTEN_FDNAMES is ":"-separated); default labels do.
  const defaultName = label.replaceAll(':', '_');
  const primaryName = options.primaryName ?? defaultName;
  const primary = (await resolveSocket(raw.fields[0]!, raw.stickyHost, protocol, context)).map((spec) => ({ spec, name: primaryName, line: raw.line }));
  const extra = await Promise.all(
    options.listens.map(async (listen) => {
      try {
        const specs = await resolveSocket(listen.address, raw.stickyHost, protocol, context);
        return specs.map((spec) => ({ spec, name: listen.name ?? defaultName, line: listen.line }));
      } catch (error) {
        if (!(error instanceof LineProblem)) throw error;
        throw new LineProblem(`option "listen": ${error.message}`, listen.line);
      }
    }),
  );
  return [...primary, ...extra.flat()];
}

type Kind = 'internal' | 'wait' | 'nowait';

const scopeKinds: Record<KeyScope, readonly Kind[]> = {
  any: ['internal', 'wait', 'nowait'],
  program: ['wait', 'nowait'],
  nowait: ['internal', 'nowait'],
  wait: ['wait'],
};

const scopeWords: Record<KeyScope, string> = {
  any: '',
  program: 'services with a program',
  nowait: 'nowait and internal services',
  wait: 'wait services with a program',
};

function checkKeyScopes(options: Options, kind: Kind): void {
  for (const [key, line] of options.keyLines) {
    const scope = scopeOf(key);
    if (!scopeKinds[scope].includes(kind)) {
      const what = kind === 'internal' ? 'internal services' : `${kind} services`;
      throw new LineProblem(`option "${key}" does not apply to ${what} (only to ${scopeWords[scope]})`, line);
    }
  }
}

/**
 * A UDP wait service cannot be started by its first datagram without losing
 * it (nothing can tell that a datagram waits without reading it), so it
 * starts at load and is kept alive. keep-alive = yes means the same for any
 * service (launchd's KeepAlive).
 */
function workerPolicy(options: Options, socketType: 'stream' | 'dgram', program: Program): WorkerPolicy {
  const alwaysUp = options.keepAlive || (socketType === 'dgram' && program.kind === 'exec');
  const why = options.keepAlive ? 'keep-alive = yes' : 'a UDP wait service';
  if (alwaysUp && options.keyLines.has('restart') && options.restart !== 'always') {
    throw new LineProblem(`${why} is always restarted: remove restart = ${options.restart}`, options.keyLines.get('restart'));
  }
  if (alwaysUp && options.keyLines.has('run-at-load') && !options.runAtLoad) {
    throw new LineProblem(`${why} always starts at load: remove run-at-load = no`, options.keyLines.get('run-at-load'));
  }
  return {
    runAtLoad: alwaysUp || options.runAtLoad,
    restart: alwaysUp ? 'always' : options.restart,
    ready: options.ready,
    startTimeoutMs: options.startTimeoutMs,
    restartDelayMs: options.restartDelayMs,
    restartMaxDelayMs: options.restartMaxDelayMs,
    startLimitBurst: options.startLimitBurst,
    startLimitIntervalMs: options.startLimitIntervalMs,
    failedCooldownMs: options.failedCooldownMs,
    watch: options.watch,
  };
}

/** `echo/tcp`, `127.0.0.1:8080/tcp`: the service field as written (with any sticky host) and the protocol. */
function defaultLabel(serviceField: string, stickyHost: string | null, protocol: string): string {
  if (protocol === 'unix') return `${unixSocketField(serviceField)?.path ?? serviceField}/unix`;
  const withHost = stickyHost !== null && !serviceField.includes(':');
  return `${withHost ? `${stickyHost}:` : ''}${serviceField}/${protocol}`;
}

/** FreeBSD's `:user:group:mode:/path`, which gives a unix socket file an owner, a group and a mode (each may be empty); null for a plain path. */
function unixSocketField(field: string): { user: string; group: string; mode: string; path: string } | null {
  const match = /^:([^:]*):([^:]*):([^:]*):(.+)$/.exec(field);
  return match ? { user: match[1]!, group: match[2]!, mode: match[3]!, path: match[4]! } : null;
}

// sun_path holds 108 bytes, one of them the terminating NUL.
const maxUnixPath = 107;

/** The sockets a service field (or a `listen` option) names: one per host of a comma-separated list. */
async function resolveSocket(
  field: string,
  stickyHost: string | null,
  protocol: Protocol,
  context: Context,
): Promise<SocketSpec[]> {
  if (protocol.transport === 'unix') {
    const owned = unixSocketField(field);
    const socketPath = path.resolve(context.baseDir, owned?.path ?? field);
    if (Buffer.byteLength(socketPath) > maxUnixPath) {
      throw new LineProblem(`unix socket path ${socketPath} is longer than ${maxUnixPath} bytes`);
    }
    if (!owned) return [{ transport: 'unix', path: socketPath }];
    if (!/^(0?[0-7]{3})?$/.test(owned.mode)) throw new LineProblem(`"${field}": mode "${owned.mode}" is not a file mode (three octal digits, as 660)`);
    const mode = owned.mode === '' ? {} : { mode: parseInt(owned.mode, 8) };
    return [{ transport: 'unix', path: socketPath, ...resolveSocketOwner(owned.user, owned.group, context.users), ...mode }];
  }
  const { hosts, service } = parseServiceField(field, stickyHost);
  const port = lookupPort(context.ports, service, protocol.transport);
  if (port === undefined) {
    throw new LineProblem(
      /^-?\d+$/.test(service)
        ? `port ${service} is out of range (0–65535)`
        : `unknown service "${service}" for ${protocol.transport} (not in /etc/services; write a port number)`,
    );
  }
  const transport = protocol.transport;
  return Promise.all(
    hosts.map(async (host): Promise<SocketSpec> => {
      const { address, family } = await resolveHost(host, protocol);
      return { transport, host: address, family, port };
    }),
  );
}

/**
 * One spelling per address ("0:0::1" is "::1"), for the collision check and
 * the log. A zone (%lo) is kept on a link-local address, the only kind it
 * tells apart; on any other the kernel ignores it, so "::1%lo" is "::1".
 */
function canonicalIpv6(host: string): string {
  const [address, zone] = host.split('%') as [string, string | undefined];
  const canonical = new net.SocketAddress({ address, family: 'ipv6' }).address;
  return zone === undefined || !/^fe[89ab]/i.test(canonical) ? canonical : `${canonical}%${zone}`;
}

async function resolveHost(host: string | null, protocol: Protocol): Promise<{ address: string; family: 4 | 6 }> {
  const wanted = protocol.family ?? 4;
  if (host === null) return wanted === 6 ? { address: '::', family: 6 } : { address: '0.0.0.0', family: 4 };
  const literal = net.isIP(host);
  if (literal !== 0) {
    if (protocol.familyExplicit && literal !== wanted) {
      throw new LineProblem(`${host} is an IPv${literal} address, but the protocol asks for IPv${wanted}`);
    }
    const ipv4 = literal === 6 ? mappedIpv4(host.split('%')[0]!) : null;
    // wakeport's IPv6 sockets are IPv6-only, and the kernel refuses to bind one to a mapped address (EINVAL).
    if (ipv4 !== null) throw new LineProblem(`${host} is an IPv4-mapped address, which an IPv6-only socket cannot bind: write ${ipv4}`);
    if (literal === 6) return { address: canonicalIpv6(host), family: 6 };
    return { address: host, family: 4 };
  }
  try {
    const found = await dns.lookup(host, { family: wanted });
    return { address: found.address, family: found.family as 4 | 6 };
  } catch (error) {
    throw new LineProblem(`cannot resolve host "${host}" to an IPv${wanted} address (${errnoOf(error) ?? error})`);
  }
}

/** Leaves out entries whose label or addresses an earlier line already has, with an error naming both lines. */
function rejectCollisions(entries: readonly ServiceEntry[], problems: ConfigProblem[]): ServiceEntry[] {
  const accepted: ServiceEntry[] = [];
  for (const entry of entries) {
    const problem = addressCollision(entry, accepted) ?? labelCollision(entry, accepted);
    if (problem === null) accepted.push(entry);
    else problems.push({ file: entry.file, severity: 'error', ...problem });
  }
  return accepted;
}

function addressCollision(entry: ServiceEntry, accepted: readonly ServiceEntry[]): { line: number; message: string } | null {
  const others = accepted.flatMap((other) => other.sockets.map((socket) => ({ other, socket })));
  for (const [index, socket] of entry.sockets.entries()) {
    const clash =
      others.find(({ socket: theirs }) => socketsCollide(theirs.spec, socket.spec)) ??
      entry.sockets.slice(0, index).map((mine) => ({ other: entry, socket: mine })).find(({ socket: mine }) => socketsCollide(mine.spec, socket.spec));
    if (!clash) continue;
    const mine = `${formatSocket(socket.spec)}/${socket.spec.transport}`;
    if (clash.socket.line === socket.line && clash.other.file === entry.file) {
      const theirs = `${formatSocket(clash.socket.spec)}/${socket.spec.transport}`;
      return { line: socket.line, message: `${mine} overlaps ${theirs} in the same list of hosts (an address twice, or a wildcard beside an address)` };
    }
    const service = clash.other.label === entry.label ? '' : ` (service "${clash.other.label}")`;
    return { line: socket.line, message: `${mine} is already bound by line ${clash.socket.line}${service}` };
  }
  return null;
}

function labelCollision(entry: ServiceEntry, accepted: readonly ServiceEntry[]): { line: number; message: string } | null {
  const same = accepted.find((other) => other.label === entry.label);
  if (!same) return null;
  return { line: entry.line, message: `label "${entry.label}" is already used by line ${same.line}; give one of them a label = option` };
}

/** Whether two sockets would fight over one address (a wildcard takes its port on every address). */
function socketsCollide(a: SocketSpec, b: SocketSpec): boolean {
  if (a.transport === 'unix' || b.transport === 'unix') {
    return a.transport === 'unix' && b.transport === 'unix' && a.path === b.path;
  }
  if (a.transport !== b.transport || a.family !== b.family || a.port !== b.port || a.port === 0) return false;
  return a.host === b.host || isWildcard(a.host) || isWildcard(b.host);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** A warning on a service's own line: the line stands. */
function lineWarning(raw: RawService, message: string): ConfigProblem {
  return { file: raw.file, line: raw.line, severity: 'warning', message };
}

function ignoredInternalArgument(raw: RawService, served: InternalName, ignored: string, service: string): ConfigProblem {
  const elsewhere = isInternalName(ignored) ? `; to serve ${ignored}, write its name or a port number in the service field` : '';
  return lineWarning(
    raw,
    `"internal ${ignored}": the service field "${service}" names ${served}, which this line serves, as inetd does (it ignores the words after internal)${elsewhere}`,
  );
}

/**
 * What will keep a service from starting, found now. Each is a warning, not
 * an error, since it may be put right while wakeport runs (a program
 * installed, a folder made): the service stands, and the log says what
 * happens to its clients meanwhile.
 */
async function startWarnings(entries: readonly ServiceEntry[]): Promise<ConfigProblem[]> {
  const warnings = await Promise.all(
    entries.map(async (entry): Promise<ConfigProblem[]> => {
      const warning = (message: string, line = entry.line): ConfigProblem => ({ file: entry.file, line, severity: 'warning', message });
      const found: ConfigProblem[] = [];
      for (const { spec, line } of entry.sockets) {
        if (spec.transport !== 'unix') continue;
        const folder = path.dirname(spec.path);
        const problem = await folderProblem(folder);
        if (problem !== null) found.push(warning(`folder ${folder} ${problem}; the unix socket ${spec.path} is bound once it is one`, line));
      }
      if (entry.program.kind !== 'exec') return found;
      const programProblem = await accessProblem(entry.program.path, fsConstants.X_OK);
      if (programProblem) {
        const why = programProblem === 'ENOENT' ? 'does not exist' : `is not executable (${programProblem})`;
        const meanwhile =
          entry.mode === 'wait'
            ? 'its worker cannot start until it does (clients wait through the restart back-off, then are closed once the service has failed)'
            : 'its clients will be closed until it can be started';
        found.push(warning(`program ${entry.program.path} ${why}; ${meanwhile}`));
      }
      if (entry.cwd !== null && (await accessProblem(entry.cwd, fsConstants.X_OK)) === 'ENOENT') {
        found.push(warning(`working directory ${entry.cwd} does not exist; its programs cannot start until it does`));
      }
      for (const which of ['stdout', 'stderr'] as const) {
        const output = entry[which];
        if (output.kind !== 'file') continue;
        const problem = await outputProblem(output.path);
        if (problem !== null) {
          found.push(warning(`${which} file ${output.path}: ${problem}; the service will not start (its sockets closed, its clients refused) until the table is reloaded with it put right`));
        }
      }
      return found;
    }),
  );
  return warnings.flat();
}

/** Why `folder` is not one (it does not exist, or it or a folder above it is a file), or null. */
async function folderProblem(folder: string): Promise<string | null> {
  try {
    return (await stat(folder)).isDirectory() ? null : 'is a file, not a folder';
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === 'ENOENT') return 'does not exist';
    return errno === 'ENOTDIR' ? 'is under a file, not a folder' : null;
  }
}

/** Why an output file could not be opened for appending, or null. */
async function outputProblem(file: string): Promise<string | null> {
  const existing = await accessProblem(file, fsConstants.W_OK);
  if (existing === null) return (await stat(file)).isDirectory() ? 'it is a folder' : null;
  if (existing !== 'ENOENT') return `cannot be written (${existing})`;
  const folder = await accessProblem(path.dirname(file), fsConstants.W_OK | fsConstants.X_OK);
  if (folder === null) return null;
  return folder === 'ENOENT' ? `its folder ${path.dirname(file)} does not exist` : `cannot be made in ${path.dirname(file)} (${folder})`;
}

/** The errno of an access() check, or null if it passes. */
async function accessProblem(file: string, mode: number): Promise<string | null> {
  try {
    await access(file, mode);
    return null;
  } catch (error) {
    return errnoOf(error) ?? 'EACCES';
  }
}
