// One log grammar for every process of wakeport:
//
//   text:  wakeport: <subject>: <severity>: <message>
//   json:  {"time":"…","severity":"…","subject":"…","message":"…", …fields}
//
// The subject is a service label, or "wakeport" for the runtime itself.
// Lines a service's program writes to its stderr are passed through whatever
// the level, as `wakeport: <label>[<pid>]: <line>` (severity "output"), or
// `wakeport: <label>[*]: <line>` where the programs of a nowait service share
// one pipe and the writer's pid is not known.

export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof logLevels)[number];
export const logFormats = ['text', 'json'] as const;
export type LogFormat = (typeof logFormats)[number];

export interface LogOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  readonly options: LogOptions;
  debug(subject: string, message: string, fields?: LogFields): void;
  info(subject: string, message: string, fields?: LogFields): void;
  warn(subject: string, message: string, fields?: LogFields): void;
  error(subject: string, message: string, fields?: LogFields): void;
  /** A line of a program's own stderr: always written. `pid` is null when the writer is not known. */
  output(subject: string, pid: number | null, line: string): void;
}

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const severityWord: Record<LogLevel, string> = { debug: 'debug', info: 'info', warn: 'warning', error: 'error' };

export function createLogger(options: LogOptions, write: (line: string) => void = writeStderr): Logger {
  const threshold = rank[options.level];
  const emit = (severity: string, subject: string, message: string, fields?: LogFields): void => {
    if (options.format === 'json') {
      const record = { time: new Date().toISOString(), severity, subject, message, ...fields };
      write(JSON.stringify(record) + '\n');
    } else {
      write(`wakeport: ${subject}: ${severity}: ${message}\n`);
    }
  };
  const at =
    (level: LogLevel) =>
    (subject: string, message: string, fields?: LogFields): void => {
      if (rank[level] >= threshold) emit(severityWord[level], subject, message, fields);
    };
  return {
    options,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    output(subject, pid, line) {
      if (options.format === 'json') emit('output', subject, line, pid === null ? {} : { pid });
      else write(`wakeport: ${subject}[${pid ?? '*'}]: ${line}\n`);
    },
  };
}

let readerGoneIgnored = false;

function writeStderr(line: string): void {
  // A log whose reader is gone (a closed pipe: EPIPE) must not take the
  // services down with it: its lines are dropped, there being nowhere else.
  if (!readerGoneIgnored) process.stderr.on('error', () => {});
  readerGoneIgnored = true;
  process.stderr.write(line);
}

/**
 * For problems that can repeat thousands of times a second (a missing
 * program, a full queue): report the first, hold back the rest for a while,
 * then report again with how many were held back. When the while ends with
 * some held back and no report after them, `onHeldBack` says how many (a
 * flood that stops would otherwise never be counted in the log).
 */
export class ReportThrottle {
  /** Those holding back a count they will say at the end of their while: flushAll() says them all now. */
  static readonly #pending = new Set<ReportThrottle>();
  #nextReport = 0;
  #heldBack = 0;
  #flushTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly intervalMs: number,
    readonly onHeldBack?: (count: number) => void,
  ) {}

  /**
   * What a report due now adds: "" or " (N more … since the last report)",
   * with `noun` ("failures") after "more"; null when this one is held back
   * (and counted).
   */
  heldBackNote(noun?: string): string | null {
    const heldBack = this.due();
    if (heldBack === null) return null;
    return heldBack > 0 ? ` (${heldBack} more${noun ? ` ${noun}` : ''} since the last report)` : '';
  }

  /** The number held back since the last report when a report is due now; null when this one is held back. */
  due(now = Date.now()): number | null {
    if (now < this.#nextReport) {
      this.#heldBack++;
      // Unref'd: a count still held back does not keep a stopping process alive.
      if (this.onHeldBack && !this.#flushTimer) {
        this.#flushTimer = setTimeout(() => this.flush(), this.#nextReport - now).unref();
        ReportThrottle.#pending.add(this);
      }
      return null;
    }
    this.#cancelFlush();
    const heldBack = this.#heldBack;
    this.#heldBack = 0;
    this.#nextReport = now + this.intervalMs;
    return heldBack;
  }

  /** Says how many are held back, if any, now (at the end of the while, or as a service stops). */
  flush(): void {
    this.#cancelFlush();
    if (this.#heldBack === 0) return;
    const heldBack = this.#heldBack;
    this.#heldBack = 0;
    this.onHeldBack?.(heldBack);
  }

  /** At the end of a process's stop: every count still held back is said before it exits. */
  static flushAll(): void {
    for (const throttle of ReportThrottle.#pending) throttle.flush();
  }

  #cancelFlush(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    ReportThrottle.#pending.delete(this);
  }
}

/** "1 client", "3 clients": a count with its noun. */
export function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** 1500 → "1.5s", 60000 → "1m", 250 → "250ms". */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms >= 1000 ? `${Math.round(ms / 100) / 10}s` : `${Math.round(ms)}ms`;
}
