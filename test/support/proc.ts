// What this process holds, read from /proc: open fds, threads, shared-memory
// mappings of the object store, child processes, RSS; and the machine's
// Shmem. For tests that check nothing is left behind.
import { readdirSync, readFileSync } from 'node:fs';

export interface Footprint {
  fds: number;
  threads: number;
  /** Mappings of the object store (memfd rayts-plasma, or /dev/shm/rayts-plasma-*). */
  storeMaps: number;
  children: number[];
  rssMb: number;
}

export function openFds(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function threads(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

export function storeMappings(pid: number | 'self' = 'self'): number {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => /rayts-plasma/.test(l)).length;
}

/** Resident set of `pid` in MB (0 once it is gone). */
export function rssMb(pid: number | 'self' = 'self'): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Live (non-zombie) children of `parent`. */
export function childrenOf(parent: number = process.pid): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] !== 'Z' && Number(rest[1]) === parent) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The machine's shared memory (tmpfs, memfd) in MB: /proc/meminfo Shmem. */
export function systemShmemMb(): number {
  const m = /^Shmem:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

export function footprint(): Footprint {
  return { fds: openFds(), threads: threads(), storeMaps: storeMappings(), children: childrenOf(), rssMb: rssMb() };
}
