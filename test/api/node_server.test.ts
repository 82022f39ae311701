// The node server under a burst and under fd exhaustion: idle workers above
// the prestarted count are ended about 1 s after they go idle (Ray:
// idle_worker_killing_time_threshold_ms), and an accept error (EMFILE) does
// not stop the listener: it retries with backoff and logs it.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ray from 'rayts';
import { childrenOf } from '../support/proc.js';
import { until } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ACCEPT_DRIVER = fileURLToPath(new URL('../fixtures/accept_driver.mjs', import.meta.url));

afterAll(() => ray.shutdown());

describe('idle workers', () => {
  it('above the prestarted count are ended about 1 s after a burst; the prestarted one stays', async () => {
    await ray.init({ numCpus: 1 }); // one prestarted worker
    await until(() => childrenOf().length === 1, 20_000, 'the prestarted worker');
    const quarter = ray.remote({ numCpus: 0.25 }, async () => {
      await new Promise((r) => setTimeout(r, 300));
      return process.pid;
    });
    // The burst: four quarter-CPU tasks at once grow the pool past the
    // prestarted worker (how far depends on how fast workers start).
    const burst = ray.get([quarter.remote(), quarter.remote(), quarter.remote(), quarter.remote()]);
    let peak = 0;
    let done = false;
    void burst.finally(() => { done = true; });
    while (!done) {
      peak = Math.max(peak, childrenOf().length);
      await new Promise((r) => setTimeout(r, 20)); // paces the sampling loop
    }
    const pids = new Set(await burst);
    expect(Math.max(peak, pids.size)).toBeGreaterThan(1);
    const t0 = performance.now();
    await until(() => childrenOf().length === 1, 5000, 'the pool to shrink back to one worker');
    console.log(`pool back to 1 worker ${(performance.now() - t0).toFixed(0)} ms after the burst's results`);
    // The one left still serves.
    expect(await ray.remote(() => 'still here').remote()).toBe('still here');
    await ray.shutdown();
  }, 60_000);
});

describe('accept errors', () => {
  it('EMFILE on accept: the node server and the driver log it, retry, and accept again once fds are free', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rayts-accept-test-'));
    const marker = path.join(dir, 'go');
    const child = spawn('prlimit', ['--nofile=400:400', process.execPath, ACCEPT_DRIVER, marker], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    try {
      await until(() => out.includes('\n'), 30_000, 'the driver to fill its fd table');
      const { sock, driverSock } = JSON.parse(out.split('\n')[0]!) as { sock: string; driverSock: string };
      // Connections neither listener can accept (no fd left in the process).
      const conn = net.connect(sock);
      conn.on('error', () => undefined);
      const conn2 = net.connect(driverSock);
      conn2.on('error', () => undefined);
      await until(() => /node server: accept on .* failed: Too many open files/.test(err), 10_000, 'the node server to log the accept error');
      await until(() => /rayts: accept on .*driver\.sock failed: Too many open files/.test(err), 10_000,
        'the driver\'s listener to log the accept error');
      writeFileSync(marker, '');
      expect(await exited).toBe(0);
      conn.destroy();
      conn2.destroy();
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      expect(line, `${out}\n${err}`).toBeDefined();
      const result = JSON.parse(line!.slice(7)) as { ok: boolean; pids?: number[]; fetched?: string; error?: string };
      expect(result, `${JSON.stringify(result)}\n${err}`).toMatchObject({ ok: true });
      expect(new Set(result.pids).size).toBe(3); // three actors, three new workers accepted
      expect(result.fetched).toBe('from the driver'); // the driver's listener accepts again
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
