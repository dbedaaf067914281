// User and group names to ids, read from /etc/passwd and /etc/group (Node
// has no getpwnam). A wakeport that is not root can only run programs as its
// own user, so that is the only user it accepts then.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { RunAs } from './entry.js';
import { LineProblem, type UserField } from './fields.js';

export interface UserDatabase {
  /** The user running wakeport. */
  readonly self: RunAs;
  readonly users: ReadonlyMap<string, RunAs>;
  readonly groups: ReadonlyMap<string, number>;
}

export function readUserDatabase(): UserDatabase {
  const info = os.userInfo();
  const self: RunAs = { name: info.username, uid: info.uid, gid: info.gid, home: info.homedir };
  const users = new Map<string, RunAs>();
  for (const [name, , uid, gid, , home] of readColonFile('/etc/passwd')) {
    if (name && uid && gid) users.set(name, { name, uid: Number(uid), gid: Number(gid), home: home ?? '/' });
  }
  const groups = new Map<string, number>();
  for (const [name, , gid] of readColonFile('/etc/group')) if (name && gid) groups.set(name, Number(gid));
  return { self, users, groups };
}

function readColonFile(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.split(':'));
  } catch {
    return [];
  }
}

/** null means "run as the user running wakeport". */
export function resolveUser(field: UserField, db: UserDatabase): RunAs | null {
  if (field.user === null) return null;
  const user = lookupUser(field.user, db);
  if (!user) {
    const dot = field.dotted ? ` (read as user.group; for a user whose name has a dot, write ${field.user}.${field.group}:GROUP)` : '';
    throw new LineProblem(`unknown user "${field.user}"${dot}`);
  }
  const gid = field.group === null ? user.gid : lookupGroup(field.group, db);
  if (gid === undefined) throw new LineProblem(`unknown group "${field.group}"`);
  if (db.self.uid !== 0 && (user.uid !== db.self.uid || gid !== db.self.gid)) {
    const self = `${db.self.name} (uid ${db.self.uid}, gid ${db.self.gid})`;
    throw new LineProblem(
      `wakeport runs as ${self}, so it can only run programs as that user and group; write "-" or run wakeport as root`,
    );
  }
  return user.uid === db.self.uid && gid === db.self.gid ? null : { ...user, gid };
}

/**
 * The owner and group a unix socket file is given (FreeBSD's
 * `:user:group:mode:/path`; an empty part leaves it as created). Not root,
 * wakeport can give a file only to itself, and to a group of its own.
 */
export function resolveSocketOwner(user: string, group: string, db: UserDatabase): { uid?: number; gid?: number } {
  const uid = user === '' ? undefined : lookupUser(user, db)?.uid;
  if (user !== '' && uid === undefined) throw new LineProblem(`unknown user "${user}"`);
  const gid = group === '' ? undefined : lookupGroup(group, db);
  if (group !== '' && gid === undefined) throw new LineProblem(`unknown group "${group}"`);
  const ownGroups = [db.self.gid, ...(process.getgroups?.() ?? [])];
  if (db.self.uid !== 0 && ((uid !== undefined && uid !== db.self.uid) || (gid !== undefined && !ownGroups.includes(gid)))) {
    throw new LineProblem(`wakeport runs as ${db.self.name} (uid ${db.self.uid}), so it can give a socket file only to itself and its own groups; run wakeport as root`);
  }
  return { ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) };
}

function lookupUser(name: string, db: UserDatabase): RunAs | undefined {
  if (name === db.self.name) return db.self;
  if (/^\d+$/.test(name)) {
    const uid = numericId(name, 'uid');
    return [...db.users.values()].find((user) => user.uid === uid) ?? { name, uid, gid: uid, home: '/' };
  }
  return db.users.get(name);
}

function lookupGroup(name: string, db: UserDatabase): number | undefined {
  return /^\d+$/.test(name) ? numericId(name, 'gid') : db.groups.get(name);
}

// Node starts a program only as an id that fits in a signed 32-bit integer.
const maxId = 2 ** 31 - 1;

function numericId(digits: string, what: 'uid' | 'gid'): number {
  const id = Number(digits);
  if (id > maxId) throw new LineProblem(`${what} ${digits} is out of range (0 to ${maxId}: Node cannot start a program as a larger one)`);
  return id;
}
