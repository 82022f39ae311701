// cgroupMemoryLimit: the container's memory limit (cgroup v2 memory.max,
// v1 memory.limit_in_bytes, of the process's own cgroup and its ancestors),
// read from a fake /sys/fs/cgroup tree. test/api/cgroup_limit.test.ts runs
// a driver inside a real memory cgroup.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupMemoryLimit } from '../../ts/runtime/memory_limit.js';

const GIB = 2 ** 30;
const PHYSICAL = 16 * GIB;
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function tree(files: Record<string, string>): { root: string; procCgroup: string } {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rayts-cgroup-test-'));
  const root = path.join(dir, 'cgroup');
  for (const [rel, text] of Object.entries(files)) {
    const f = path.join(dir, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, text);
  }
  mkdirSync(root, { recursive: true });
  return { root, procCgroup: path.join(dir, 'proc_self_cgroup') };
}

describe('cgroupMemoryLimit', () => {
  it('reads cgroup v2 memory.max at the root (a cgroup namespace)', () => {
    const t = tree({ 'cgroup/memory.max': `${2 * GIB}\n`, proc_self_cgroup: '0::/\n' });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBe(2 * GIB);
  });

  it("reads the process's own v2 cgroup when there is no namespace", () => {
    const t = tree({ 'cgroup/memory.max': 'max\n', 'cgroup/svc/app/memory.max': `${GIB}\n`, proc_self_cgroup: '0::/svc/app\n' });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBe(GIB);
  });

  it('reads cgroup v1 memory.limit_in_bytes', () => {
    const t = tree({ 'cgroup/memory/memory.limit_in_bytes': `${3 * GIB}\n`, proc_self_cgroup: '4:memory:/x\n' });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBe(3 * GIB);
  });

  it("reads the process's own v1 memory cgroup and its ancestors: the smallest limit binds", () => {
    const t = tree({
      'cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
      'cgroup/memory/jobs/memory.limit_in_bytes': `${3 * GIB}\n`,
      'cgroup/memory/jobs/a/memory.limit_in_bytes': `${4 * GIB}\n`,
      proc_self_cgroup: '5:cpu,cpuacct:/x\n4:memory:/jobs/a\n0::/\n',
    });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBe(3 * GIB);
  });

  it('reads a v2 ancestor between the own cgroup and the root', () => {
    const t = tree({ 'cgroup/svc/memory.max': `${GIB}\n`, 'cgroup/svc/app/memory.max': 'max\n', proc_self_cgroup: '0::/svc/app\n' });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBe(GIB);
  });

  it('no limit: "max", v1 unlimited (a huge number), or nothing there', () => {
    let t = tree({ 'cgroup/memory.max': 'max\n', proc_self_cgroup: '0::/\n' });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBeUndefined();
    rmSync(dir, { recursive: true });
    t = tree({ 'cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n', proc_self_cgroup: '' });
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBeUndefined();
    rmSync(dir, { recursive: true });
    t = tree({});
    expect(cgroupMemoryLimit(PHYSICAL, t.root, t.procCgroup)).toBeUndefined();
  });
});
