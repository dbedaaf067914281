// Reading a services table: split the text (syntax.ts), give each service line
// its meaning (fields.ts, options.ts), resolve names to numbers, then check
// the table as a whole (labels and addresses must not collide). A bad line is
// reported and left out; the rest of the table stands.

import { constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import dns from 'node:dns/promises';
import net from 'node:net';
import path from 'node:path';
import { errnoOf, WakeportError, type ConfigProblem } from '../errors.js';
import { formatSocket, type Program, type ServiceEntry, type SocketSpec } from './entry.js';
import {
  internalName,
  LineProblem,
  parseProgram,
  parseProtocol,
  parseServiceField,
  parseSocketType,
  parseUserField,
  parseWait,
  type Protocol,
} from './fields.js';
import { parseOptions, programOnlyKeys } from './options.js';
import { lookupPort, readPortTable, type PortTable } from './ports.js';
import { splitTable, type RawService } from './syntax.js';
import { readUserDatabase, resolveUser, type UserDatabase } from './users.js';

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
}

/** Reads and checks a table; throws ERR_CONFIG_READ only when the file cannot be read at all. */
export async function loadTable(file: string): Promise<Table> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new WakeportError('ERR_CONFIG_READ', `cannot read the services table ${file}: ${errnoOf(error) ?? error}`, {
      cause: error,
    });
  }
  return parseTable(file, text);
}

export async function parseTable(file: string, text: string): Promise<Table> {
  const context: Context = {
    file,
    baseDir: path.dirname(path.resolve(file)),
    ports: readPortTable(),
    users: readUserDatabase(),
  };
  const split = splitTable(file, text);
  const problems: ConfigProblem[] = [...split.problems];
  const built = await Promise.all(split.services.map((raw) => buildEntry(raw, context)));
  const entries: ServiceEntry[] = [];
  for (const result of built) {
    if ('problem' in result) problems.push(result.problem);
    else entries.push(result.entry);
  }
  const accepted = rejectCollisions(entries, problems);
  problems.push(...(await programWarnings(accepted)));
  problems.sort((a, b) => a.line - b.line);
  return { file, entries: accepted, problems };
}

async function buildEntry(
  raw: RawService,
  context: Context,
): Promise<{ entry: ServiceEntry } | { problem: ConfigProblem }> {
  try {
    return { entry: await interpret(raw, context) };
  } catch (error) {
    if (!(error instanceof LineProblem)) throw error;
    return { problem: { file: raw.file, line: error.line ?? raw.line, severity: 'error', message: error.message } };
  }
}

async function interpret(raw: RawService, context: Context): Promise<ServiceEntry> {
  const [serviceField, typeField, protocolField, waitField, userField] = raw.fields;
  if (raw.fields.length < 6) {
    throw new LineProblem(
      `a service line needs at least 6 fields (service socket-type protocol wait user program), found ${raw.fields.length}`,
    );
  }
  const socketType = parseSocketType(typeField!);
  const protocol = parseProtocol(protocolField!, socketType);
  const wait = parseWait(waitField!);
  const runAs = resolveUser(parseUserField(userField!), context.users);
  const programField = parseProgram(raw.fields.slice(5), context.baseDir);
  const options = parseOptions(raw.options, context.baseDir);
  const socket = await resolveSocket(serviceField!, raw.stickyHost, protocol, context);

  let program: Program;
  if (programField.kind === 'internal') {
    const service = protocol.transport === 'unix' ? '' : parseServiceField(serviceField!, null).service;
    program = { kind: 'internal', name: internalName(programField.name, service) };
    const misplaced = raw.options.find((option) => programOnlyKeys.has(option.key));
    if (misplaced) {
      throw new LineProblem(`option "${misplaced.key}" does not apply to internal services`, misplaced.line);
    }
  } else {
    program = programField;
    if (socketType === 'dgram' && wait.mode === 'nowait') {
      throw new LineProblem(
        'a dgram service with a program must be "wait": a datagram socket has no connections to hand out one at a time',
      );
    }
    if (wait.mode === 'wait') {
      throw new LineProblem('"wait" services with a program are not supported yet (only internal services may be wait)');
    }
  }

  return {
    label: options.label ?? defaultLabel(serviceField!, raw.stickyHost, protocolField!),
    file: raw.file,
    line: raw.line,
    socket,
    socketType,
    mode: wait.mode,
    maxSpawns: wait.max,
    rateWindowMs: options.rateWindowMs,
    runAs,
    program,
    env: options.env,
    cwd: options.cwd,
    stdout: options.stdout,
    stderr: options.stderr,
    backlog: options.backlog,
    maxConnections: options.maxConnections ?? (program.kind === 'exec' ? 64 : null),
    maxPerSource: options.maxPerSource,
    exitTimeoutMs: options.exitTimeoutMs,
  };
}

