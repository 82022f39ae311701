// Where the Node form differs from Ray on purpose (README, "Where rayts
// differs from Ray"): each case names the Ray test whose behaviour rayts
// changes, and checks the Node behaviour instead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { rejection, thrown } from '../support/errors.js';

describe('no auto-init', () => {
  // Ray: test_errors_before_initializing_ray (python/ray/tests, with auto-init
  // off: "Ray has not been started yet"); Ray's default starts a cluster on
  // first use instead, rayts never does.
  it('the API before init() is a RaySystemError that says to call ray.init() first', async () => {
    expect(ray.isInitialized()).toBe(false);
    const f = ray.remote(() => 1);
    const A = ray.remote(class A { m(): number { return 1; } });
    const sync: [string, () => unknown][] = [
      ['ray.put()', () => ray.put(1)],
      ['.remote()', () => f.remote()],
      ['A.remote()', () => A.remote()],
      ['ray.getRuntimeContext()', () => ray.getRuntimeContext()],
    ];
    for (const [what, call] of sync) {
      const e = thrown(call);
      expect(e, what).toBeInstanceOf(ray.RaySystemError);
      expect(e.message).toMatch(/not initialized: call 'await ray\.init\(\)' before/);
    }
    const calls: (() => Promise<unknown>)[] = [() => ray.get([]), () => ray.wait([]), () => ray.getActor('x'), () => ray.nodes()];
    for (const call of calls) {
      const e = await rejection(Promise.resolve().then(call));
      expect(e).toBeInstanceOf(ray.RaySystemError);
      expect(e.message).toMatch(/not initialized: call 'await ray\.init\(\)' before/);
    }
    expect(ray.isInitialized()).toBe(false);  // nothing was started behind the caller's back
  });
});

describe('with a cluster', () => {
  beforeAll(() => ray.init({ numCpus: 2 }));
  afterAll(() => ray.shutdown());

  // Ray: python/ray/tests/test_reference_counting.py::test_return_object_ref
  // (in Ray a task returning an ObjectRef returns the ref itself).
  it('a task returning an ObjectRef yields its value; returning [ref] passes the ref itself', async () => {
    const direct = ray.remote(async () => {
      const r = await import('rayts');
      return r.remote(() => 42).remote();  // a ref is PromiseLike: the task's result is its value
    });
    expect(await direct.remote()).toBe(42);
    const wrapped = ray.remote(async () => {
      const r = await import('rayts');
      return [r.remote(() => 42).remote()];
    });
    const [inner] = await wrapped.remote();
    expect(inner).toBeInstanceOf(ray.ObjectRef);
    expect(await ray.get(inner!)).toBe(42);
  });

  // Ray: python/ray/tests/test_basic.py::test_submit_api (an infeasible task
  // stays pending: ray.wait(timeout=0.05) returns it as not ready).
  it('an infeasible task fails at once, naming what no node has', async () => {
    const f = ray.remote({ resources: { NonexistentCustom: 1 } }, () => 1);
    const t0 = Date.now();
    const e = await rejection(ray.get(f.remote(), { timeoutMs: 10_000 }));
    expect(e).toBeInstanceOf(ray.RaySystemError);
    expect(e.message).toMatch(/NonexistentCustom/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
