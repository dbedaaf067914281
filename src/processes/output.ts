// Where a program's stdout and stderr go. A file option is opened once, when
// the service starts, and shared by all its processes (O_APPEND keeps their
// lines whole). By default stderr is a pipe whose lines enter wakeport's log
// under the service's label.

import { closeSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { OutputTarget } from '../config/entry.js';
import { errnoOf } from '../errors.js';

/** An open file's fd, or null for the default. Throws a sentence when the file cannot be opened. */
export function openOutput(target: OutputTarget, which: 'stdout' | 'stderr'): number | null {
  if (target.kind === 'default') return null;
  try {
    return openSync(target.path, 'a');
  } catch (error) {
    throw new Error(`cannot open ${which} file ${target.path}: ${errnoOf(error) ?? error}`);
  }
}

export function closeOutput(fd: number | null): void {
  if (fd !== null) closeSync(fd);
}

/**
 * Throws the sentence openOutput would, for a service whose processes are
 * started elsewhere (nowait hosts): the supervisor checks before it starts
 * them, so one service's missing folder does not fail every host.
 */
export function checkOutputs(outputs: { readonly stdout: OutputTarget; readonly stderr: OutputTarget }): void {
  closeOutput(openOutput(outputs.stdout, 'stdout'));
  closeOutput(openOutput(outputs.stderr, 'stderr'));
}

// A longer line is passed on in pieces, so a program that never writes a
// newline cannot make wakeport buffer without bound.
const maxLine = 8192;

/** Calls `onLine` for each line of `stream`, and for a last unterminated piece at its end. */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    for (const line of lines) onLine(line);
    while (pending.length > maxLine) {
      onLine(pending.slice(0, maxLine));
      pending = pending.slice(maxLine);
    }
  });
  stream.on('end', () => {
    if (pending !== '') onLine(pending);
  });
}
