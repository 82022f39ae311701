// Error paths: remote exceptions, unserializable arguments, captured
// variables, invalid options, infeasible resources, cancellation, and a
// put larger than the store. None of these may hang or lose the runtime.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { thrown } from '../support/errors.js';

const STORE = 256 * 1024 * 1024;

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: STORE }));
afterAll(() => ray.shutdown());

describe('a task that throws', () => {
  it('rejects get with RayTaskError carrying the remote stack and cause', async () => {
    const boom = ray.remote(function explodeInWorker(x: number) {
      if (x > 0) throw new RangeError(`value ${x} is too large`);
      return x;
    });
    const err = await ray.get(boom.remote(5)).catch((e: unknown) => e) as ray.RayTaskError;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('value 5 is too large');
    expect(err.message).toContain('RangeError');
    // the remote stack names the function that threw
    expect(err.message).toContain('explodeInWorker');
    expect(err.cause).toBeDefined();
    expect(err.cause.name).toBe('RangeError');
    expect(err.cause.message).toBe('value 5 is too large');
    expect(err.cause.stack).toContain('explodeInWorker');
  });

  it('await ref rejects the same way; the runtime keeps working afterwards', async () => {
    const f = ray.remote(async () => {
      await Promise.resolve();
      throw new Error('async failure');
    });
    await expect(f.remote()).rejects.toBeInstanceOf(ray.RayTaskError);
    await expect(f.remote()).rejects.toThrow(/async failure/);
    expect(await ray.remote((x: number) => x * 2).remote(21)).toBe(42);
  });

  it('a thrown non-Error value still gives RayTaskError', async () => {
    const f = ray.remote(() => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the point of the test
      throw 'just a string';
    });
    const err = await ray.get(f.remote()).catch((e: unknown) => e) as ray.RayTaskError;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err.message).toContain('just a string');
  });

  it('an error in one of many gets: get of the list rejects', async () => {
    const f = ray.remote((x: number) => {
      if (x === 3) throw new Error('three');
      return x;
    });
    const refs = [1, 2, 3, 4].map((x) => f.remote(x));
    await expect(ray.get(refs)).rejects.toBeInstanceOf(ray.RayTaskError);
    expect(await refs[3]).toBe(4);
  });

  it('a task depending on a failed task fails with the original error', async () => {
    const bad = ray.remote(() => {
      throw new Error('upstream broke');
    });
    const plus = ray.remote((x: number) => x + 1);
    const err = await ray.get(plus.remote(bad.remote() as unknown as number)).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err.message).toContain('upstream broke');
  });
});

describe('unserializable arguments fail at .remote()', () => {
  const id = ray.remote((x: unknown) => x);

  it('a function argument: TypeError naming argument 1', () => {
    const e = thrown(() => id.remote((() => 1) as unknown));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/argument 1/);
    expect(e.message).toMatch(/function/i);
  });

  it('a symbol argument: TypeError naming argument 1', () => {
    const e = thrown(() => id.remote(Symbol('s') as unknown));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/argument 1/);
    expect(e.message).toMatch(/symbol/i);
  });

  it('names the argument position and the path inside it', () => {
    const two = ray.remote((a: unknown, b: unknown) => [a, b]);
    const e = thrown(() => two.remote(1, { deep: { list: [0, () => 2] } }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/argument 2/);
    expect(e.message).toMatch(/deep/);
    expect(e.message).toMatch(/list/);
  });

  it('a class instance with private state', () => {
    class Secret {
      #hidden = 1;
      get v() { return this.#hidden; }
    }
    const e = thrown(() => id.remote(new Secret() as unknown));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/argument 1/);
  });

  it('put of an unserializable value throws TypeError', () => {
    const e = thrown(() => ray.put({ f: () => 1 }));
    expect(e).toBeInstanceOf(TypeError);
  });

  it('nothing was submitted: the runtime still works', async () => {
    expect(await id.remote('fine')).toBe('fine');
  });
});

describe('remote functions must be self-contained', () => {
  it('a captured variable is a TypeError naming it and saying self-contained', () => {
    const multiplier = 3;
    const e = thrown(() => ray.remote((x: number) => x * multiplier));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toContain('multiplier');
    expect(e.message).toContain('self-contained');
  });

  it('a captured function is named too', () => {
    function helperOutside(v: number) { return v + 1; }
    const e = thrown(() => ray.remote((x: number) => helperOutside(x)));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toContain('helperOutside');
    expect(e.message).toContain('self-contained');
  });

  it('globals, locals and parameters are fine', async () => {
    const f = ray.remote((x: number) => {
      const local = Math.max(x, 1);
      return JSON.stringify({ local, isArr: Array.isArray([]), t: typeof setTimeout });
    });
    expect(JSON.parse(await f.remote(5))).toEqual({ local: 5, isArr: true, t: 'function' });
  });
});

