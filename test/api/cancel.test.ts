// ray.cancel: queued tasks fail at once; running tasks see
// getRuntimeContext().signal abort and their get rejects with
// TaskCancelledError whether they stop or not; force ends the worker (no
// retry); recursive cancels the tasks a task submitted; actor calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from 'rayts';
import { rejection } from '../support/errors.js';
import { filesIn, tempDir } from '../support/fs.js';
import { waitForExit, waitForFile } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 64 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

/** Writes `started` (its pid), then waits for its signal (or 30 s); on abort writes `aborted` and throws the reason. */
const cooperative = ray.remote(async (dir: string, tag: string) => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const ray = await import('rayts');
  const { signal } = ray.getRuntimeContext();
  if (signal === undefined) throw new Error('no signal inside a task');
  fs.writeFileSync(path.join(dir, `${tag}-started`), String(process.pid));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, 30_000);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      fs.writeFileSync(path.join(dir, `${tag}-aborted`), String((signal.reason as Error).name));
      reject(signal.reason);
    });
  });
  return 'finished';
});

describe('ray.cancel of normal tasks', () => {
  it('a queued task fails at once with TaskCancelledError and never runs', async () => {
    const dir = tempDir('cancel-queued');
    // Both CPUs busy until released, so the next task waits in the owner's queue.
    const hold = ray.remote(async (dir: string, i: number) => {
      const fs = await import('node:fs');
      fs.writeFileSync(`${dir}/hold-${i}`, '');
      for (let k = 0; k < 1000 && !fs.existsSync(`${dir}/release`); k++) await new Promise((r) => setTimeout(r, 20));
      return i;
    });
    const holders = [hold.remote(dir, 0), hold.remote(dir, 1)];
    await waitForFile(path.join(dir, 'hold-0'));
    await waitForFile(path.join(dir, 'hold-1'));
    const queued = ray.remote(async (dir: string) => {
      (await import('node:fs')).writeFileSync(`${dir}/queued-ran`, '');
      return 'ran';
    }).remote(dir);
    ray.cancel(queued);
    const err = await rejection(ray.get(queued, { timeoutMs: 5000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    expect(err).toBeInstanceOf(ray.RayError);
    fs.writeFileSync(path.join(dir, 'release'), '');
    expect(await ray.get(holders, { timeoutMs: 20_000 })).toEqual([0, 1]);
    expect(fs.existsSync(path.join(dir, 'queued-ran'))).toBe(false);
  });

  it('a running task sees getRuntimeContext().signal abort and get rejects with TaskCancelledError', async () => {
    const dir = tempDir('cancel-coop');
    const ref = cooperative.remote(dir, 't');
    const pid = Number(await waitForFile(path.join(dir, 't-started')));
    ray.cancel(ref);
    const err = await rejection(ray.get(ref, { timeoutMs: 10_000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    // The task observed the signal (its reason is a TaskCancelledError) ...
    expect(fs.readFileSync(path.join(dir, 't-aborted'), 'utf8')).toBe('TaskCancelledError');
    // ... and its worker was not killed: it is still there.
    expect(() => process.kill(pid, 0)).not.toThrow();
  });

  it('a task that ignores the signal keeps running; its result is discarded and get still rejects', async () => {
    const dir = tempDir('cancel-ignore');
    const stubborn = ray.remote(async (dir: string) => {
      const fs = await import('node:fs');
      fs.writeFileSync(`${dir}/started`, '');
      for (let k = 0; k < 500 && !fs.existsSync(`${dir}/go-on`); k++) await new Promise((r) => setTimeout(r, 20));
      fs.writeFileSync(`${dir}/finished-anyway`, '');
      return 'value';
    });
    const ref = stubborn.remote(dir);
    await waitForFile(path.join(dir, 'started'));
    ray.cancel(ref);
    // Not answered while it still runs.
    const [ready] = await ray.wait([ref], { timeoutMs: 300 });
    expect(ready).toEqual([]);
    fs.writeFileSync(path.join(dir, 'go-on'), '');
    const err = await rejection(ray.get(ref, { timeoutMs: 20_000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    expect(fs.existsSync(path.join(dir, 'finished-anyway'))).toBe(true);
  });

  it('force: true kills the worker process and the task is not retried', async () => {
    const dir = tempDir('cancel-force');
    const stuck = ray.remote({ maxRetries: 3 }, async (dir: string) => {
      const fs = await import('node:fs');
      fs.writeFileSync(`${dir}/attempt-${process.pid}`, String(process.pid));
      const end = Date.now() + 30_000;
      while (Date.now() < end) { /* busy: never yields to the event loop */ }
      return 'finished';
    });
    const ref = stuck.remote(dir);
    let attempt: string[] = [];
    for (let i = 0; i < 1000 && attempt.length === 0; i++) {
      attempt = filesIn(dir, 'attempt-');
      if (attempt.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(attempt).toHaveLength(1);
    const workerPid = Number(attempt[0]!.slice('attempt-'.length));
    ray.cancel(ref, { force: true });
    const err = await rejection(ray.get(ref, { timeoutMs: 10_000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    await waitForExit(workerPid, 10_000);
    // No retry: still exactly one attempt, and the cluster still runs tasks.
    expect(await ray.remote(() => 'alive').remote()).toBe('alive');
    expect(filesIn(dir, 'attempt-')).toHaveLength(1);
  });

  it('recursive (the default) cancels the tasks the cancelled task submitted', async () => {
    const dir = tempDir('cancel-recursive');
    const parent = ray.remote(async (dir: string) => {
      const ray = await import('rayts');
      const child = ray.remote(async (dir: string) => {
        const fs = await import('node:fs');
        const ray = await import('rayts');
        const { signal } = ray.getRuntimeContext();
        fs.writeFileSync(`${dir}/child-started`, '');
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, 30_000);
          signal!.addEventListener('abort', () => {
            clearTimeout(t);
            fs.writeFileSync(`${dir}/child-aborted`, '');
            reject(signal!.reason);
          });
        });
        return 'child finished';
      });
      return await ray.get(child.remote(dir));
    });
    const ref = parent.remote(dir);
    await waitForFile(path.join(dir, 'child-started'));
    ray.cancel(ref);
    const err = await rejection(ray.get(ref, { timeoutMs: 10_000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    await waitForFile(path.join(dir, 'child-aborted'), 10_000);
  });

  it('recursive: false leaves the children running', async () => {
    const dir = tempDir('cancel-nonrecursive');
    const parent = ray.remote(async (dir: string) => {
      const ray = await import('rayts');
      const child = ray.remote(async (dir: string) => {
        const fs = await import('node:fs');
        const ray = await import('rayts');
        const { signal } = ray.getRuntimeContext();
        signal!.addEventListener('abort', () => fs.writeFileSync(`${dir}/child-aborted`, ''));
        fs.writeFileSync(`${dir}/child-started`, '');
        for (let k = 0; k < 1000 && !fs.existsSync(`${dir}/release`); k++) await new Promise((r) => setTimeout(r, 20));
        fs.writeFileSync(`${dir}/child-done`, '');
        return 'child finished';
      });
      const c = child.remote(dir);
      return await ray.get(c);
    });
    const ref = parent.remote(dir);
    await waitForFile(path.join(dir, 'child-started'));
    ray.cancel(ref, { recursive: false });
    fs.writeFileSync(path.join(dir, 'release'), '');
    const err = await rejection(ray.get(ref, { timeoutMs: 20_000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    await waitForFile(path.join(dir, 'child-done'), 10_000);
    expect(fs.existsSync(path.join(dir, 'child-aborted'))).toBe(false);
  });

  it('force + recursive also kills the workers of the children', async () => {
    const dir = tempDir('cancel-force-recursive');
    const parent = ray.remote(async (dir: string) => {
      const ray = await import('rayts');
      const child = ray.remote(async (dir: string) => {
        (await import('node:fs')).writeFileSync(`${dir}/child-pid`, String(process.pid));
        await new Promise((r) => setTimeout(r, 30_000));
        return 'child finished';
      });
      return await ray.get(child.remote(dir));
    });
    const ref = parent.remote(dir);
    const childPid = Number(await waitForFile(path.join(dir, 'child-pid')));
    ray.cancel(ref, { force: true });
    const err = await rejection(ray.get(ref, { timeoutMs: 10_000 }));
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    await waitForExit(childPid, 10_000);
  });

  it('a task waiting for its arguments is cancelled at once; its argument is unaffected', async () => {
    const dir = tempDir('cancel-deps');
    const slow = ray.remote(async (dir: string) => {
      const fs = await import('node:fs');
      for (let k = 0; k < 1000 && !fs.existsSync(`${dir}/release`); k++) await new Promise((r) => setTimeout(r, 20));
      return 21;
    });
    const arg = slow.remote(dir);
    const dependent = ray.remote((x: number) => x * 2).remote(arg);
    ray.cancel(dependent);
    expect(await rejection(ray.get(dependent, { timeoutMs: 5000 }))).toBeInstanceOf(ray.TaskCancelledError);
    fs.writeFileSync(path.join(dir, 'release'), '');
    expect(await ray.get(arg, { timeoutMs: 20_000 })).toBe(21);
  });

  it('cancelling a finished task is a no-op', async () => {
    const ref = ray.remote(() => 'done').remote();
    expect(await ref).toBe('done');
    ray.cancel(ref);
    ray.cancel(ref, { force: true });
    expect(await ray.get(ref)).toBe('done');
  });

  it('the signal is absent outside a task', () => {
    expect(ray.getRuntimeContext().signal).toBeUndefined();
  });
});

describe('ray.cancel of actor calls', () => {
  const Worker = ray.remote(class Worker {
    async block(dir: string, tag: string): Promise<string> {
      const fs = await import('node:fs');
      const ray = await import('rayts');
      const { signal } = ray.getRuntimeContext();
      fs.writeFileSync(`${dir}/${tag}-started`, '');
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, 30_000);
        signal!.addEventListener('abort', () => {
          clearTimeout(t);
          fs.writeFileSync(`${dir}/${tag}-aborted`, '');
          reject(signal!.reason);
        });
      });
      return `${tag} finished`;
    }
    quick(): string {
      return 'quick';
    }
  });

  it('a queued call is cancelled, a running one gets its signal, the actor lives on', async () => {
    const dir = tempDir('cancel-actor');
    const w = Worker.options({ maxConcurrency: 1 }).remote();
    const running = w.block.remote(dir, 'a');
    const queued = w.quick.remote();
    await waitForFile(path.join(dir, 'a-started'));
    ray.cancel(queued);
    ray.cancel(running);
    expect(await rejection(ray.get(running, { timeoutMs: 10_000 }))).toBeInstanceOf(ray.TaskCancelledError);
    expect(await rejection(ray.get(queued, { timeoutMs: 10_000 }))).toBeInstanceOf(ray.TaskCancelledError);
    expect(fs.existsSync(path.join(dir, 'a-aborted'))).toBe(true);
    expect(await w.quick.remote()).toBe('quick');
    ray.kill(w);
  });

  it('concurrent calls each see their own signal', async () => {
    const dir = tempDir('cancel-actor-concurrent');
    const w = Worker.remote(); // async methods: runs calls concurrently
    const a = w.block.remote(dir, 'a');
    const b = w.block.remote(dir, 'b');
    await waitForFile(path.join(dir, 'a-started'));
    await waitForFile(path.join(dir, 'b-started'));
    ray.cancel(b);
    expect(await rejection(ray.get(b, { timeoutMs: 10_000 }))).toBeInstanceOf(ray.TaskCancelledError);
    expect(fs.existsSync(path.join(dir, 'b-aborted'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'a-aborted'))).toBe(false);
    ray.cancel(a);
    expect(await rejection(ray.get(a, { timeoutMs: 10_000 }))).toBeInstanceOf(ray.TaskCancelledError);
    ray.kill(w);
  });

  it('force on an actor call is a TypeError', async () => {
    const dir = tempDir('cancel-actor-force');
    const w = Worker.options({ maxConcurrency: 1 }).remote();
    const running = w.block.remote(dir, 'f');
    await waitForFile(path.join(dir, 'f-started'));
    expect(() => ray.cancel(running, { force: true })).toThrow(TypeError);
    expect(() => ray.cancel(running, { force: true })).toThrow(/actor/);
    ray.cancel(running);
    expect(await rejection(ray.get(running, { timeoutMs: 10_000 }))).toBeInstanceOf(ray.TaskCancelledError);
    ray.kill(w);
  });
});
