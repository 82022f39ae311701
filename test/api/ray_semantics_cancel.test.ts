// ray.cancel without force, as Ray's test_cancel.py expects it: a task
// blocked in ray.get / ray.wait (or awaiting a ref) sees that wait reject
// with TaskCancelledError at once, so it ends and its ref settles; tasks
// waiting for it fail in turn; recursive cancel reaches the children and
// gives their CPUs back; cancelling a ref owned by another process (passed
// in) reaches its owner. Each case names the Ray test it follows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import * as path from 'node:path';
import { rejection } from '../support/errors.js';
import { tempDir } from '../support/fs.js';
import { eventually, waitForFile } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 64 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

/** Ray's SignalActor: wait() settles once send() was called. */
const Signal = ray.remote(class Signal {
  done = false;
  wakers: Array<() => void> = [];
  async wait() {
    if (!this.done) await new Promise<void>((r) => this.wakers.push(r));
    return true;
  }
  send() {
    this.done = true;
    for (const w of this.wakers) w();
    this.wakers = [];
  }
});

/**
 * Ray's wait_for: blocks in ray.get on the ref inside its argument. With
 * `started`, it first writes that file, so a test can cancel it once it runs.
 */
const waitFor = ray.remote(async (t: [ray.ObjectRef<unknown>], started?: string) => {
  const ray = await import('rayts');
  if (started !== undefined) (await import('node:fs')).writeFileSync(started, '');
  return ray.get(t[0]);
});

const CANCEL_BOUND_MS = 5_000;

