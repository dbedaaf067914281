// services.conf — the format. A plain inetd.conf is a valid services.conf.
//
// Service lines have whitespace-separated fields, in this order:
//
//   service  socket-type  protocol  wait|nowait[.max]  user[:group]  program  [argv0 args…]
//
//   service      a name from /etc/services, a port number, host:service,
//                [v6addr]:service or *:service (the host may be a
//                comma-separated list); for protocol unix, the socket's path,
//                or :user:group:mode:/path (FreeBSD) to set its file's owner,
//                group and mode.
//   socket-type  stream | dgram
//   protocol     tcp tcp4 tcp6 udp udp4 udp6 unix
//   wait         nowait: one process per connection; wait: one worker is
//                handed the socket. ".max": at most max spawns per minute.
//   user         user, user:group or user.group; "-" is the user running
//                wakeport.
//   program      an absolute path (or ./path, relative to this file's
//                folder), or "internal" for inetd's built-in services.
//   argv0 args…  the program's argv, starting with argv[0]. For "internal",
//                the name of the built-in when the service field is not one.
//
// A field may be quoted, in part or whole, with '…' or "…" to keep blanks
// in it, as FreeBSD's and GNU's inetd allow (`sh -c "echo hello"`); the
// quotes are removed and nothing inside them is special. A line with a
// quote left open (`echo it's`) is split at blanks with its quotes kept, as
// OpenBSD's inetd, which has no quoting, reads every line; with a warning.
//
// Extended options: `key = value` lines, indented, directly under their
// service line (see options.ts for the keys). An indented line that is not
// one, before any option, continues the service line's fields, as in BSD
// inetd; so does one that starts with an upper-case NAME=value word (an
// env(1) argument: option keys are lower case).
//
// A line "host:" alone sets the host for the service lines after it (inetd's
// sticky host); "*:" sets it back to every address. A line whose first
// non-blank character is "#" is a comment (FreeBSD's "#@" IPsec policy
// lines get a warning: wakeport sets no policy); blank lines are ignored. A blank
// line or a comment at the start of a line ends a service's options (a
// commented-out service's options must not drift to the one above it); an
// indented comment does not (a commented-out option).
//
// This module only splits the text into service lines with their options;
// fields.ts and options.ts give the fields their meaning.

import type { ConfigProblem } from '../errors.js';
import { hostLineProblem } from './fields.js';

export interface RawOption {
  readonly line: number;
  readonly key: string;
  readonly value: string;
}

export interface RawService {
  readonly file: string;
  readonly line: number;
  /** The service line's fields, with those of its continuation lines. */
  readonly fields: string[];
  /** The sticky host in force for this line, if any. */
  readonly stickyHost: string | null;
  readonly options: RawOption[];
}

export interface SplitResult {
  readonly services: RawService[];
  readonly problems: ConfigProblem[];
}

const optionLine = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*?)\s*$/;
/** NAME=value as one word, as env(1) takes it (options are lower case). */
const environmentWord = /^[A-Z_][A-Z0-9_]*=\S*$/;
const stickyHostLine = /^(\S*):$/;

export function splitTable(file: string, text: string): SplitResult {
  const services: RawService[] = [];
  const problems: ConfigProblem[] = [];
  let stickyHost: string | null = null;
  // The service line that option lines attach to; null after a blank line
  // or an unindented comment, so that options cannot drift away from their service.
  let current: RawService | null = null;
  const problem = (line: number, message: string): void => {
    problems.push({ file, line, severity: 'error', message });
  };

  // A byte-order mark (some Windows editors write one) is not part of the first line.
  text.replace(/^\uFEFF/, '').split('\n').forEach((rawLine, index) => {
    const line = index + 1;
    const content = rawLine.replace(/\r$/, '');
    const trimmed = content.trim();
    const indented = /^\s/.test(content);
    if (trimmed === '' || trimmed.startsWith('#')) {
      if (!indented || trimmed === '') current = null;
      if (trimmed.startsWith('#@')) {
        problems.push({ file, line, severity: 'warning', message: 'IPsec policy lines ("#@ …", FreeBSD and NetBSD inetd) are not supported: the services after it get no IPsec policy' });
      }
      return;
    }
    if (indented) {
      // `LANG=C /bin/date` under `/usr/bin/env env` continues the argv.
      const match = environmentWord.test(trimmed.split(/\s/, 1)[0]!) ? null : optionLine.exec(trimmed);
      if (!match && current !== null && current.options.length === 0) {
        current.fields.push(...words(line, trimmed));
      } else if (!match) {
        const serviceLine = /^\S+\s+(stream|dgram)\s/.test(trimmed) ? ' (a service line starts at the beginning of its line)' : '';
        problem(line, `indented line is not an option of the form "key = value": ${JSON.stringify(trimmed)}${serviceLine}`);
      } else if (current === null) {
        problem(line, `option "${match[1]}" is not directly under a service line`);
      } else {
        current.options.push({ line, key: match[1]!, value: match[2]! });
      }
      return;
    }
    const sticky = stickyHostLine.exec(trimmed);
    if (sticky) {
      stickyHost = sticky[1] === '*' || sticky[1] === '' ? null : sticky[1]!;
      current = null;
      // Said here, where it is wrong, even if no service line comes to use it (each that does says so too).
      const wrong = stickyHost === null ? null : hostLineProblem(stickyHost);
      if (wrong !== null) problem(line, wrong);
      return;
    }
    current = { file, line, fields: words(line, trimmed), stickyHost, options: [] };
    services.push(current);
  });
  return { services, problems };

  /** The words of a service line or of its continuation (see the top of this file). */
  function words(line: number, text: string): string[] {
    const quoted = splitQuoted(text);
    if (quoted !== null) return quoted;
    problems.push({
      file,
      line,
      severity: 'warning',
      message: `a quote is left open: read as words split at blanks, quotes kept (as OpenBSD inetd does); to keep blanks in a word, close it, and to pass a lone ' write it inside "…"`,
    });
    return text.split(/\s+/);
  }
}

/** The words of a line, split at blanks outside quotes; null when a quote is left open. */
function splitQuoted(text: string): string[] | null {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const char of text) {
    if (quote !== null) {
      if (char === quote) quote = null;
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      word ??= '';
    } else if (/\s/.test(char)) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? '') + char;
  }
  if (word !== null) words.push(word);
  return quote === null ? words : null;
}