describe('invalid options', () => {
  const f = ray.remote((x: number) => x);

  it('numCpus: -1 is a RangeError naming numCpus', () => {
    const e1 = thrown(() => f.options({ numCpus: -1 }));
    expect(e1).toBeInstanceOf(RangeError);
    expect(e1.message).toContain('numCpus');
    const e2 = thrown(() => ray.remote({ numCpus: -1 }, (x: number) => x));
    expect(e2).toBeInstanceOf(RangeError);
    expect(e2.message).toContain('numCpus');
  });

  it("unknown option 'numCPUs' is a TypeError naming it", () => {
    const e = thrown(() => f.options({ numCPUs: 1 } as unknown as ray.TaskOptions));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toContain('numCPUs');
    const e2 = thrown(() => ray.remote({ numCPUs: 1 } as unknown as ray.TaskOptions, (x: number) => x));
    expect(e2).toBeInstanceOf(TypeError);
    expect(e2.message).toContain('numCPUs');
  });

  it('numReturns: -1 is a RangeError naming numReturns (0 is allowed: a task run for its side effects)', () => {
    expect(() => f.options({ numReturns: 0 })).not.toThrow();
    const e = thrown(() => f.options({ numReturns: -1 }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toContain('numReturns');
  });

  it('wrong types: numCpus as a string is a TypeError', () => {
    const e = thrown(() => f.options({ numCpus: '2' } as unknown as ray.TaskOptions));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toContain('numCpus');
  });

  it('get/wait options are validated', async () => {
    const ref = ray.put(1);
    await expect(ray.get(ref, { timeoutMs: -5 })).rejects.toBeInstanceOf(RangeError);
    await expect(ray.get(ref, { timeoutMs: -5 })).rejects.toThrow(/timeoutMs/);
    await expect(ray.wait([ref], { numReturns: 0 })).rejects.toThrow(/numReturns/);
    await expect(ray.wait([ref], { numReturns: 2 })).rejects.toBeInstanceOf(RangeError);
  });

  it('ray.remote of a non-function is a TypeError', () => {
    expect(thrown(() => ray.remote(42 as unknown as () => void))).toBeInstanceOf(TypeError);
  });

  it('ray.get of a non-ref is a TypeError', async () => {
    await expect(ray.get(42 as unknown as ray.ObjectRef<number>)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('infeasible resource requests reject instead of hanging', () => {
  it('numCpus: 64 on a 2-CPU cluster', async () => {
    const f = ray.remote((x: number) => x);
    const t0 = performance.now();
    const err = await ray.get(f.options({ numCpus: 64 }).remote(1), { timeoutMs: 10_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect(err.message).toMatch(/CPU/);
    expect(err.message).toMatch(/64/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('a custom resource no node has: resources { unicorn: 1 }', async () => {
    const f = ray.remote({ resources: { unicorn: 1 } }, () => 'never');
    const err = await ray.get(f.remote(), { timeoutMs: 10_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect(err.message).toContain('unicorn');
  });

  it('an actor with numCpus: 64 on a 2-CPU cluster: its calls reject at once, saying why', async () => {
    const A = ray.remote({ numCpus: 64 }, class A { ping(): number { return 1; } });
    const a = A.remote();
    const t0 = performance.now();
    const err = await ray.get(a.ping.remote(), { timeoutMs: 10_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.ActorDiedError);
    expect(err.message).toMatch(/cannot be placed/);
    expect(err.message).toMatch(/CPU/);
    expect(err.message).toMatch(/64/);
    expect(performance.now() - t0).toBeLessThan(5000);
    // Later calls fail the same way.
    await expect(a.ping.remote()).rejects.toThrow(/cannot be placed/);
  });

  it('the cluster keeps working after infeasible requests', async () => {
    expect(await ray.remote(() => 'still fine').remote()).toBe('still fine');
  });
});

describe('cancel', () => {
  it('cancelling a queued task rejects get with TaskCancelledError', async () => {
    // Fill both CPUs with long tasks, so the next one waits in the queue.
    const block = ray.remote(async (ms: number) => {
      await new Promise((r) => setTimeout(r, ms));
      return 'blocker';
    });
    const blockers = [block.remote(2000), block.remote(2000)];
    const queued = ray.remote(() => 'ran').remote();
    ray.cancel(queued);
    const err = await ray.get(queued, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.TaskCancelledError);
    expect(err).toBeInstanceOf(ray.RayError);
    // The blockers are unaffected.
    expect(await ray.get(blockers)).toEqual(['blocker', 'blocker']);
  });

  it('force-cancelling a running task rejects its get', async () => {
    const spin = ray.remote(async () => {
      await new Promise((r) => setTimeout(r, 30_000));
      return 'finished';
    });
    const ref = spin.remote();
    // Make sure it started: wait briefly (it will not be ready).
    const [ready] = await ray.wait([ref], { timeoutMs: 300 });
    expect(ready).toEqual([]);
    ray.cancel(ref, { force: true });
    const err = await ray.get(ref, { timeoutMs: 10_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect(err instanceof ray.TaskCancelledError || err instanceof ray.WorkerCrashedError).toBe(true);
    expect(await ray.remote(() => 1).remote()).toBe(1);
  });

  it('cancel of a finished task is harmless', async () => {
    const ref = ray.remote(() => 'done').remote();
    expect(await ref).toBe('done');
    ray.cancel(ref);
    expect(await ref).toBe('done');
  });

  it('cancel validates its argument', () => {
    expect(thrown(() => ray.cancel(42 as unknown as ray.ObjectRef<unknown>))).toBeInstanceOf(TypeError);
  });
});

describe('object store full', () => {
  it('put of a value larger than the store is ObjectStoreFullError; the store still works', async () => {
    const tooBig = new Uint8Array(STORE + 16 * 1024 * 1024);
    let err: unknown;
    try {
      const ref = ray.put(tooBig);
      // if put is lazy about it, get must surface it
      await ray.get(ref, { timeoutMs: 10_000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ray.ObjectStoreFullError);
    expect(err).toBeInstanceOf(ray.RayError);
    const ok = ray.put(new Uint8Array(8 * 1024 * 1024).fill(3));
    const got = await ok;
    expect(got[8 * 1024 * 1024 - 1]).toBe(3);
  });

  it('a task returning a value larger than the store fails with ObjectStoreFullError', async () => {
    const f = ray.remote((n: number) => new Uint8Array(n));
    const err = await ray.get(f.remote(STORE + 16 * 1024 * 1024), { timeoutMs: 20_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect(err instanceof ray.ObjectStoreFullError || /store/i.test(err.message)).toBe(true);
  });
});
