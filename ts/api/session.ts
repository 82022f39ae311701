// Session directories of embedded clusters: one root per user,
// os.tmpdir()/rayts-<uid> (mode 0700, checked with lstat), holding one
// session_<pid>_XXXXXX directory per driver (sockets, logs, spill files).
// A driver that died without shutting down leaves its directory behind; the
// next init() on the machine removes the directories (and the spill
// directories they name) of drivers that are no longer alive.
import * as os from 'node:os';
import * as path from 'node:path';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { RaySystemError } from './errors.js';

const OWNER_FILE = 'session.json';

interface SessionOwner {
  pid: number;
  /** The driver's start time (/proc/<pid>/stat field 22): tells a reused pid apart. */
  start: string;
  /** The spill directory of its node, when it is outside the session directory. */
  spillDir?: string;
}

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

/** Start time of process `pid` in clock ticks since boot, '' if it is not running. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z') return '';
    return rest[19] ?? '';
  } catch {
    return '';
  }
}

/** Where this user's sessions live: os.tmpdir()/rayts-<uid> (not created here). */
export function sessionRootPath(tmp = os.tmpdir()): string {
  return path.join(tmp, `rayts-${uid()}`);
}

/**
 * The per-user session root, created 0700 if absent. Refused (RaySystemError)
 * if it is a symlink or not a directory, belongs to another user, or others
 * may read or write it: another user could then break or spy on a session.
 */
export function sessionRoot(tmp = os.tmpdir()): string {
  const me = uid();
  const root = sessionRootPath(tmp);
  try {
    mkdirSync(root, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(root);
  const fix = `remove it (rm -r ${root}) or set TMPDIR to a directory of your own`;
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new RaySystemError(`rayts: the session root ${root} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; ${fix}`);
  }
  if (st.uid !== me) {
    throw new RaySystemError(`rayts: the session root ${root} belongs to uid ${st.uid}, not to this user (uid ${me}); ${fix}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new RaySystemError(`rayts: the session root ${root} has mode 0${(st.mode & 0o777).toString(8)}; it must be 0700 (only its owner may use it); ${fix}`);
  }
  return root;
}

/** A fresh session directory for this driver, with sockets/ and logs/. */
export function createSessionDir(root: string): string {
  const dir = mkdtempSync(path.join(root, `session_${process.pid}_`));
  mkdirSync(path.join(dir, 'sockets'), { mode: 0o700 });
  mkdirSync(path.join(dir, 'logs'), { mode: 0o700 });
  writeOwner(dir, { pid: process.pid, start: startTime(process.pid) });
  return dir;
}

function writeOwner(dir: string, owner: SessionOwner): void {
  writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify(owner) + '\n', { mode: 0o600 });
}

/** This process owns `dir` from now on (a node daemon taking over the directory its launcher made). */
export function claimSessionDir(dir: string): void {
  writeOwner(dir, { pid: process.pid, start: startTime(process.pid) });
}

/** Records where the node spills (so a later init() can remove it if this driver dies). */
export function recordSpillDir(dir: string, spillDir: string): void {
  if (spillDir === '' || spillDir.startsWith(dir + path.sep)) return;
  writeOwner(dir, { pid: process.pid, start: startTime(process.pid), spillDir });
}

function readOwner(dir: string): SessionOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as Partial<SessionOwner>;
    if (typeof o.pid !== 'number' || typeof o.start !== 'string') return undefined;
    return { pid: o.pid, start: o.start, ...(typeof o.spillDir === 'string' ? { spillDir: o.spillDir } : {}) };
  } catch {
    return undefined;
  }
}

/** True while the driver that made `dir` (session_<pid>_*) runs. */
function ownerAlive(dir: string, name: string): boolean {
  const owner = readOwner(dir);
  if (owner !== undefined) return owner.start !== '' && startTime(owner.pid) === owner.start;
  // No owner file (being created right now, or made by an older rayts): the pid in the name.
  const m = /^session_(\d+)_/.exec(name);
  return m !== null && startTime(Number(m[1])) !== '';
}

/**
 * Removes the session directories under `root` whose driver is no longer
 * alive, and the spill directories they name. Returns the directories
 * removed. Best effort: a directory that cannot be removed is left.
 */
export function removeStaleSessions(root: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith('session_')) continue;
    const dir = path.join(root, name);
    if (ownerAlive(dir, name)) continue;
    const spill = readOwner(dir)?.spillDir;
    try {
      // Only a directory the node made (spill_XXXXXX), never the user's parent.
      if (spill !== undefined && /^spill_[A-Za-z0-9]{6}$/.test(path.basename(spill))) rmSync(spill, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // another init() removed it first, or it is not ours to remove
    }
  }
  return removed;
}
