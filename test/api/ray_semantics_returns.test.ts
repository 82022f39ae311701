// Ray's semantics, ported case by case from Ray's own tests (each case
// names the Ray test it follows): numReturns: 0 for tasks and actor
// methods, actor methods that are generators (sync and async) with
// numReturns: 'streaming', a streaming generator retried after a failure
// skipping the items the consumer has, and getRuntimeContext() inside an
// actor (currentActor, wasCurrentActorReconstructed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from 'rayts';
import { rejection } from '../support/errors.js';
import { tempDir } from '../support/fs.js';
import { eventually, waitForFile } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 128 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

async function collect<T>(gen: ray.ObjectRefGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for (let r = await gen.next(); !r.done; r = await gen.next()) out.push(await ray.get(r.value));
  return out;
}

describe('numReturns: 0', () => {
  // Ray: python/ray/tests/test_method_num_returns.py::test_num_returns_zero_succeeds (num_returns=0
  // is allowed), and @ray.remote(num_returns=0) tasks run for their side effects.
  it('a task with numReturns: 0 runs for its side effects and .remote() returns nothing', async () => {
    const dir = tempDir('zero-task');
    const touch = ray.remote({ numReturns: 0 }, async (file: string) => {
      (await import('node:fs')).writeFileSync(file, 'ran');
      return 'dropped';
    });
    const out: unknown = touch.remote(path.join(dir, 'a'));
    expect(out).toBeUndefined();
    expect(await waitForFile(path.join(dir, 'a'))).toBe('ran');
    // Given through .options() as well.
    const viaOptions: unknown = ray.remote(async (file: string) => {
      (await import('node:fs')).writeFileSync(file, 'ran too');
    }).options({ numReturns: 0 }).remote(path.join(dir, 'b'));
    expect(viaOptions).toBeUndefined();
    expect(await waitForFile(path.join(dir, 'b'))).toBe('ran too');
  });

  it('an actor method called with numReturns: 0 runs in caller order and returns nothing', async () => {
    const Counter = ray.remote(class Counter {
      n = 0;
      bump(by: number) { this.n += by; return this.n; }
      get() { return this.n; }
    });
    const c = Counter.remote();
    const none: unknown = c.bump.options({ numReturns: 0 }).remote(5);
    expect(none).toBeUndefined();
    c.bump.options({ numReturns: 0 }).remote(2);
    expect(await c.get.remote()).toBe(7);
    ray.kill(c);
  });

  it('an error thrown by a numReturns: 0 task is logged by its worker', async () => {
    const boom = ray.remote({ numReturns: 0 }, () => {
      throw new RangeError('zero-returns-boom-4711');
    });
    boom.remote();
    // This driver's session directory (ts/api/session.ts): its logs/ keeps each worker's stderr.
    const root = path.join(os.tmpdir(), `rayts-${process.getuid!()}`);
    const session = fs.readdirSync(root).find((n) => n.startsWith(`session_${process.pid}_`));
    expect(session).toBeDefined();
    const logs = path.join(root, session!, 'logs');
    const logged = await eventually(() => fs.readdirSync(logs).filter((f) => f.endsWith('.err'))
      .some((f) => fs.readFileSync(path.join(logs, f), 'utf8').includes('zero-returns-boom-4711')), 15_000);
    expect(logged).toBe(true);
    const line = fs.readdirSync(logs).filter((f) => f.endsWith('.err'))
      .map((f) => fs.readFileSync(path.join(logs, f), 'utf8')).join('\n')
      .split('\n').find((l) => l.includes('zero-returns-boom-4711'));
    expect(line).toContain('(numReturns: 0) failed');
    expect(line).toContain('RangeError');
  });
});

