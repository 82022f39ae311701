// No orphans: when a driver is ended by any signal (or exits without
// shutdown), every worker process it started exits within 1 s (2 s for
// an exit without shutdown).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ray from 'rayts';
import { alive } from '../support/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/orphan_driver.mjs', import.meta.url));

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 256 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts the driver and resolves with the pids it reports. */
function startDriver(mode: 'wait' | 'exit'): Promise<{ child: ChildProcess; driver: number; workers: number[] }> {
  const child = spawn(process.execPath, [DRIVER, mode], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        try {
          const j = JSON.parse(out.slice(0, nl)) as { driver: number; workers: number[] };
          resolve({ child, ...j });
        } catch (e) {
          reject(new Error(`driver printed something else: ${out}\n${err}`));
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code, sig) => reject(new Error(`driver exited early (${code ?? sig}) before reporting pids:\n${out}\n${err}`)));
    setTimeout(() => reject(new Error(`driver did not report pids within 20 s:\n${out}\n${err}`)), 20_000);
  });
}

/** Polls (bounded by `limitMs`) until none of `pids` is alive; returns the time it took, or Infinity. */
async function timeUntilGone(pids: number[], limitMs: number): Promise<{ ms: number; left: number[] }> {
  const t0 = performance.now();
  for (;;) {
    const left = pids.filter(alive);
    const ms = performance.now() - t0;
    if (left.length === 0) return { ms, left };
    if (ms > limitMs) return { ms: Infinity, left };
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('no orphan workers', () => {
  // Workers are forked by the node server's io thread and ask for SIGKILL
  // when it goes (PR_SET_PDEATHSIG), and exit when their connection to the
  // node server closes: a driver ended by any signal takes them along.
  for (const sig of ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGSEGV'] as const) {
    it(`${sig} to a driver: every worker it started exits within 1 s`, async () => {
      const { child, driver, workers } = await startDriver('wait');
      expect(driver).toBe(child.pid);
      expect(workers.length).toBeGreaterThanOrEqual(2);
      for (const p of workers) {
        expect(p).not.toBe(driver);
        expect(alive(p)).toBe(true);
      }
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
      child.kill(sig);
      expect(await exited).toBe(sig);
      const { ms, left } = await timeUntilGone(workers, 5000);
      console.log(`workers gone ${Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : 'NOT within 5 s'} after ${sig} to the driver`);
      expect(left).toEqual([]);
      expect(ms).toBeLessThan(1000);
    }, 40_000);
  }

  it('a driver that exits without shutdown(): every worker exits within 2 s', async () => {
    const { child, workers } = await startDriver('exit');
    expect(workers.length).toBeGreaterThanOrEqual(2);
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    const { ms, left } = await timeUntilGone(workers, 5000);
    expect(left).toEqual([]);
    expect(ms).toBeLessThan(2000);
  }, 40_000);

  it('shutdown() in this process stops its own workers', async () => {
    const pidOf = ray.remote(() => process.pid);
    const pids = [...new Set(await ray.get(Array.from({ length: 4 }, () => pidOf.remote())))];
    expect(pids.length).toBeGreaterThanOrEqual(1);
    for (const p of pids) expect(alive(p)).toBe(true);
    await ray.shutdown();
    const { ms, left } = await timeUntilGone(pids, 5000);
    expect(left).toEqual([]);
    expect(ms).toBeLessThan(2000);
    await ray.init({ numCpus: 2, objectStoreMemory: 256 * 1024 * 1024 });
  }, 30_000);
});
