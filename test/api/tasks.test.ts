// Tasks: remote functions, arguments, multiple and streaming returns, nested
// tasks, fan-out, options, source shipping of TypeScript, runtime context.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../support/fs.js';
import { eventually, waitForFile } from '../support/wait.js';

const require = createRequire(import.meta.url);

/** Evaluates CommonJS output of a build tool and returns module.exports. */
function loadCjs<T>(code: string): T {
  const module = { exports: {} as unknown };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- runs a bundler's output, like require would
  new Function('module', 'exports', code)(module, module.exports);
  return module.exports as T;
}

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 256 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

describe('remote functions', () => {
  it('.remote returns an ObjectRef at once; await ref and ray.get give the value', async () => {
    const add = ray.remote((a: number, b: number) => a + b);
    const ref = add.remote(1, 2);
    expect(ref).toBeInstanceOf(ray.ObjectRef);
    expect(typeof ref.id).toBe('string');
    expect(ref.id).toMatch(/^[0-9a-f]+$/);
    expect(await ref).toBe(3);
    expect(await ray.get(ref)).toBe(3);
  });

  it('ray.get of a list keeps order', async () => {
    const sq = ray.remote((x: number) => x * x);
    const refs = [5, 1, 4, 2, 3].map((x) => sq.remote(x));
    expect(await ray.get(refs)).toEqual([25, 1, 16, 4, 9]);
  });

  it('arguments by value of several types', async () => {
    const echo = ray.remote((...xs: unknown[]) => xs);
    const args = [1, 'two', null, true, [1, 2, { a: 3 }], { nested: { deep: [1n] } }, undefined];
    expect(await echo.remote(...args)).toEqual(args);
  });

  it('async task functions are awaited', async () => {
    const f = ray.remote(async (x: number) => {
      await new Promise((r) => setTimeout(r, 5));
      return x * 2;
    });
    expect(await f.remote(21)).toBe(42);
  });

  it('a top-level ObjectRef argument arrives as its value', async () => {
    const kind = ray.remote(async (x: unknown) => {
      const r = await import('rayts');
      return { isRef: x instanceof r.ObjectRef, value: x };
    });
    const put = ray.put({ hello: 'world' });
    expect(await kind.remote(put)).toEqual({ isRef: false, value: { hello: 'world' } });
    const fromTask = ray.remote(() => 41).remote();
    expect(await kind.remote(fromTask)).toEqual({ isRef: false, value: 41 });
  });

  it('refs nested in arrays and objects stay ObjectRef instances inside the task', async () => {
    const inspectArgs = ray.remote(async (arr: unknown[], obj: { inner: unknown }) => {
      const r = await import('rayts');
      const a0 = arr[0];
      const o = obj.inner;
      return {
        arrIsRef: a0 instanceof r.ObjectRef,
        objIsRef: o instanceof r.ObjectRef,
        arrValue: await r.get(a0 as never),
        objValue: await (o as PromiseLike<unknown>),
      };
    });
    const a = ray.put(10);
    const b = ray.remote(() => 'from-task').remote();
    expect(await inspectArgs.remote([a], { inner: b })).toEqual({
      arrIsRef: true, objIsRef: true, arrValue: 10, objValue: 'from-task',
    });
  });

  it('a task can return a ref nested in an object; the driver gets an ObjectRef it can resolve', async () => {
    const f = ray.remote(async () => {
      const r = await import('rayts');
      return { ref: r.put('inside') };
    });
    const out = await f.remote();
    expect(out.ref).toBeInstanceOf(ray.ObjectRef);
    expect(await ray.get(out.ref)).toBe('inside');
  });
});

describe('worker processes', () => {
  // Ray: python/ray/tests/test_basic.py::test_release_resources_race (1,000 tasks, len(pids) <= 2).
  it('1,000 CPU tasks on 2 CPUs run in at most 2 worker processes (Ray: one per CPU)', async () => {
    const f = ray.remote((ms: number) => { const end = Date.now() + ms; while (Date.now() < end) { /* busy */ } return process.pid; });
    for (const ms of [0, 2]) {
      const pids = await ray.get(Array.from({ length: 1000 }, () => f.remote(ms)));
      expect(new Set(pids).size).toBeLessThanOrEqual(2);
    }
  });
});

