// The services table after parsing and validation: one readonly record per
// service. Everything here is resolved (ports are numbers, hosts are IP
// literals, paths are absolute, users are uids) and plain JSON, because the
// launcher sends the table to the supervisor.

export type Transport = 'tcp' | 'udp' | 'unix';

export type SocketSpec =
  | {
      readonly transport: 'tcp' | 'udp';
      /** An IP literal: 0.0.0.0 and :: are the wildcards. */
      readonly host: string;
      readonly family: 4 | 6;
      /** 0 asks the kernel for a free port. */
      readonly port: number;
    }
  | {
      readonly transport: 'unix';
      readonly path: string;
      /** The socket file's owner, group and mode when the table sets them (FreeBSD's `:user:group:mode:/path`). */
      readonly uid?: number;
      readonly gid?: number;
      readonly mode?: number;
    };

export const internalNames = ['echo', 'discard', 'chargen', 'daytime', 'time'] as const;
export type InternalName = (typeof internalNames)[number];

export type Program =
  | { readonly kind: 'internal'; readonly name: InternalName }
  | {
      readonly kind: 'exec';
      /** Absolute path of the executable. */
      readonly path: string;
      readonly argv0: string;
      readonly args: readonly string[];
    };

export interface RunAs {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** Where a program's stdout or stderr goes: a file (appended to), or the default. */
export type OutputTarget = { readonly kind: 'default' } | { readonly kind: 'file'; readonly path: string };

/** One address a service listens on. */
export interface ListenSocket {
  readonly spec: SocketSpec;
  /** Passed to the program in LISTEN_FDNAMES; the label unless a `name` option says otherwise. */
  readonly name: string;
  /** The line it is written on (the service line, or its `listen` option). */
  readonly line: number;
}

/** How a wait service's worker is started, checked in, and restarted. */
export interface WorkerPolicy {
  /** Start at startup instead of at the first client. */
  readonly runAtLoad: boolean;
  /** Restart without waiting for a client: never, after a failure, or after any exit. */
  readonly restart: 'no' | 'on-failure' | 'always';
  /** Up once started, or once it writes READY=1 to NOTIFY_FD. */
  readonly ready: 'spawn' | 'notify';
  readonly startTimeoutMs: number;
  readonly restartDelayMs: number;
  readonly restartMaxDelayMs: number;
  readonly startLimitBurst: number;
  readonly startLimitIntervalMs: number;
  readonly failedCooldownMs: number;
  /** Files and folders whose changes restart the worker gracefully. */
  readonly watch: readonly string[];
}

export interface ServiceEntry {
  /** Unique name, used in every log line about the service. */
  readonly label: string;
  /** Where the service was defined, for messages. */
  readonly file: string;
  readonly line: number;
  readonly transport: Transport;
  /** At least one: the service field's, then each `listen` option's. */
  readonly sockets: readonly ListenSocket[];
  readonly socketType: 'stream' | 'dgram';
  readonly mode: 'wait' | 'nowait';
  /** inetd's `nowait.max`: at most this many spawns per `rateWindowMs`; null = no limit. */
  readonly maxSpawns: number | null;
  readonly rateWindowMs: number;
  /** The user programs run as; null = the user running wakeport. */
  readonly runAs: RunAs | null;
  readonly program: Program;
  /** stdio: the socket is the program's fd 0 and 1 (inetd); listen-fds: fd 3, 4, … (systemd). */
  readonly handoff: 'stdio' | 'listen-fds';
  /**
   * listen-fds: set LISTEN_PID (through /bin/sh, which also hands the sockets
   * over in blocking mode), as systemd does; false spares that exec.
   */
  readonly listenPid: boolean;
  readonly env: readonly (readonly [string, string])[];
  readonly cwd: string | null;
  readonly stdout: OutputTarget;
  readonly stderr: OutputTarget;
  readonly backlog: number;
  /**
   * Concurrent connections being served; null = not set: no limit for an
   * internal service, `defaultProgramConnections` for a program.
   */
  readonly maxConnections: number | null;
  readonly maxPerSource: number | null;
  /** Which client addresses are served (xinetd's only_from and no_access). */
  readonly access: ClientAccess;
  readonly exitTimeoutMs: number;
  readonly worker: WorkerPolicy;
}

/** An address or a network, as in `10.0.0.0/8`; a lone address has the whole length as its prefix. */
export interface AddressRule {
  readonly address: string;
  readonly family: 4 | 6;
  readonly prefix: number;
  /** The host name the address was looked up from, when the rule named one. */
  readonly from?: string;
}

/**
 * only-from: null serves every address, else only those it covers;
 * no-access: addresses refused. Where both cover a client, the longer
 * prefix decides, and no-access wins a tie (as in xinetd).
 */
export interface ClientAccess {
  readonly onlyFrom: readonly AddressRule[] | null;
  readonly noAccess: readonly AddressRule[];
}

/** `127.0.0.1:7`, `[::1]:7`, or a unix path: how an address is written in every message. */
export function formatSocket(socket: SocketSpec): string {
  if (socket.transport === 'unix') return socket.path;
  return socket.family === 6 ? `[${socket.host}]:${socket.port}` : `${socket.host}:${socket.port}`;
}

/** A nowait service that runs a program (not an internal one): what nowait hosts serve. */
export function isNowaitProgram(entry: ServiceEntry): boolean {
  return entry.mode === 'nowait' && entry.program.kind === 'exec';
}

/** The max-connections of a nowait program service that does not set it. */
export const defaultProgramConnections = 64;