describe("actor methods with numReturns: 'streaming'", () => {
  const Gen = ray.remote(class Gen {
    *f(n: number) {
      for (let i = 0; i < n; i++) yield i;
    }
    async *asyncF(n: number) {
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 10));
        yield i;
      }
    }
    *big(n: number) {
      for (let i = 0; i < n; i++) yield new Float64Array(200_000).fill(i); // 1.6 MB each: plasma
    }
    *fails() {
      yield 'first';
      throw new TypeError('generator method failed');
    }
    async *slow(n: number) {
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 200));
        yield i;
      }
    }
    g() { return 3; }
  });

  // Ray: python/ray/tests/test_streaming_generator.py::test_actor_streaming_generator (sync and async
  // generator methods, inline and plasma items).
  it('sync and async generator methods stream their items in order', async () => {
    const a = Gen.remote();
    const sync = a.f.options({ numReturns: 'streaming' }).remote(3);
    expect(sync).toBeInstanceOf(ray.ObjectRefGenerator);
    expect(await collect(sync)).toEqual([0, 1, 2]);
    expect(await collect(a.asyncF.options({ numReturns: 'streaming' }).remote(3))).toEqual([0, 1, 2]);
    const big = await collect(a.big.options({ numReturns: 'streaming' }).remote(3));
    expect(big.map((v) => [v.length, v[0], v[v.length - 1]])).toEqual([[200_000, 0, 0], [200_000, 1, 1], [200_000, 2, 2]]);
    // The actor's other methods work between and after streams.
    expect(await a.g.remote()).toBe(3);
    ray.kill(a);
  });

  // Ray: python/ray/tests/test_streaming_generator.py::test_streaming_generator_exception.
  it('an error thrown by a generator method is its last item; the stream then ends', async () => {
    const a = Gen.remote();
    const gen = a.fails.options({ numReturns: 'streaming' }).remote();
    const first = await gen.next();
    expect(first.done).toBe(false);
    expect(await first.value!).toBe('first');
    const second = await gen.next();
    expect(second.done).toBe(false);
    const err = await rejection(ray.get(second.value!));
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(String((err as Error).message)).toContain('generator method failed');
    expect((await gen.next()).done).toBe(true);
    expect((await gen.next()).done).toBe(true);
    ray.kill(a);
  });

  // Ray: python/ray/tests/test_streaming_generator.py::test_generator_basic ("Generator Task failure":
  // the actor is killed mid-stream).
  it('killing the actor mid-stream fails the next item with ActorDiedError; items already received keep their values', async () => {
    const a = Gen.remote();
    const gen = a.slow.options({ numReturns: 'streaming' }).remote(10);
    const got: ray.ObjectRef<number>[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await gen.next();
      expect(r.done).toBe(false);
      got.push(r.value!);
    }
    ray.kill(a);
    const next = await gen.next();
    expect(next.done).toBe(false);
    expect(await rejection(ray.get(next.value!, { timeoutMs: 10_000 }))).toBeInstanceOf(ray.ActorDiedError);
    expect((await gen.next()).done).toBe(true);
    expect(await ray.get(got)).toEqual([0, 1]);
  });
});

