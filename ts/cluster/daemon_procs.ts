// The node daemons of this user on this machine, found by their command
// line (`rayts stop`): node processes running the rayts CLI's `start` with
// --block (what a detached `rayts start` leaves running, or a foreground
// one). /proc is read; other users' processes are skipped.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

export interface DaemonProc {
  pid: number;
  argv: string[];
  /** The --temp-dir it was started with (resolved), if any. */
  tempDir: string | undefined;
  /** The --session-dir it was given (detached starts), if any. */
  sessionDir: string | undefined;
}

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

function argValue(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === name && i + 1 < argv.length) return argv[i + 1];
    if (a.startsWith(name + '=')) return a.slice(name.length + 1);
  }
  return undefined;
}

/** True for `node <.../cli/cli.js | .../rayts> start ... --block`. */
export function isDaemonCommandLine(argv: string[]): boolean {
  const cli = argv.findIndex((a, i) => i > 0 && (/[\\/]cli[\\/]cli\.js$/.test(a) || path.basename(a) === 'rayts'));
  if (cli < 0) return false;
  const rest = argv.slice(cli + 1);
  return rest[0] === 'start' && rest.includes('--block');
}

export function listDaemons(): DaemonProc[] {
  const me = uid();
  const out: DaemonProc[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    try {
      if (statSync(`/proc/${p}`).uid !== me) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (!isDaemonCommandLine(argv)) continue;
      const t = argValue(argv, '--temp-dir');
      const s = argValue(argv, '--session-dir');
      out.push({ pid, argv, tempDir: t !== undefined ? path.resolve(t) : undefined, sessionDir: s });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
