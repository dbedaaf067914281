// wakeport's exit codes (s6's convention), one meaning each.
export const exitCodes = {
  ok: 0,
  /** `wakeport check` found errors in the table. */
  checkFailed: 1,
  /** Wrong usage or a table wakeport refuses to run (--strict), or an inherited fd that is not what it should be. */
  usage: 100,
  /** A bug in wakeport: please report it. */
  bug: 101,
  /** A system call failed: a socket could not be bound (with --strict), the supervisor could not start. */
  system: 111,
} as const;