describe('numReturns', () => {
  it('numReturns: 2 gives an array of two refs with each value', async () => {
    const split = ray.remote((a: number, b: string) => [a, b]).options({ numReturns: 2 });
    const refs = split.remote(7, 'x');
    expect(Array.isArray(refs)).toBe(true);
    expect(refs).toHaveLength(2);
    expect(refs[0]).toBeInstanceOf(ray.ObjectRef);
    expect(refs[1]).toBeInstanceOf(ray.ObjectRef);
    expect(refs[0]!.id).not.toBe(refs[1]!.id);
    expect(await refs[0]).toBe(7);
    expect(await refs[1]).toBe('x');
    expect(await ray.get(refs)).toEqual([7, 'x']);
  });

  it('numReturns given in ray.remote(options, fn)', async () => {
    const three = ray.remote({ numReturns: 3 }, () => ['a', 'b', 'c']);
    const refs = three.remote();
    expect(refs).toHaveLength(3);
    expect(await ray.get(refs)).toEqual(['a', 'b', 'c']);
  });

  it("numReturns: 'streaming' with an async generator yields 5 refs in order", async () => {
    const gen = ray.remote(async function* (n: number) {
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 1));
        yield i * 10;
      }
    }).options({ numReturns: 'streaming' });
    const it = gen.remote(5);
    const refs: ray.ObjectRef<number>[] = [];
    for await (const ref of it) {
      expect(ref).toBeInstanceOf(ray.ObjectRef);
      refs.push(ref);
    }
    expect(refs).toHaveLength(5);
    expect(await ray.get(refs)).toEqual([0, 10, 20, 30, 40]);
  });

  it("numReturns: 'streaming' with a sync generator", async () => {
    const gen = ray.remote({ numReturns: 'streaming' }, function* () {
      yield 'a';
      yield 'b';
      yield 'c';
    });
    const refs: ray.ObjectRef<string>[] = [];
    for await (const ref of gen.remote()) {
      expect(ref).toBeInstanceOf(ray.ObjectRef);
      refs.push(ref);
    }
    expect(await ray.get(refs)).toEqual(['a', 'b', 'c']);
  });
});

describe('nested tasks', () => {
  it('a task submits a task and returns its result', async () => {
    const outer = ray.remote(async () => {
      const r = await import('rayts');
      const f = r.remote((x: number) => x + 1);
      return await f.remote(1);
    });
    expect(await outer.remote()).toBe(2);
  });

  it('tasks nested three levels deep', async () => {
    const level1 = ray.remote(async (x: number) => {
      const r = await import('rayts');
      const level2 = r.remote(async (y: number) => {
        const r2 = await import('rayts');
        const level3 = r2.remote((z: number) => z * 3);
        return (await level3.remote(y + 1)) + 100;
      });
      return (await level2.remote(x * 2)) + 1000;
    });
    // x=4: level2(8): level3(9)=27, +100 = 127; +1000 = 1127
    expect(await level1.remote(4)).toBe(1127);
  });

  it('a nested task can put and get objects in the worker', async () => {
    const f = ray.remote(async () => {
      const r = await import('rayts');
      const ref = r.put([1, 2, 3]);
      const sum = r.remote((a: number[]) => a.reduce((s, v) => s + v, 0));
      return [await r.get(ref), await sum.remote(ref)];
    });
    expect(await f.remote()).toEqual([[1, 2, 3], 6]);
  });
});

// The same checks with sources vitest does not transform (vitest rewrites
// `import('rayts')` in test files into `__vite_ssr_dynamic_import__("/dist/esm/index.js")`),
// i.e. what a user's plain .mjs program ships.
const plainJs = <F,>(src: string): F => (0, eval)(`(${src})`) as F;

describe('nested tasks and refs, plain JavaScript source', () => {
  it('a task submits a task and returns its result', async () => {
    const outer = ray.remote(plainJs<() => Promise<number>>(
      `async () => { const r = await import('rayts'); const f = r.remote((x) => x + 1); return await f.remote(1); }`));
    expect(await outer.remote()).toBe(2);
  });

  it('tasks nested three levels deep', async () => {
    const level1 = ray.remote(plainJs<(x: number) => Promise<number>>(`async (x) => {
      const r = await import('rayts');
      const level2 = r.remote(async (y) => {
        const r2 = await import('rayts');
        const level3 = r2.remote((z) => z * 3);
        return (await level3.remote(y + 1)) + 100;
      });
      return (await level2.remote(x * 2)) + 1000;
    }`));
    expect(await level1.remote(4)).toBe(1127);
  });

  it('top-level ref arrives as value; nested refs stay ObjectRef instances', async () => {
    const f = ray.remote(plainJs<(a: unknown, b: unknown[], c: { k: unknown }) => Promise<unknown>>(`async (a, b, c) => {
      const r = await import('rayts');
      return [a instanceof r.ObjectRef, a, b[0] instanceof r.ObjectRef, c.k instanceof r.ObjectRef, await r.get(b[0]), await r.get(c.k)];
    }`));
    const a = ray.put('A');
    const b = ray.put('B');
    const c = ray.remote(() => 'C').remote();
    expect(await f.remote(a, [b], { k: c })).toEqual([false, 'A', true, true, 'B', 'C']);
  });

  it('getRuntimeContext inside a task: same job as the driver, other worker, taskId set', async () => {
    const driver = ray.getRuntimeContext();
    const f = ray.remote(plainJs<() => Promise<ray.RuntimeContext>>(`async () => (await import('rayts')).getRuntimeContext()`));
    const c = await f.remote();
    expect(c.workerId).not.toBe(driver.workerId);
    expect(c.nodeId).toBe(driver.nodeId);
    expect(typeof c.taskId).toBe('string');
    expect(c.jobId).toBe(driver.jobId);
  });
});