describe('cancel (not forced) of a task blocked in a wait', () => {
  // Ray: python/ray/tests/test_cancel.py::test_cancel_chain (use_force=False).
  it('a task blocked in ray.get ends with TaskCancelledError at once; the tasks waiting for it fail too', async () => {
    const dir = tempDir('cancel-chain');
    const s = Signal.remote();
    const obj1 = waitFor.remote([s.wait.remote()], path.join(dir, 'obj1'));
    const obj2 = waitFor.remote([obj1]);
    const obj3 = waitFor.remote([obj2]);
    await waitForFile(path.join(dir, 'obj1')); // running, blocked in its ray.get
    expect((await ray.wait([obj1], { timeoutMs: 100 }))[0]).toHaveLength(0);
    const t0 = Date.now();
    ray.cancel(obj1);
    expect(await rejection(ray.get(obj1, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.TaskCancelledError);
    expect(Date.now() - t0).toBeLessThan(CANCEL_BOUND_MS);
    // Downstream: each fails because its ray.get of the cancelled one threw.
    for (const r of [obj2, obj3]) {
      const err = await rejection(ray.get(r, { timeoutMs: CANCEL_BOUND_MS }));
      expect(err).toBeInstanceOf(ray.RayError);
      expect(String((err as Error).message)).toMatch(/cancelled/);
    }
    // Cancelling the middle of a chain leaves the head running.
    const s2 = Signal.remote();
    const head = waitFor.remote([s2.wait.remote()]);
    const mid = waitFor.remote([head], path.join(dir, 'mid'));
    const tail = waitFor.remote([mid]);
    await waitForFile(path.join(dir, 'mid'));
    expect((await ray.wait([mid], { timeoutMs: 100 }))[0]).toHaveLength(0);
    ray.cancel(mid);
    expect(await rejection(ray.get(mid, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.TaskCancelledError);
    expect(await rejection(ray.get(tail, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.RayError);
    expect(await rejection(ray.get(head, { timeoutMs: 100 }))).toBeInstanceOf(ray.GetTimeoutError);
    s2.send.remote();
    expect(await ray.get(head, { timeoutMs: 10_000 })).toBe(true);
    ray.kill(s);
    ray.kill(s2);
  });

  it('ray.wait and a plain await of a ref reject with TaskCancelledError too', async () => {
    const dir = tempDir('cancel-wait');
    const s = Signal.remote();
    const inWait = ray.remote(async (t: [ray.ObjectRef<unknown>], started: string) => {
      const ray = await import('rayts');
      (await import('node:fs')).writeFileSync(started, '');
      await ray.wait(t, { numReturns: 1 });
      return 'waited';
    }).remote([s.wait.remote()], path.join(dir, 'wait'));
    const inAwait = ray.remote(async (t: [ray.ObjectRef<unknown>], started: string) => {
      (await import('node:fs')).writeFileSync(started, '');
      try {
        await t[0];
      } catch (e) {
        return `caught ${(e as Error).name}`; // the task may catch it and end as it likes
      }
      return 'awaited';
    }).remote([s.wait.remote()], path.join(dir, 'await'));
    await waitForFile(path.join(dir, 'wait'));
    await waitForFile(path.join(dir, 'await'));
    expect((await ray.wait([inWait, inAwait], { numReturns: 2, timeoutMs: 200 }))[0]).toHaveLength(0);
    ray.cancel(inWait);
    ray.cancel(inAwait);
    expect(await rejection(ray.get(inWait, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.TaskCancelledError);
    // A cancelled task's result is discarded even when it returns normally (as in Ray).
    expect(await rejection(ray.get(inAwait, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.TaskCancelledError);
    ray.kill(s);
  });

  // Ray: python/ray/tests/test_cancel.py::test_recursive_cancel (use_force=False): the children
  // are cancelled too; their CPUs come back.
  it('recursive cancel reaches the children blocked in their own waits and frees the CPUs they held', async () => {
    const dir = tempDir('cancel-recursive');
    const s = Signal.remote();
    const parent = ray.remote(async (t: [ray.ObjectRef<unknown>], dir: string) => {
      const ray = await import('rayts');
      const child = ray.remote(async (t: [ray.ObjectRef<unknown>], started: string) => {
        const ray = await import('rayts');
        (await import('node:fs')).writeFileSync(started, '');
        return ray.get(t[0]);
      });
      // Two children blocked on the signal, one queued behind them (2 CPUs).
      const kids = [child.remote(t, `${dir}/kid0`), child.remote(t, `${dir}/kid1`), child.remote(t, `${dir}/kid2`)];
      return ray.get(kids);
    }).remote([s.wait.remote()], dir);
    await waitForFile(path.join(dir, 'kid0'));
    await waitForFile(path.join(dir, 'kid1'));
    expect((await ray.wait([parent], { timeoutMs: 100 }))[0]).toHaveLength(0);
    ray.cancel(parent, { recursive: true });
    expect(await rejection(ray.get(parent, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.TaskCancelledError);
    const total = (await ray.clusterResources())['CPU'];
    expect(await eventually(async () => (await ray.availableResources())['CPU'] === total, CANCEL_BOUND_MS)).toBe(true);
    // The CPUs are usable: two tasks run at once right away.
    const both = ray.remote(async () => process.pid);
    expect(await ray.get([both.remote(), both.remote()], { timeoutMs: 10_000 })).toHaveLength(2);
    ray.kill(s);
  });
});

describe('cancel of a ref owned by another process', () => {
  // Ray: python/ray/tests/test_cancel.py::test_remote_cancel (use_force=False).
  it('the request reaches the owner, which cancels its task', async () => {
    const s = Signal.remote();
    const remoteWait = ray.remote(async (sg: [ray.ObjectRef<unknown>], started: string) => {
      const ray = await import('rayts');
      const waitFor = ray.remote(async (y: [ray.ObjectRef<unknown>], started: string) => {
        const ray = await import('rayts');
        (await import('node:fs')).writeFileSync(started, '');
        return ray.get(y[0]);
      });
      return [waitFor.remote([sg[0]], started)]; // in an array: the ref itself, owned by this worker
    });
    const dir = tempDir('cancel-remote');
    const [inner] = await ray.get(remoteWait.remote([s.wait.remote()], path.join(dir, 'inner')));
    await waitForFile(path.join(dir, 'inner'));
    expect(inner).toBeInstanceOf(ray.ObjectRef);
    expect(await rejection(ray.get(inner!, { timeoutMs: 500 }))).toBeInstanceOf(ray.GetTimeoutError);
    ray.cancel(inner!);
    expect(await rejection(ray.get(inner!, { timeoutMs: CANCEL_BOUND_MS }))).toBeInstanceOf(ray.TaskCancelledError);
    ray.kill(s);
  });
});
