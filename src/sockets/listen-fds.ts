// The socket-activation protocol of systemd (and of wakeport itself towards
// its workers): sockets at fd 3, 4, … with LISTEN_FDS = how many,
// LISTEN_PID = the pid they are meant for, LISTEN_FDNAMES = their names,
// colon-separated.

export const firstListenFd = 3;

export interface ListenFd {
  readonly fd: number;
  /** null when unnamed (systemd's placeholder name "unknown" counts as unnamed). */
  readonly name: string | null;
}

/**
 * The sockets this process was given, or [] when none were, or when they were
 * meant for another process (LISTEN_PID is someone else's). Removes the
 * variables from `env`, as sd_listen_fds(1) does, so that no child mistakes
 * them for its own.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ListenFd[] {
  const count = Number(env.LISTEN_FDS ?? '0');
  const forPid = env.LISTEN_PID === undefined ? pid : Number(env.LISTEN_PID);
  const names = env.LISTEN_FDNAMES?.split(':') ?? [];
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!Number.isInteger(count) || count <= 0 || forPid !== pid) return [];
  return Array.from({ length: count }, (_, index) => {
    const name = names[index];
    return { fd: firstListenFd + index, name: name && name !== 'unknown' ? name : null };
  });
}
