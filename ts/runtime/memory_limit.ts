// The memory this process may use: the cgroup limit when one is set (a
// container, a systemd slice), else the machine's RAM. Read the way the
// node's memory monitor reads it (ReadCgroupMemory in
// core/raylet/memory_monitor.cc): of this process's own cgroup (its path in
// /proc/self/cgroup) and each ancestor up to the mount root, the smallest
// limit: cgroup v2 memory.max, cgroup v1 memory/memory.limit_in_bytes; a
// "limit" at or above the RAM means none.
import * as os from 'node:os';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';

function readNumber(file: string): number | undefined {
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (!/^\d+$/.test(t)) return undefined; // "max": no limit
    return Number(t);
  } catch {
    return undefined;
  }
}

/** This process's cgroup path: v2 ("0::/a/b") or the v1 memory controller's ("4:memory:/a/b"); '' when unknown. */
function ownCgroupPath(procSelfCgroup: string, v2: boolean): string {
  let text: string;
  try {
    text = readFileSync(procSelfCgroup, 'utf8');
  } catch {
    return '';
  }
  for (const line of text.split('\n')) {
    const m = /^[^:]*:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1]!;
    if (v2 ? controllers === '' : controllers.split(',').includes('memory')) return m[2]!;
  }
  return '';
}

/** `base`/`rel` and each of its parents up to `base` itself. */
function selfAndAncestors(base: string, rel: string): string[] {
  const dirs: string[] = [];
  for (let r = rel; r !== '' && r !== '/' && r !== '.'; r = path.posix.dirname(r)) dirs.push(path.join(base, r));
  dirs.push(base);
  return dirs;
}

/**
 * The cgroup memory limit in bytes, or undefined when none is set (or it is
 * not below `physical`). `root` and `procSelfCgroup` are parameters for tests.
 */
export function cgroupMemoryLimit(physical = os.totalmem(), root = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): number | undefined {
  const files = [
    ...selfAndAncestors(root, ownCgroupPath(procSelfCgroup, true)).map((d) => path.join(d, 'memory.max')),
    ...selfAndAncestors(path.join(root, 'memory'), ownCgroupPath(procSelfCgroup, false)).map((d) => path.join(d, 'memory.limit_in_bytes')),
  ];
  let limit: number | undefined;
  for (const f of files) {
    const v = readNumber(f);
    if (v !== undefined && v > 0 && v < physical && (limit === undefined || v < limit)) limit = v;
  }
  return limit;
}

/** Memory the node may use: min(RAM, cgroup limit). */
export function availableMemory(): number {
  const physical = os.totalmem();
  return cgroupMemoryLimit(physical) ?? physical;
}
