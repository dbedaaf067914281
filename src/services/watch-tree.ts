// Watching a file or a folder tree for changes (a wait service's `watch`).
// Not with fs.watch's `recursive`: Node 20 does that on Linux by watching
// each file by its inode, so once an editor, `sed -i` or `git checkout`
// replaces a file by renaming another onto it, every later change to it is
// missed. A watch on a folder sees names come and go: a file is watched
// through its folder, a tree through each of its folders (symbolic links
// to folders are not followed, so a link cannot make a loop).

import { lstatSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface TreeWatch {
  close(): void;
}

/** Calls `onChange` on any change under `target`. Throws (ENOENT, …) when it cannot be watched. */
export function watchTree(target: string, onChange: () => void): TreeWatch {
  if (!statSync(target).isDirectory()) {
    const name = path.basename(target);
    const folder = watch(path.dirname(target), (_event, file) => {
      if (file === null || String(file) === name) onChange();
    });
    return { close: () => folder.close() };
  }
  const folders = new Map<string, FSWatcher>();
  const add = (folder: string): void => {
    if (folders.has(folder)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(folder, (_event, file) => {
        onChange();
        if (file !== null) addIfFolder(path.join(folder, String(file)));
      });
    } catch {
      return; // Gone, or not ours to read: nothing to watch there.
    }
    // A folder removed: its watch ends.
    watcher.on('error', () => {
      watcher.close();
      folders.delete(folder);
    });
    folders.set(folder, watcher);
    for (const entry of readEntries(folder)) if (entry.isDirectory()) add(path.join(folder, entry.name));
  };
  const addIfFolder = (candidate: string): void => {
    if (!folders.has(candidate) && isFolder(candidate)) add(candidate);
  };
  add(target);
  return {
    close: () => {
      for (const watcher of folders.values()) watcher.close();
      folders.clear();
    },
  };
}

function readEntries(folder: string) {
  try {
    return readdirSync(folder, { withFileTypes: true });
  } catch {
    return [];
  }
}

function isFolder(candidate: string): boolean {
  try {
    return lstatSync(candidate).isDirectory();
  } catch {
    return false;
  }
}
