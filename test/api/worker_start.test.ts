// Workers that cannot start: a worker process that ends before it registers
// with its node (a bad NODE_OPTIONS in runtimeEnv, a preload that exits) is
// started again with backoff a bounded number of times, then the tasks
// waiting for it reject with RaySystemError carrying how the last one ended
// and its stderr, instead of the node respawning it for ever. A later task
// tries again, so the node runs tasks as soon as workers can start.
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { rejection } from '../support/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rayts-worker-start-test-'));
});
afterEach(async () => {
  await ray.shutdown();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const starts = (file: string): number => (existsSync(file) ? readFileSync(file, 'utf8').length : 0);

describe('a worker that cannot start', () => {
  it('a bad NODE_OPTIONS rejects the task with the worker stderr within seconds', async () => {
    await ray.init({ numCpus: 2, runtimeEnv: { envVars: { NODE_OPTIONS: '--bogus-flag' } } });
    const t0 = Date.now();
    const err = await rejection(ray.get(ray.remote(() => 'never').remote(), { timeoutMs: 10_000 }));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(ray.RaySystemError);
    expect(err.message).toContain('worker processes for this task could not start (3 attempts)');
    expect(err.message).toContain('exited with code 9');
    expect(err.message).toContain('node: --bogus-flag is not allowed in NODE_OPTIONS');
  });

  it('starts are bounded while they fail, and a later task runs once workers can start', async () => {
    // A preload that ends the worker while the marker exists, and counts every start.
    const marker = path.join(dir, 'broken');
    const counter = path.join(dir, 'starts');
    const preload = path.join(dir, 'preload.cjs');
    writeFileSync(preload, `const fs = require('node:fs');
fs.appendFileSync(${JSON.stringify(counter)}, 'x');
if (fs.existsSync(${JSON.stringify(marker)})) { console.error('preload: the marker says no'); process.exit(4); }
`);
    writeFileSync(marker, '');
    await ray.init({ numCpus: 2, runtimeEnv: { envVars: { NODE_OPTIONS: `--require ${preload}` } } });
    const f = ray.remote((x: number) => x * 2);
    const err = await rejection(ray.get(f.remote(1), { timeoutMs: 10_000 }));
    expect(err).toBeInstanceOf(ray.RaySystemError);
    expect(err.message).toContain('exited with code 4');
    expect(err.message).toContain('preload: the marker says no');
    // Two prestarted workers and a few attempts per lease request, not hundreds.
    const failedStarts = starts(counter);
    expect(failedStarts).toBeGreaterThanOrEqual(3);
    expect(failedStarts).toBeLessThanOrEqual(16);
    // A second task after the failure tries again (and fails again the same way).
    const again = await rejection(ray.get(f.remote(2), { timeoutMs: 10_000 }));
    expect(again.message).toContain('could not start (3 attempts)');
    expect(starts(counter)).toBeGreaterThan(failedStarts);
    // Workers can start now: the same node runs the next tasks.
    unlinkSync(marker);
    expect(await ray.get([f.remote(3), f.remote(4)], { timeoutMs: 20_000 })).toEqual([6, 8]);
  });

  it('a worker SIGKILLed while it starts (from outside) is no start failure: it is replaced until one starts', async () => {
    // The first 6 workers SIGKILL themselves while starting: more than the 3
    // attempts a start failure gets, so the task only runs if none counted.
    const counter = path.join(dir, 'kills');
    const preload = path.join(dir, 'sigkill.cjs');
    writeFileSync(preload, `const fs = require('node:fs');
fs.appendFileSync(${JSON.stringify(counter)}, 'x');
if (fs.readFileSync(${JSON.stringify(counter)}, 'utf8').length <= 6) process.kill(process.pid, 'SIGKILL');
`);
    await ray.init({ numCpus: 2, runtimeEnv: { envVars: { NODE_OPTIONS: `--require ${preload}` } } });
    expect(await ray.get(ray.remote(() => 'ran').remote(), { timeoutMs: 20_000 })).toBe('ran');
    expect(starts(counter)).toBeGreaterThan(6);
  });
});
