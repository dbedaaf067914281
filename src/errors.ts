// Every error wakeport reports is a WakeportError: a stable `code` (the
// contract: never renamed, never reused; the README lists them) and a message
// a user can act on. Match on `code`, not on the message.

export type ErrorCode =
  | 'ERR_BIND' //            a socket of the table could not be bound
  | 'ERR_CONFIG_READ' //     the services table could not be read
  | 'ERR_LISTEN_FDS' //      LISTEN_FDS, LISTEN_PID or the fds they name are wrong
  | 'ERR_NODE_INTERNALS' //  this Node version no longer has an internal wakeport relies on
  | 'ERR_USAGE'; //          the command line is wrong

const brand = Symbol.for('wakeport.error');

export class WakeportError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, 'name', { value: 'WakeportError', enumerable: false, configurable: true });
    Object.defineProperty(this, brand, { value: true, enumerable: false });
  }
}

/** True for any WakeportError, even one created by another copy of this module. */
export function isWakeportError(value: unknown): value is WakeportError {
  return typeof value === 'object' && value !== null && brand in value;
}

/** Where a problem in a services table is, and what it is. */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

/** `services.conf:12: unknown socket type "strem"` — the one format for table problems. */
export function formatProblem(problem: ConfigProblem): string {
  const prefix = problem.severity === 'warning' ? 'warning: ' : '';
  return `${problem.file}:${problem.line}: ${prefix}${problem.message}`;
}

/** The errno code of a system error (EADDRINUSE, ENOENT, …), if it has one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
