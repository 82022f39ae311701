// Actors (first slice): creation, ordered calls, state, errors, kill, crash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import * as ray from 'rayts';
import { obtainGc } from '../support/gc.js';
import { alive } from '../support/process.js';
import { tempDir } from '../support/fs.js';
import { eventually, waitForFile } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 64 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

const Counter = ray.remote(class Counter {
  n: number;
  constructor(start = 0) { this.n = start; }
  inc(by = 1): number { return (this.n += by); }
  async slowGet(): Promise<number> { await new Promise((r) => setTimeout(r, 5)); return this.n; }
  pid(): number { return process.pid; }
  exit(code: number): void { process.exit(code); }
});

describe('actors', () => {
  it('keeps state across calls and returns typed results', async () => {
    const c = Counter.remote(5);
    expect(await c.inc.remote(2)).toBe(7);
    expect(await c.inc.remote()).toBe(8);
    expect(await c.slowGet.remote()).toBe(8);
    expect(c.actorId).toMatch(/^[0-9a-f]{32}$/);
    ray.kill(c);
  });

  it('runs 10,000 pipelined calls from one caller in submission order', async () => {
    const c = Counter.remote(0);
    const refs = Array.from({ length: 10_000 }, () => c.inc.remote(1));
    const vals = await ray.get(refs);
    expect(vals).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    ray.kill(c);
  });

  it('a call waiting for its argument holds the calls after it (submission order)', async () => {
    const c = Counter.remote(0);
    const late = ray.remote(async (v: number) => { await new Promise((r) => setTimeout(r, 300)); return v; });
    const a = c.inc.remote(late.remote(10)); // its argument is ready ~300 ms later
    const b = c.inc.remote(1); // ready at once, still runs second
    expect(await ray.get([a, b])).toEqual([10, 11]);
    ray.kill(c);
  });

  it('lives in its own worker process', async () => {
    const a = Counter.remote();
    const b = Counter.remote();
    const [pa, pb] = await ray.get([a.pid.remote(), b.pid.remote()]);
    expect(pa).not.toBe(process.pid);
    expect(pa).not.toBe(pb);
    ray.kill(a);
    ray.kill(b);
  });

  it('a method that does not exist throws at the call site, naming it', () => {
    const c = Counter.remote();
    expect(() => (c as unknown as Record<string, { remote(): unknown }>).nope!.remote()).toThrow(/no method 'nope'/);
    ray.kill(c);
  });

  it('a constructor that throws makes every call reject with ActorDiedError carrying that error', async () => {
    const Bad = ray.remote(class Bad {
      constructor() { throw new RangeError('bad start'); }
      m(): number { return 1; }
    });
    const b = Bad.remote();
    const err = await b.m.remote().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ray.ActorDiedError);
    expect((err as ray.ActorDiedError).cause?.name).toBe('RangeError');
    expect((err as ray.ActorDiedError).cause?.message).toBe('bad start');
    // later calls too
    await expect(b.m.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
  });

  it('ray.kill ends the actor process; later calls reject with ActorDiedError', async () => {
    const c = Counter.remote();
    const pid = await c.pid.remote();
    ray.kill(c, { noRestart: true });
    await expect(c.inc.remote()).rejects.toThrow(/killed by ray.kill/);
    expect(await eventually(() => !alive(pid), 5000)).toBe(true);
  });

  it('a crash (process.exit in a method) rejects that call and later ones with ActorDiedError', async () => {
    const c = Counter.remote();
    expect(await c.inc.remote()).toBe(1);
    await expect(c.exit.remote(3)).rejects.toBeInstanceOf(ray.ActorDiedError);
    await expect(c.inc.remote()).rejects.toThrow(/worker process exited with code 3/);
  });

  it('bad options throw naming the option', () => {
    expect(() => Counter.options({ maxConcurrency: 0 })).toThrow(/maxConcurrency/);
    expect(() => Counter.options({ numReturns: 'streaming' } as never)).toThrow(/numReturns/);
    expect(() => ray.kill({} as never)).toThrow(/ActorHandle/);
  });

  it('tasks keep running alongside actors', async () => {
    const actors = Array.from({ length: 4 }, () => Counter.remote());
    const f = ray.remote((x: number) => x * 2);
    expect(await f.remote(21)).toBe(42);
    for (const a of actors) ray.kill(a);
  });
});