describe('a streaming generator retried after a failure', () => {
  // Ray: python/ray/tests/test_streaming_generator.py::test_generator_basic ("Retry exceptions": the
  // consumer sees 0..4 once each, not the stream starting over).
  it('retryExceptions: the retry skips the items the consumer already received', async () => {
    const dir = tempDir('gen-retry');
    const gen = ray.remote({ numReturns: 'streaming', retryExceptions: true, maxRetries: 2 }, async function* (dir: string) {
      const fs = await import('node:fs');
      for (let i = 0; i < 5; i++) {
        if (i === 3 && !fs.existsSync(`${dir}/failed`)) {
          fs.writeFileSync(`${dir}/failed`, '');
          throw new Error('first attempt fails at item 3');
        }
        fs.appendFileSync(`${dir}/produced`, `${i},`);
        yield i;
      }
    });
    expect(await collect(gen.remote(dir))).toEqual([0, 1, 2, 3, 4]);
    // The retry produced the first items again (the generator restarts) but did not report them.
    expect(fs.readFileSync(path.join(dir, 'produced'), 'utf8')).toBe('0,1,2,0,1,2,3,4,');
  });

  // The case: the same, with the worker dying mid-stream instead of
  // throwing (Ray resumes the stream the same way for a system failure).
  it('worker death: the retried stream resumes after the last item received', async () => {
    const dir = tempDir('gen-crash');
    const gen = ray.remote({ numReturns: 'streaming', maxRetries: 2 }, async function* (dir: string) {
      const fs = await import('node:fs');
      for (let i = 0; i < 6; i++) {
        if (i === 4 && !fs.existsSync(`${dir}/crashed`)) {
          fs.writeFileSync(`${dir}/crashed`, '');
          process.exit(1);
        }
        await new Promise((r) => setTimeout(r, 5));
        yield i * 10;
      }
    });
    expect(await collect(gen.remote(dir))).toEqual([0, 10, 20, 30, 40, 50]);
  });

  it('out of retries: the error follows the items received, which keep their values', async () => {
    const gen = ray.remote({ numReturns: 'streaming', maxRetries: 0 }, function* () {
      yield 'a';
      yield 'b';
      process.exit(1);
    });
    const refs: ray.ObjectRef<string>[] = [];
    for await (const r of gen.remote()) refs.push(r);
    expect(refs).toHaveLength(3);
    expect(await ray.get(refs.slice(0, 2))).toEqual(['a', 'b']);
    expect(await rejection(ray.get(refs[2]!))).toBeInstanceOf(ray.WorkerCrashedError);
  });
});

describe('getRuntimeContext() inside an actor', () => {
  // Ray: python/ray/tests/test_runtime_context.py::test_was_current_actor_reconstructed.
  it('wasCurrentActorReconstructed is false at first and true after a restart', async () => {
    // maxTaskRetries: a call that meets the dying worker is sent again after the restart.
    const A = ray.remote({ maxRestarts: 2, maxTaskRetries: 1 }, class A {
      atConstruction: Promise<boolean | undefined>;
      constructor() {
        // Read as the constructor runs (its import resolves before any call).
        this.atConstruction = import('rayts').then((r) => r.getRuntimeContext().wasCurrentActorReconstructed);
      }
      async wasAtConstruction() { return await this.atConstruction; }
      async now() { return (await import('rayts')).getRuntimeContext().wasCurrentActorReconstructed; }
      pid() { return process.pid; }
    });
    const a = A.remote();
    expect(await a.wasAtConstruction.remote()).toBe(false);
    expect(await a.now.remote()).toBe(false);
    const pid = await a.pid.remote();
    process.kill(pid, 'SIGKILL');
    // Calls made while it restarts are held until the constructor ran again.
    expect(await a.wasAtConstruction.remote()).toBe(true);
    expect(await a.now.remote()).toBe(true);
    expect(await a.pid.remote()).not.toBe(pid);
    ray.kill(a);
  });

  // Ray: python/ray/tests/test_runtime_context.py::test_current_actor (a handle to the actor itself).
  it('currentActor is a callable handle to the actor itself; absent in a task', async () => {
    const Self = ray.remote(class Self {
      n = 0;
      inc() { return ++this.n; }
      async me() { return [(await import('rayts')).getRuntimeContext().currentActor]; }
      async id() { return (await import('rayts')).getRuntimeContext().actorId; }
    });
    const a = Self.remote();
    // In an array: a handle is not thenable, but this keeps the value as given.
    const [self] = (await a.me.remote()) as unknown as [ray.ActorHandle<{ inc(): number }>];
    expect(self.actorId).toBe(a.actorId);
    expect(await a.id.remote()).toBe(a.actorId);
    expect(await a.inc.remote()).toBe(1);
    expect(await self.inc.remote()).toBe(2); // the same actor, through the handle it gave out
    expect(await a.inc.remote()).toBe(3);
    const inTask = ray.remote(async () => {
      const ctx = (await import('rayts')).getRuntimeContext();
      return [ctx.currentActor === undefined, ctx.wasCurrentActorReconstructed === undefined];
    });
    expect(await inTask.remote()).toEqual([true, true]);
    ray.kill(a);
  });
});
