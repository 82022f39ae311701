// Defaults follow a real cgroup memory limit: a driver started inside a
// memory cgroup limited to 2 GiB sizes its object store (30 % of the
// memory it may use, at most 1 GiB) and its memory monitor (the total its
// threshold is a fraction of) from those 2 GiB, not from the machine's RAM.
// The cgroup is a child of this process's own memory cgroup (v1
// memory.limit_in_bytes, or v2 memory.max when the parent delegates the
// memory controller), removed in afterAll; stale ones of dead runs go
// first. Needs root; skipped, with the reason, where no memory cgroup can be
// made.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive } from '../support/process.js';
import { until } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/cgroup_driver.mjs', import.meta.url));
const GIB = 2 ** 30;
const LIMIT = 2 * GIB;
const PREFIX = 'rayts-cgroup-test-';

interface Parent { dir: string; limitFile: string }

/** Where a child memory cgroup can go (this process's own memory cgroup), or why none can. */
function memoryCgroupParent(): Parent | string {
  if (process.getuid?.() !== 0) return 'needs root to make a cgroup';
  let own: string;
  try {
    own = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return 'no /proc/self/cgroup';
  }
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) { // unified (v2) hierarchy
    const rel = /^0::(.*)$/m.exec(own)?.[1] ?? '/';
    const dir = path.join('/sys/fs/cgroup', rel);
    let delegated = false;
    try {
      delegated = readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory');
    } catch { /* not readable: not delegated */ }
    if (!delegated) return `cgroup v2: memory is not enabled in ${dir}/cgroup.subtree_control`;
    return { dir, limitFile: 'memory.max' };
  }
  const rel = /^\d+:([^:]*,)?memory(,[^:]*)?:(.*)$/m.exec(own)?.[3];
  const dir = rel === undefined ? '' : path.join('/sys/fs/cgroup/memory', rel);
  if (!dir || !existsSync(path.join(dir, 'memory.limit_in_bytes'))) return 'no memory cgroup (v1 or v2) is mounted for this process';
  return { dir, limitFile: 'memory.limit_in_bytes' };
}

const parent = memoryCgroupParent();
const skipWhy = typeof parent === 'string' ? parent : '';
let cgroup = '';
let child: ChildProcess | undefined;

function procsIn(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Moves what is left in `dir` to its parent, then removes it (bounded). */
async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await until(() => {
    for (const pid of procsIn(dir)) {
      try { writeFileSync(path.join(path.dirname(dir), 'cgroup.procs'), `${pid}\n`); } catch { /* exited meanwhile */ }
    }
    try {
      rmdirSync(dir);
      return true;
    } catch {
      return false;
    }
  }, 10_000, `cgroup ${dir} to be removed`);
}

describe.skipIf(skipWhy !== '')(`defaults under a real cgroup memory limit${skipWhy ? ` (skipped: ${skipWhy})` : ''}`, () => {
  beforeAll(async () => {
    const p = parent as Parent;
    for (const name of readdirSync(p.dir).filter((n) => n.startsWith(PREFIX))) {
      if (!alive(Number(name.slice(PREFIX.length)))) await removeCgroup(path.join(p.dir, name));
    }
    cgroup = path.join(p.dir, `${PREFIX}${process.pid}`);
    mkdirSync(cgroup);
    writeFileSync(path.join(cgroup, p.limitFile), `${LIMIT}\n`);
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (cgroup) await removeCgroup(cgroup);
    expect(existsSync(cgroup)).toBe(false);
  });

  it('store size and memory monitor total derive from the 2 GiB limit, not the machine RAM', async () => {
    expect(os.totalmem()).toBeGreaterThan(4 * GIB); // otherwise the two would not differ
    // The shell moves itself into the cgroup, then becomes the driver, so
    // the driver and the workers it spawns start inside it.
    const c = spawn('/bin/sh', ['-c', 'echo $$ > "$1" && exec "$2" "$3"', 'sh', path.join(cgroup, 'cgroup.procs'), process.execPath, DRIVER], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`driver did not finish within 60 s:\n${out}\n${err}`)), 60_000);
      c.on('exit', (exitCode) => { clearTimeout(timer); resolve(exitCode); });
    });
    expect(code, `driver failed:\n${out}\n${err}`).toBe(0);
    const r = JSON.parse(out.trim().split('\n').pop()!) as {
      storeCapacity: number; memoryTotal: number; memoryThreshold: number; driverCgroup: string; workerCgroup: string;
    };
    const name = path.basename(cgroup);
    expect(r.driverCgroup).toContain(name);
    expect(r.workerCgroup).toContain(name);
    // 30 % of 2 GiB (614 MiB) where the machine's RAM would give the 1 GiB cap.
    const expected = Math.min(GIB, Math.floor(LIMIT * 0.3));
    expect(Math.min(GIB, Math.floor(os.totalmem() * 0.3))).toBe(GIB);
    expect(r.storeCapacity).toBeLessThanOrEqual(expected);
    expect(r.storeCapacity).toBeGreaterThan(expected - (16 << 20));
    // The memory monitor's total is the cgroup limit, so its threshold
    // (the fraction memoryThreshold of it) is a share of 2 GiB.
    expect(r.memoryTotal).toBe(LIMIT);
    expect(r.memoryThreshold).toBeGreaterThan(0);
    expect(r.memoryThreshold * r.memoryTotal).toBeLessThan(LIMIT + 1);
  }, 90_000);
});