describe('scale and options', () => {
  it('10,000-task fan-out: every result correct', async () => {
    const sq = ray.remote((x: number) => x * x);
    const n = 10_000;
    const refs = Array.from({ length: n }, (_, i) => sq.remote(i));
    const out = await ray.get(refs);
    expect(out).toHaveLength(n);
    let bad = 0;
    for (let i = 0; i < n; i++) if (out[i] !== i * i) bad++;
    expect(bad).toBe(0);
  }, 120_000);

  it('options({ numCpus: 0.5 }) runs and leaves the original function unchanged', async () => {
    const f = ray.remote((x: number) => x + 0.5);
    const half = f.options({ numCpus: 0.5 });
    expect(half).not.toBe(f);
    const refs = Array.from({ length: 8 }, (_, i) => half.remote(i));
    expect(await ray.get(refs)).toEqual([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]);
    expect(await f.remote(1)).toBe(1.5);
  });

  it('ray.remote({ numCpus: 0.5, maxRetries: 2 }, fn) runs', async () => {
    const f = ray.remote({ numCpus: 0.5, maxRetries: 2 }, () => 'ok');
    expect(await f.remote()).toBe('ok');
  });

  it('numCpus: 0 tasks run', async () => {
    const f = ray.remote({ numCpus: 0 }, () => 'zero');
    expect(await f.remote()).toBe('zero');
  });
});

describe('source shipping of TypeScript functions', () => {
  interface Point { x: number; y: number }
  type Op = 'add' | 'mul';

  it('type annotations, interfaces, generics and casts', async () => {
    const f = ray.remote((p: Point, op: Op): number => {
      const vals: Array<number> = [p.x, p.y] as number[];
      const id = <T,>(v: T): T => v;
      return op === 'add' ? id(vals[0]!) + vals[1]! : vals[0]! * vals[1]!;
    });
    expect(await f.remote({ x: 3, y: 4 }, 'add')).toBe(7);
    expect(await f.remote({ x: 3, y: 4 }, 'mul')).toBe(12);
  });

  it('named inner functions (esbuild may inject __name)', async () => {
    const f = ray.remote((n: number): number[] => {
      function fib(k: number): number {
        return k < 2 ? k : fib(k - 1) + fib(k - 2);
      }
      const double = function doubler(v: number) { return v * 2; };
      class Acc { total = 0; add(v: number) { this.total += v; return this; } }
      const acc = new Acc();
      for (let i = 0; i < n; i++) acc.add(fib(i));
      return [fib(n), double(n), acc.total, fib.name.length > 0 ? 1 : 0];
    });
    // fib(10)=55; sum fib(0..9)=88
    expect(await f.remote(10)).toEqual([55, 20, 88, 1]);
  });

  it('a named function declaration as the task itself', async () => {
    function namedTask(a: number, b: number): number {
      const inner = (v: number) => v + 1;
      return inner(a) * b;
    }
    const f = ray.remote(namedTask);
    expect(await f.remote(2, 5)).toBe(15);
  });

  it('esbuild keepNames output (__name helper injected into the body)', async () => {
    const esbuild = require('esbuild') as typeof import('esbuild');
    const { code } = esbuild.transformSync(`
      const f = (n: number): number[] => {
        function fib(k: number): number { return k < 2 ? k : fib(k - 1) + fib(k - 2); }
        const double = (v: number) => v * 2;
        return [fib(n), double(n), fib.name === 'fib' ? 1 : 0];
      };
      module.exports = f;`, { loader: 'ts', keepNames: true, format: 'cjs' });
    expect(code).toContain('__name(');
    const f = loadCjs<(n: number) => number[]>(code);
    expect(await ray.remote(f).remote(10)).toEqual([55, 20, 1]);
  });

  it('tsc output for ES2015 (__awaiter helper injected into the body)', async () => {
    const ts = require('typescript') as typeof import('typescript');
    const { outputText } = ts.transpileModule(`
      module.exports = async (x: number): Promise<number> => { await null; return x * 3; };`,
      { compilerOptions: { target: ts.ScriptTarget.ES2015, module: ts.ModuleKind.CommonJS } });
    expect(outputText).toContain('__awaiter(');
    const f = loadCjs<(x: number) => Promise<number>>(outputText);
    expect(await ray.remote(f).remote(14)).toBe(42);
  });

  it('async TypeScript function with optional and default parameters', async () => {
    const f = ray.remote(async (a: number, b?: number, c: string = 'c'): Promise<string> => `${a}-${b ?? 'none'}-${c}`);
    expect(await f.remote(1)).toBe('1-none-c');
    expect(await f.remote(1, 2, 'z')).toBe('1-2-z');
  });
});

