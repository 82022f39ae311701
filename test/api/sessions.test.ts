// Session directories: one root per user (os.tmpdir()/rayts-<uid>, 0700,
// refused when unsafe); the next init() removes what drivers that died left
// behind (session directories, spill files); init({ handleSignals: true })
// shuts down on SIGTERM/SIGINT. Each test points TMPDIR at a fresh
// directory, so the machine's other sessions are not touched.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ray from 'rayts';
import { alive } from '../support/process.js';
import { until } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/session_driver.mjs', import.meta.url));
const UID = process.getuid!();
const savedTmp = process.env.TMPDIR;
let tmp = '';

beforeEach(() => {
  tmp = mkdtempSync(path.join(savedTmp ?? '/tmp', 'rayts-sessions-test-'));
  process.env.TMPDIR = tmp;
});
const children: ChildProcess[] = [];
afterEach(async () => {
  await ray.shutdown();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (savedTmp === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = savedTmp;
  rmSync(tmp, { recursive: true, force: true });
});

interface Report { driver: number; workers: number[]; sessionDir: string; spillDir: string; spilled: number }

function startDriver(opts: Record<string, unknown>): Promise<{ child: ChildProcess; report: Report }> {
  const child = spawn(process.execPath, [DRIVER, JSON.stringify(opts)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp },
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`driver did not report within 30 s:\n${out}\n${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve({ child, report: JSON.parse(out.slice(0, nl)) as Report });
    });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`driver exited early (${code ?? sig}):\n${out}\n${err}`)); });
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

describe('the session root', () => {
  it('is os.tmpdir()/rayts-<uid>, mode 0700, and holds this driver\'s session', async () => {
    await ray.init({ numCpus: 1 });
    const root = path.join(tmp, `rayts-${UID}`);
    const st = lstatSync(root);
    expect(st.isDirectory()).toBe(true);
    expect(st.uid).toBe(UID);
    expect(st.mode & 0o777).toBe(0o700);
    const mine = readdirSync(root).filter((n) => n.startsWith(`session_${process.pid}_`));
    expect(mine).toHaveLength(1);
    expect(existsSync(path.join(root, mine[0]!, 'sockets', 'node.sock'))).toBe(true);
    await ray.shutdown();
    expect(existsSync(path.join(root, mine[0]!))).toBe(false);
  });

  it('is refused with a clear error when others may write it, when it is a symlink, or when another user owns it', async () => {
    const root = path.join(tmp, `rayts-${UID}`);
    mkdirSync(root);
    chmodSync(root, 0o777);
    await expect(ray.init({ numCpus: 1 })).rejects.toThrow(/session root .*rayts-\d+ has mode 0777; it must be 0700/);
    expect(ray.isInitialized()).toBe(false);
    rmSync(root, { recursive: true });

    const elsewhere = mkdtempSync(path.join(tmp, 'target-'));
    chmodSync(elsewhere, 0o700);
    symlinkSync(elsewhere, root);
    await expect(ray.init({ numCpus: 1 })).rejects.toThrow(/session root .* is a symbolic link/);
    rmSync(root);

    if (UID === 0) { // only root can give the directory to someone else
      mkdirSync(root, { mode: 0o700 });
      chownSync(root, 4321, 4321);
      await expect(ray.init({ numCpus: 1 })).rejects.toThrow(/belongs to uid 4321, not to this user/);
      rmSync(root, { recursive: true });
    }
    // Once fixed, init() works.
    await ray.init({ numCpus: 1 });
    expect(lstatSync(root).mode & 0o777).toBe(0o700);
  });
});

describe('leftovers of dead drivers', () => {
  it('the next init() removes the session directory and spill files of a driver killed by a signal, and keeps a live one\'s', async () => {
    const spillParent = mkdtempSync(path.join(tmp, 'spill-parent-'));
    const dead = await startDriver({ objectStoreMemory: 8 << 20, objectSpillingDirectory: spillParent, spill: true });
    const live = await startDriver({});
    expect(dead.report.spilled).toBeGreaterThan(0);
    expect(path.dirname(dead.report.spillDir)).toBe(spillParent);
    expect(readdirSync(dead.report.spillDir).length).toBeGreaterThan(0);
    dead.child.kill('SIGKILL');
    await exited(dead.child);
    // Nothing removed them: the driver died without a word.
    expect(existsSync(dead.report.sessionDir)).toBe(true);
    expect(existsSync(dead.report.spillDir)).toBe(true);

    await ray.init({ numCpus: 1 });
    expect(existsSync(dead.report.sessionDir)).toBe(false);
    expect(existsSync(dead.report.spillDir)).toBe(false);
    expect(existsSync(spillParent)).toBe(true);  // the user's directory stays
    expect(existsSync(live.report.sessionDir)).toBe(true);
    expect(alive(live.report.driver)).toBe(true);
  }, 90_000);
});

describe('init({ handleSignals: true })', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig}: the driver shuts down (session directory removed, workers gone within 1 s) and ends by the signal`, async () => {
      const { child, report } = await startDriver({ handleSignals: true });
      expect(report.workers.every(alive)).toBe(true);
      const t0 = performance.now();
      child.kill(sig);
      const end = await exited(child);
      expect(end.signal).toBe(sig);
      await until(() => report.workers.every((p) => !alive(p)), 1000, 'the workers to exit');
      console.log(`${sig} with handleSignals: driver and workers gone in ${(performance.now() - t0).toFixed(0)} ms`);
      expect(existsSync(report.sessionDir)).toBe(false);
    }, 60_000);
  }

  it('is validated', async () => {
    await expect(ray.init({ handleSignals: 'yes' } as unknown as Parameters<typeof ray.init>[0])).rejects.toThrow(TypeError);
    await expect(ray.init({ handleSignals: 1 } as unknown as Parameters<typeof ray.init>[0])).rejects.toThrow(/handleSignals must be a boolean/);
  });

  it('adds no listener unless asked, and removes its listeners at shutdown', async () => {
    const before = process.listenerCount('SIGTERM');
    await ray.init({ numCpus: 1 });
    expect(process.listenerCount('SIGTERM')).toBe(before);
    await ray.shutdown();
    await ray.init({ numCpus: 1, handleSignals: true });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    expect(process.listenerCount('SIGINT')).toBeGreaterThanOrEqual(1);
    await ray.shutdown();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