describe('actor concurrency', () => {
  it('async methods overlap (default for async actors), measured with timestamps', async () => {
    const A = ray.remote(class A {
      async span(ms: number): Promise<[number, number]> {
        const start = Date.now();
        await new Promise((r) => setTimeout(r, ms));
        return [start, Date.now()];
      }
    });
    const a = A.remote();
    await a.span.remote(1);
    const spans = await ray.get([a.span.remote(300), a.span.remote(300), a.span.remote(300)]);
    // Every call started before any other ended: they ran at the same time.
    const firstEnd = Math.min(...spans.map((s) => s[1]));
    for (const [start] of spans) expect(start).toBeLessThan(firstEnd);
    ray.kill(a);
  });

  it('maxConcurrency: 1 keeps async calls one at a time', async () => {
    const A = ray.remote({ maxConcurrency: 1 }, class A {
      async span(ms: number): Promise<[number, number]> {
        const start = Date.now();
        await new Promise((r) => setTimeout(r, ms));
        return [start, Date.now()];
      }
    });
    const a = A.remote();
    const spans = await ray.get([a.span.remote(50), a.span.remote(50), a.span.remote(50)]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    ray.kill(a);
  });

  it('maxConcurrency: 2 runs at most two calls at once', async () => {
    const A = ray.remote({ maxConcurrency: 2 }, class A {
      running = 0;
      peak = 0;
      async work(): Promise<number> {
        this.running++;
        this.peak = Math.max(this.peak, this.running);
        await new Promise((r) => setTimeout(r, 30));
        this.running--;
        return this.peak;
      }
    });
    const a = A.remote();
    const peaks = await ray.get(Array.from({ length: 6 }, () => a.work.remote()));
    expect(Math.max(...peaks)).toBe(2);
    ray.kill(a);
  });
});

describe('actor handles and names', () => {
  const Box = ray.remote(class Box {
    n: number;
    constructor(n = 0) { this.n = n; }
    add(k: number): number { return (this.n += k); }
    get(): number { return this.n; }
  });

  it('a handle passed to a task is callable there', async () => {
    const b = Box.remote(0);
    const use = ray.remote(async (h: { add: { remote(k: number): PromiseLike<number> } }, times: number) => {
      let last = 0;
      for (let i = 0; i < times; i++) last = await h.add.remote(1);
      return last;
    });
    expect(await use.remote(b as never, 5)).toBe(5);
    expect(await b.get.remote()).toBe(5);
    ray.kill(b);
  });

  it('a handle passed to another actor is callable there', async () => {
    const b = Box.remote(0);
    const Caller = ray.remote(class Caller {
      h: { add: { remote(k: number): PromiseLike<number> } };
      constructor(h: { add: { remote(k: number): PromiseLike<number> } }) { this.h = h; }
      async bump(times: number): Promise<number> {
        let v = 0;
        for (let i = 0; i < times; i++) v = await this.h.add.remote(10);
        return v;
      }
    });
    const c = Caller.remote(b as never);
    expect(await c.bump.remote(3)).toBe(30);
    ray.kill(c);
    ray.kill(b);
  });

  it('names are unique per namespace; getIfExists and getActor return the same actor', async () => {
    const a = Box.options({ name: 'box', namespace: 'ns1' }).remote(100);
    expect(await a.add.remote(1)).toBe(101);
    expect(() => Box.options({ name: 'box', namespace: 'ns1' }).remote()).toThrow(/already exists in namespace 'ns1'/);
    const same = Box.options({ name: 'box', namespace: 'ns1', getIfExists: true }).remote();
    expect(await same.get.remote()).toBe(101);
    const found = await ray.getActor<{ add(k: number): number; get(): number }>('box', { namespace: 'ns1' });
    expect(await found.add.remote(1)).toBe(102);
    const other = Box.options({ name: 'box', namespace: 'ns2' }).remote(7);
    expect(await other.get.remote()).toBe(7);
    await expect(ray.getActor('missing', { namespace: 'ns1' })).rejects.toThrow(/no actor named 'missing'/);
    ray.kill(a);
    await expect(found.get.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
    // the name is free again once the actor is dead
    const again = Box.options({ name: 'box', namespace: 'ns1' }).remote(1);
    expect(await again.get.remote()).toBe(1);
    ray.kill(again);
    ray.kill(other);
  });
});

describe('actor limits and exit', () => {
  it('maxPendingCalls rejects calls past the limit with a clear error instead of queuing', async () => {
    const Slow = ray.remote({ maxPendingCalls: 2 }, class Slow {
      async wait(ms: number): Promise<number> { await new Promise((r) => setTimeout(r, ms)); return ms; }
    });
    const s = Slow.remote();
    const a = s.wait.remote(200);
    const b = s.wait.remote(200);
    expect(() => s.wait.remote(1)).toThrow(/maxPendingCalls \(2\)/);
    expect(await ray.get([a, b])).toEqual([200, 200]);
    expect(await s.wait.remote(1)).toBe(1); // room again
    expect(() => Slow.options({ maxPendingCalls: 0 })).toThrow(/maxPendingCalls/);
    ray.kill(s);
  });

  it('ray.exitActor() inside a method ends the actor; later calls reject with ActorDiedError', async () => {
    const E = ray.remote(class E {
      async stop(): Promise<void> { const r = await import('rayts'); r.exitActor(); }
      ping(): string { return 'pong'; }
    });
    const e = E.remote();
    expect(await e.ping.remote()).toBe('pong');
    await expect(e.stop.remote()).rejects.toThrow(/exitActor/);
    await expect(e.ping.remote()).rejects.toThrow(/exited \(ray.exitActor\(\)\)/);
    expect(() => ray.exitActor()).toThrow(/inside an actor method/);
  });

  // Ray: python/ray/tests/test_actor_failures.py::test_exit_actor_normal_actor_user_catch_err_should_still_exit.
  it('ray.exitActor() ends the actor even when the method catches its signal', async () => {
    const E = ray.remote(class E {
      async stop(): Promise<string> {
        const r = await import('rayts');
        try { r.exitActor(); } catch { /* swallowed by user code */ }
        return 'caught';
      }
      ping(): string { return 'pong'; }
    });
    const e = E.remote();
    expect(await e.ping.remote()).toBe('pong');
    await expect(e.stop.remote()).rejects.toThrow(/exitActor/);
    await expect(e.ping.remote()).rejects.toThrow(/exited \(ray.exitActor\(\)\)/);
  });

  // Ray: python/ray/tests/test_runtime_context.py::test_get_context_dict (actor_id in an actor, absent in a task).
  it('getRuntimeContext().actorId is the actor\'s id in its constructor and methods, absent in tasks', async () => {
    const A = ray.remote(class A {
      atStart: string | undefined;
      constructor() { this.atStart = undefined; }
      async init(): Promise<void> { const r = await import('rayts'); this.atStart = r.getRuntimeContext().actorId; }
      async id(): Promise<[string | undefined, string | undefined]> {
        const r = await import('rayts');
        return [r.getRuntimeContext().actorId, this.atStart];
      }
    });
    const a = A.remote();
    await a.init.remote();
    const [inMethod, inInit] = await a.id.remote();
    expect(inMethod).toBe(a.actorId);
    expect(inInit).toBe(a.actorId);
    const t = ray.remote(async () => (await import('rayts')).getRuntimeContext().actorId ?? null);
    expect(await t.remote()).toBeNull();
    expect(ray.getRuntimeContext().actorId).toBeUndefined();
    ray.kill(a);
  });
});

describe('actor restarts', () => {
  const R = ray.remote(class R {
    n = 0;
    inc(): number { return ++this.n; }
    pid(): number { return process.pid; }
    die(): void { process.exit(1); }
    async slowInc(ms: number): Promise<number> { await new Promise((r) => setTimeout(r, ms)); return ++this.n; }
    /** slowInc that first writes `marker`, so the caller knows the call is running. */
    async markedSlowInc(marker: string, ms: number): Promise<number> {
      (await import('node:fs')).writeFileSync(marker, String(process.pid));
      return this.slowInc(ms);
    }
  });

  it('maxRestarts: a crashed actor comes back in a new process with its constructor re-run; past the budget it is dead', async () => {
    const a = R.options({ maxRestarts: 1 }).remote();
    expect(await a.inc.remote()).toBe(1);
    const pid1 = await a.pid.remote();
    await expect(a.die.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
    expect(await a.inc.remote()).toBe(1); // fresh state: the constructor ran again
    expect(await a.pid.remote()).not.toBe(pid1);
    await expect(a.die.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
    await expect(a.inc.remote()).rejects.toThrow(/worker process exited with code 1/);
  });

  // Ray: python/ray/tests/test_actor_advanced.py::test_actor_init_fails (calls made while the
  // creation is cut off run once the restarted constructor succeeds).
  it('calls wait while the constructor makes its worker exit twice (maxRestarts 3), then run', async () => {
    const dir = tempDir('ctor-exits');
    const Flaky = ray.remote({ maxRestarts: 3 }, class Flaky {
      constructor(marker: string) {
        const fs = process.getBuiltinModule('node:fs');
        fs.appendFileSync(marker, 'x');
        if (fs.readFileSync(marker, 'utf8').length < 3) process.exit(1); // the first two incarnations die
      }
      hello(): string { return 'constructed on the third try'; }
    });
    const marker = path.join(dir, 'runs');
    const f = Flaky.remote(marker);
    expect(await ray.get(f.hello.remote(), { timeoutMs: 30_000 })).toBe('constructed on the third try');
    expect((await import('node:fs')).readFileSync(marker, 'utf8')).toBe('xxx');
    ray.kill(f);
  });

  // Ray: python/ray/tests/test_actor_failures.py::test_named_actor_max_task_retries (a call made
  // through another process's handle is retried after the actor is killed).
  it('maxTaskRetries holds for calls through a passed handle too: a task\'s call cut off by a SIGKILL is resent', async () => {
    const a = R.options({ maxRestarts: 1, maxTaskRetries: 1 }).remote();
    const pid = await a.pid.remote();
    const marker = path.join(tempDir('borrowed-retry'), 'running');
    // The call is made by a task, through the handle passed to it.
    const viaTask = ray.remote(async (h: { markedSlowInc: { remote(m: string, ms: number): PromiseLike<number> } }, m: string) =>
      h.markedSlowInc.remote(m, 500));
    const result = viaTask.remote(a as never, marker);
    await waitForFile(marker);
    process.kill(pid, 'SIGKILL');
    expect(await ray.get(result, { timeoutMs: 30_000 })).toBe(1); // resent to the restarted actor
    expect(await a.pid.remote()).not.toBe(pid);
    ray.kill(a);
  });

  it('maxTaskRetries: a call cut off by a crash runs again on the restarted actor', async () => {
    const a = R.options({ maxRestarts: 1, maxTaskRetries: 1 }).remote();
    const pid = await a.pid.remote();
    const marker = path.join(tempDir('actor-retry'), 'running');
    const call = a.markedSlowInc.remote(marker, 500);
    await waitForFile(marker); // the call is running on the actor
    process.kill(pid, 'SIGKILL');
    expect(await call).toBe(1); // retried on the new incarnation
    expect(await a.pid.remote()).not.toBe(pid);
    ray.kill(a);
  });

  it('a restart re-runs the constructor with the same by-ref arguments, kept alive by the actor', async () => {
    const S = ray.remote(class S {
      sum: number;
      constructor(big: Uint8Array, small: { k: number }) { this.sum = big.reduce((a, b) => a + b, 0) + small.k; }
      get(): number { return this.sum; }
      die(): void { process.exit(1); }
    });
    const big = ray.put(new Uint8Array(300_000).fill(7)); // plasma
    const small = ray.put({ k: 5 }); // memory store
    const a = S.options({ maxRestarts: 1 }).remote(big, small);
    expect(await a.get.remote()).toBe(2_100_005);
    big.release();
    small.release(); // only the actor's constructor call holds them now
    await expect(a.die.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
    expect(await a.get.remote()).toBe(2_100_005);
    ray.kill(a);
  });

  it('ray.kill with noRestart: false restarts an actor that may restart', async () => {
    const a = R.options({ maxRestarts: -1 }).remote();
    const pid = await a.pid.remote();
    ray.kill(a, { noRestart: false });
    expect(await a.pid.remote()).not.toBe(pid);
    ray.kill(a);
    await expect(a.pid.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
  });
});

/** Collects garbage every 50 ms until `pid` exits (true) or 10 s pass (false). */
async function exitsWhileCollecting(pid: number, gc: () => void): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
    if (!alive(pid)) return true;
  }
  return false;
}

describe('actor lifetime', () => {
  it('an actor whose handles are all collected (and never sent elsewhere) ends', async () => {
    const gc = obtainGc();
    const P = ray.remote(class P { pid(): number { return process.pid; } });
    const pidOf = async (): Promise<number> => P.remote().pid.remote();
    const pid = await pidOf(); // the handle is unreachable once this returns
    expect(await exitsWhileCollecting(pid, gc)).toBe(true);
  });

  it('a handle held by another actor keeps the actor alive; once that holder drops it too, the actor ends', async () => {
    const gc = obtainGc();
    const P = ray.remote(class P { pid(): number { return process.pid; } });
    const Holder = ray.remote(class Holder {
      h: { pid: { remote(): PromiseLike<number> } } | undefined;
      keep(box: { h: { pid: { remote(): PromiseLike<number> } } }): void { this.h = box.h; }
      async call(): Promise<number> { return await this.h!.pid.remote(); }
      async drop(): Promise<void> {
        this.h = undefined;
        const v8 = await import('node:v8');
        const vm = await import('node:vm');
        v8.setFlagsFromString('--expose-gc');
        const collect = vm.runInNewContext('gc') as () => void;
        for (let i = 0; i < 3; i++) { collect(); await new Promise((r) => setTimeout(r, 10)); }
      }
    });
    const holder = Holder.remote();
    const pid = await (async (): Promise<number> => {
      const p = P.remote();
      await holder.keep.remote({ h: p as never });
      return p.pid.remote();
    })(); // the driver's handle is unreachable once this returns
    for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
    // The driver dropped its handle; the holder's borrowed one still works.
    expect(await holder.call.remote()).toBe(pid);
    process.kill(pid, 0); // still alive
    await holder.drop.remote();
    expect(await exitsWhileCollecting(pid, gc)).toBe(true);
    ray.kill(holder);
  });
});

describe('concurrency groups', () => {
  it('methods in a group share its limit; groups do not wait for each other', async () => {
    const G = ray.remote({
      maxConcurrency: 1,
      concurrencyGroups: { io: { maxConcurrency: 2, methods: ['read'] } },
    }, class G {
      running = 0;
      peak = 0;
      async read(ms: number): Promise<number> {
        this.running++;
        this.peak = Math.max(this.peak, this.running);
        await new Promise((r) => setTimeout(r, ms));
        this.running--;
        return this.peak;
      }
      async slow(ms: number): Promise<number> { await new Promise((r) => setTimeout(r, ms)); return Date.now(); }
      quick(): number { return Date.now(); }
    });
    const g = G.remote();
    // 'io' runs 2 reads at a time.
    const peaks = await ray.get(Array.from({ length: 6 }, () => g.read.remote(30)));
    expect(Math.max(...peaks)).toBe(2);
    // A slow call in the default group does not hold up the io group.
    const slow = g.slow.remote(400);
    const t0 = Date.now();
    await g.read.remote(1);
    expect(Date.now() - t0).toBeLessThan(300);
    await slow;
    expect(() => G.options({ concurrencyGroups: { a: { maxConcurrency: 1, methods: ['x'] }, b: { maxConcurrency: 1, methods: ['x'] } } }))
      .toThrow(/'x' is in both/);
    ray.kill(g);
  });
});

describe('per-call options: handle.method.options({...})', () => {
  // Ray: python/ray/tests/test_basic.py::test_submit_api (a.method._remote(num_returns=4)).
  it('numReturns splits the returned array into that many refs; name shows in errors; bad options name the option', async () => {
    const A = ray.remote(class A {
      pair(x: number): [number, string] { return [x * 2, `v${x}`]; }
      fail(): never { throw new Error('boom'); }
    });
    const a = A.remote();
    const [n, s] = a.pair.options({ numReturns: 2 }).remote(21);
    expect(await n).toBe(42);
    expect(await s).toBe('v21');
    expect(await a.pair.options({ numReturns: 1 }).remote(1)).toEqual([2, 'v1']);
    const err = await a.fail.options({ name: 'my-call' }).remote().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect((err as Error).message).toContain('my-call');
    expect(() => a.pair.options({ numReturns: -1 })).toThrow(RangeError);
    expect(() => a.pair.options({ numReturns: 'stream' as unknown as number })).toThrow(/numReturns must be a non-negative integer or 'streaming'/);
    expect(() => a.pair.options({ concurrencyGroup: 3 as unknown as string })).toThrow(/concurrencyGroup/);
    expect(() => a.pair.options({ bogus: 1 } as never)).toThrow(/bogus/);
    ray.kill(a);
  });

  // Ray: python/ray/tests/test_concurrency_group.py::test_basic (a.f2.options(concurrency_group="compute")).
  it('concurrencyGroup runs a call in the named group instead of its method\'s; an unknown group fails the call', async () => {
    const G = ray.remote({
      maxConcurrency: 1,
      concurrencyGroups: { fast: { maxConcurrency: 1, methods: [] } },
    }, class G {
      async slow(ms: number): Promise<string> { await new Promise((r) => setTimeout(r, ms)); return 'slow'; }
      quick(): string { return 'quick'; }
    });
    const g = G.remote();
    await g.quick.remote();
    // The default group (limit 1) is busy for 600 ms; a quick call sent to
    // 'fast' does not wait behind it, the same call in its own group does.
    const slow = g.slow.remote(600);
    const t0 = Date.now();
    expect(await g.quick.options({ concurrencyGroup: 'fast' }).remote()).toBe('quick');
    const inFast = Date.now() - t0;
    expect(await g.quick.remote()).toBe('quick');
    const inDefault = Date.now() - t0;
    expect(inFast).toBeLessThan(400);
    expect(inDefault).toBeGreaterThanOrEqual(400);
    await slow;
    await expect(g.quick.options({ concurrencyGroup: 'nope' }).remote()).rejects.toThrow(/no concurrency group 'nope' \(groups: fast/);
    ray.kill(g);
  });
});

describe('actor lifetime: detached', () => {
  it('a detached actor outlives the process that created it; a non-detached one dies with it', async () => {
    const make = ray.remote({ maxRetries: 0 }, async (name: string, detached: boolean) => {
      const r = await import('rayts');
      const A = r.remote(class A { ping(): string { return 'pong'; } });
      const h = A.options({ name, namespace: 'life', lifetime: detached ? 'detached' : 'non_detached' }).remote();
      await h.ping.remote(); // alive before its creator goes
      process.exit(0); // the creating worker (the owner) ends
    });
    await expect(make.remote('det', true)).rejects.toBeInstanceOf(ray.WorkerCrashedError);
    await expect(make.remote('nodet', false)).rejects.toBeInstanceOf(ray.WorkerCrashedError);
    const det = await ray.getActor<{ ping(): string }>('det', { namespace: 'life' });
    expect(await det.ping.remote()).toBe('pong');
    // the non-detached one died with its owner. The driver can see the
    // owner's crash before the node server has processed that owner's
    // disconnect (which ends its actors), so wait for it, bounded.
    const nodetGone = async (): Promise<boolean> => {
      try {
        const nodet = await ray.getActor<{ ping(): string }>('nodet', { namespace: 'life' });
        await ray.get(nodet.ping.remote(), { timeoutMs: 2000 });
        return false;
      } catch {
        return true;
      }
    };
    expect(await eventually(nodetGone, 10_000)).toBe(true);
    // a non-owner can kill it
    ray.kill(det);
    await expect(det.ping.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
  });
});

describe('actor resources', () => {
  it('by default an actor is placed with 1 CPU and runs with 0; numCpus given is held for its life', async () => {
    const before = (await ray.availableResources()).CPU!;
    const A = ray.remote(class A { ping(): number { return 1; } });
    const a = A.remote();
    await a.ping.remote();
    expect((await ray.availableResources()).CPU).toBe(before);
    const B = ray.remote({ numCpus: 1 }, class B { ping(): number { return 1; } });
    const b = B.remote();
    await b.ping.remote();
    expect((await ray.availableResources()).CPU).toBe(before - 1);
    ray.kill(b);
    ray.kill(a);
  });
});
