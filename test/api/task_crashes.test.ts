// How a task's failures outside its own await chain surface: an uncaught
// exception or unhandled rejection fails the running task with that error
// (RayTaskError, not retried unless retryExceptions says so) and the
// worker is replaced; a task that ends its process reports how (exit code
// or signal, from the node that reaped it) and its last stderr lines.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { rejection } from '../support/errors.js';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rayts-crash-test-'));
  await ray.init({ numCpus: 2 });
});
afterAll(async () => {
  await ray.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const runs = (file: string): number => {
  try { return readFileSync(file, 'utf8').length; } catch { return 0; }
};

describe('errors a task raises outside its await chain', () => {
  it('an uncaught exception (thrown in a timer) fails the task with it, once, and the worker is replaced', async () => {
    const marker = path.join(dir, 'uncaught');
    const f = ray.remote(async (file: string) => {
      const fs = await import('node:fs');
      fs.appendFileSync(file, 'x');
      setTimeout(() => { throw new TypeError('thrown from a timer'); }, 0);
      await new Promise((r) => setTimeout(r, 30_000));
      return 'not reached';
    });
    const err = await rejection(ray.get(f.remote(marker), { timeoutMs: 20_000 }));
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err.message).toContain('thrown from a timer');
    expect((err as ray.RayTaskError).cause.name).toBe('TypeError');
    expect(runs(marker)).toBe(1); // not retried: the task threw, it did not crash a worker
    expect(await ray.remote(() => 'next').remote()).toBe('next');
  });

  it('an unhandled rejection fails the task with it; retryExceptions retries it', async () => {
    const marker = path.join(dir, 'rejection');
    const f = ray.remote({ maxRetries: 2, retryExceptions: ['RangeError'] }, async (file: string) => {
      const fs = await import('node:fs');
      fs.appendFileSync(file, 'x');
      void Promise.reject(new RangeError('nobody awaited me'));
      await new Promise((r) => setTimeout(r, 30_000));
      return 'not reached';
    });
    const err = await rejection(ray.get(f.remote(marker), { timeoutMs: 20_000 }));
    expect(err.message).toContain('nobody awaited me');
    expect(runs(marker)).toBe(3); // the first run and two retries
  });

  it('process.exit(3) in a task: WorkerCrashedError says the worker exited with code 3 and carries its last stderr lines', async () => {
    const f = ray.remote({ maxRetries: 0 }, () => {
      console.error('first words');
      console.error('last words before exit');
      process.exit(3);
    });
    const err = await rejection(ray.get(f.remote(), { timeoutMs: 20_000 }));
    expect(err).toBeInstanceOf(ray.WorkerCrashedError);
    const crash = err as ray.WorkerCrashedError;
    expect(err.message).toMatch(/\(pid \d+\) exited with code 3/);
    expect(crash.exitCode).toBe(3);
    expect(crash.signal).toBeUndefined();
    expect(crash.pid).toBeGreaterThan(0);
    expect(crash.stderr).toBe('first words\nlast words before exit');
    expect(err.message).toContain('its last stderr lines:\n  first words\n  last words before exit');
  });

  it('a task that SIGKILLs its own process: WorkerCrashedError names the signal and keeps what it printed', async () => {
    const f = ray.remote({ maxRetries: 0 }, () => {
      console.error('about to be killed');
      process.kill(process.pid, 'SIGKILL');
    });
    const err = await rejection(ray.get(f.remote(), { timeoutMs: 20_000 }));
    expect(err).toBeInstanceOf(ray.WorkerCrashedError);
    const crash = err as ray.WorkerCrashedError;
    expect(err.message).toMatch(/was killed by signal 9 \(SIGKILL\)/);
    expect(crash.signal).toBe('SIGKILL');
    expect(crash.exitCode).toBeUndefined();
    expect(crash.stderr).toBe('about to be killed');
  });

  it('only the last 10 stderr lines are kept, and a crash after retries reports the last attempt', async () => {
    const f = ray.remote({ maxRetries: 1 }, () => {
      for (let i = 0; i < 30; i++) console.error(`line ${i}`);
      process.exit(7);
    });
    const err = await rejection(ray.get(f.remote(), { timeoutMs: 20_000 }));
    const crash = err as ray.WorkerCrashedError;
    expect(crash.exitCode).toBe(7);
    expect(crash.stderr!.split('\n')).toEqual(Array.from({ length: 10 }, (_, i) => `line ${20 + i}`));
  });
});