/** `echo/tcp`, `127.0.0.1:8080/tcp`: the service field as written (with any sticky host) and the protocol. */
function defaultLabel(serviceField: string, stickyHost: string | null, protocol: string): string {
  const withHost = stickyHost !== null && !serviceField.includes(':') && protocol !== 'unix';
  return `${withHost ? `${stickyHost}:` : ''}${serviceField}/${protocol}`;
}

// sun_path holds 108 bytes, one of them the terminating NUL.
const maxUnixPath = 107;

async function resolveSocket(
  field: string,
  stickyHost: string | null,
  protocol: Protocol,
  context: Context,
): Promise<SocketSpec> {
  if (protocol.transport === 'unix') {
    const socketPath = path.resolve(context.baseDir, field);
    if (Buffer.byteLength(socketPath) > maxUnixPath) {
      throw new LineProblem(`unix socket path ${socketPath} is longer than ${maxUnixPath} bytes`);
    }
    return { transport: 'unix', path: socketPath };
  }
  const { host, service } = parseServiceField(field, stickyHost);
  const port = lookupPort(context.ports, service, protocol.transport);
  if (port === undefined) {
    throw new LineProblem(
      /^\d+$/.test(service)
        ? `port ${service} is out of range (0–65535)`
        : `unknown service "${service}" for ${protocol.transport} (not in /etc/services; write a port number)`,
    );
  }
  const { address, family } = await resolveHost(host, protocol);
  return { transport: protocol.transport, host: address, family, port };
}

async function resolveHost(host: string | null, protocol: Protocol): Promise<{ address: string; family: 4 | 6 }> {
  const wanted = protocol.family ?? 4;
  if (host === null) return wanted === 6 ? { address: '::', family: 6 } : { address: '0.0.0.0', family: 4 };
  const literal = net.isIP(host);
  if (literal !== 0) {
    if (protocol.familyExplicit && literal !== wanted) {
      throw new LineProblem(`${host} is an IPv${literal} address, but the protocol asks for IPv${wanted}`);
    }
    return { address: host, family: literal as 4 | 6 };
  }
  try {
    const found = await dns.lookup(host, { family: wanted });
    return { address: found.address, family: found.family as 4 | 6 };
  } catch (error) {
    throw new LineProblem(`cannot resolve host "${host}" to an IPv${wanted} address (${errnoOf(error) ?? error})`);
  }
}

/** Leaves out entries whose label or address an earlier line already has, with an error naming both lines. */
function rejectCollisions(entries: readonly ServiceEntry[], problems: ConfigProblem[]): ServiceEntry[] {
  const accepted: ServiceEntry[] = [];
  for (const entry of entries) {
    const sameLabel = accepted.find((other) => other.label === entry.label);
    const sameAddress = accepted.find((other) => socketsCollide(other.socket, entry.socket));
    const message = sameAddress
      ? `${formatSocket(entry.socket)}/${entry.socket.transport} is already bound by line ${sameAddress.line}` +
        (sameAddress.label === entry.label ? '' : ` (service "${sameAddress.label}")`)
      : sameLabel
        ? `label "${entry.label}" is already used by line ${sameLabel.line}; give one of them a label = option`
        : null;
    if (message === null) accepted.push(entry);
    else problems.push({ file: entry.file, line: entry.line, severity: 'error', message });
  }
  return accepted;
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

/** A missing program is a warning, not an error: it may be installed later, and clients are closed until then. */
async function programWarnings(entries: readonly ServiceEntry[]): Promise<ConfigProblem[]> {
  const warnings = await Promise.all(
    entries.map(async (entry): Promise<ConfigProblem | null> => {
      if (entry.program.kind !== 'exec') return null;
      try {
        await access(entry.program.path, fsConstants.X_OK);
        return null;
      } catch (error) {
        const why = errnoOf(error) === 'ENOENT' ? 'does not exist' : `is not executable (${errnoOf(error)})`;
        return {
          file: entry.file,
          line: entry.line,
          severity: 'warning',
          message: `program ${entry.program.path} ${why}; its clients will be closed until it can be started`,
        };
      }
    }),
  );
  return warnings.filter((warning) => warning !== null);
}
