// The memory this process may use: the cgroup limit when one is set (a
// container), else the machine's RAM. Read the way the node's memory monitor
// reads it (core/raylet/memory_monitor.cc): cgroup v2 memory.max, else
// cgroup v1 memory.limit_in_bytes; a "limit" at or above the RAM means none.
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

/** This process's cgroup v2 path ("0::/a/b" in /proc/self/cgroup), '' when unknown. */
function cgroupV2Path(procSelfCgroup: string): string {
  try {
    const line = readFileSync(procSelfCgroup, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : '';
  } catch {
    return '';
  }
}

/**
 * The cgroup memory limit in bytes, or undefined when none is set (or it is
 * not below `physical`). `root` and `procSelfCgroup` are parameters for tests.
 */
export function cgroupMemoryLimit(physical = os.totalmem(), root = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): number | undefined {
  const candidates: number[] = [];
  // v2: the process's own cgroup (no cgroup namespace), then the root (a namespace).
  const own = cgroupV2Path(procSelfCgroup);
  for (const dir of own && own !== '/' ? [path.join(root, own), root] : [root]) {
    const v = readNumber(path.join(dir, 'memory.max'));
    if (v !== undefined) candidates.push(v);
  }
  const v1 = readNumber(path.join(root, 'memory', 'memory.limit_in_bytes'));
  if (v1 !== undefined) candidates.push(v1);
  const limit = candidates.length > 0 ? Math.min(...candidates) : undefined;
  return limit !== undefined && limit > 0 && limit < physical ? limit : undefined;
}

/** Memory the node may use: min(RAM, cgroup limit). */
export function availableMemory(): number {
  const physical = os.totalmem();
  return cgroupMemoryLimit(physical) ?? physical;
}