describe('runtime context and cluster info', () => {
  it('getRuntimeContext in the driver', () => {
    const ctx = ray.getRuntimeContext();
    expect(typeof ctx.jobId).toBe('string');
    expect(ctx.jobId.length).toBeGreaterThan(0);
    expect(typeof ctx.nodeId).toBe('string');
    expect(ctx.nodeId.length).toBeGreaterThan(0);
    expect(typeof ctx.workerId).toBe('string');
    expect(ctx.workerId.length).toBeGreaterThan(0);
    expect(ctx.taskId).toBeUndefined();
    expect(typeof ctx.namespace).toBe('string');
  });

  it('getRuntimeContext inside a task: other worker, same job and node, taskId set', async () => {
    const driver = ray.getRuntimeContext();
    const f = ray.remote(async () => {
      const r = await import('rayts');
      return r.getRuntimeContext();
    });
    const [c1, c2] = await ray.get([f.remote(), f.remote()]);
    for (const c of [c1!, c2!]) {
      expect(c.workerId).not.toBe(driver.workerId);
      expect(c.jobId).toBe(driver.jobId);
      expect(c.nodeId).toBe(driver.nodeId);
      expect(typeof c.taskId).toBe('string');
      expect(c.taskId!.length).toBeGreaterThan(0);
    }
    expect(c1!.taskId).not.toBe(c2!.taskId);
  });

  it('nodes() lists one alive node with CPU 2', async () => {
    const ns = await ray.nodes();
    expect(Array.isArray(ns)).toBe(true);
    expect(ns).toHaveLength(1);
    const n = ns[0]!;
    expect(n.alive).toBe(true);
    expect(n.nodeId).toBe(ray.getRuntimeContext().nodeId);
    expect(n.resources.CPU).toBe(2);
    expect(typeof n.address).toBe('string');
    expect(typeof n.startTimeMs).toBe('number');
    expect(n.startTimeMs).toBeGreaterThan(0);
  });

  it('clusterResources() and availableResources()', async () => {
    const total = await ray.clusterResources();
    expect(total.CPU).toBe(2);
    // Nothing running now: eventually all CPUs are available (leases are returned when idle).
    const deadline = Date.now() + 5000;
    let avail = await ray.availableResources();
    while (avail.CPU !== 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      avail = await ray.availableResources();
    }
    expect(avail.CPU).toBe(2);
  });

  it('availableResources() drops while a task holds a CPU', async () => {
    // The task holds its CPU from the moment it writes `started` until the
    // test writes `release` (bounded: 30 s), however long it took to start.
    const hold = ray.remote(async (dir: string) => {
      const fs = await import('node:fs');
      fs.writeFileSync(`${dir}/started`, '');
      for (let k = 0; k < 1500 && !fs.existsSync(`${dir}/release`); k++) await new Promise((r) => setTimeout(r, 20));
      return 'held';
    });
    const dir = tempDir('tasks-hold');
    const ref = hold.remote(dir);
    await waitForFile(path.join(dir, 'started'));
    let minCpu = Infinity;
    await eventually(async () => {
      minCpu = Math.min(minCpu, (await ray.availableResources()).CPU ?? 0);
      return minCpu <= 1;
    }, 10_000);
    fs.writeFileSync(path.join(dir, 'release'), '');
    expect(minCpu).toBeLessThanOrEqual(1);
    expect(await ref).toBe('held');
  });
});
