// Module mode: ray.importModule(url) turns a module's exported functions into
// remote functions; workers import the module themselves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';

type Tasks = typeof import('../fixtures/tasks.mjs');

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 256 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

const url = new URL('../fixtures/tasks.mjs', import.meta.url);

describe('ray.importModule', () => {
  it('an exported function runs remotely: square', async () => {
    const mod = ray.importModule<Tasks>(url);
    const ref = mod.square.remote(7);
    expect(ref).toBeInstanceOf(ray.ObjectRef);
    expect(await ref).toBe(49);
    expect(await ray.get([1, 2, 3, 4].map((x) => mod.square.remote(x)))).toEqual([1, 4, 9, 16]);
  });

  it('an async export is awaited', async () => {
    const mod = ray.importModule<Tasks>(url);
    expect(await mod.slowAdd.remote(40, 2)).toBe(42);
  });

  it('an arrow-function export and ObjectRef arguments', async () => {
    const mod = ray.importModule<Tasks>(url);
    const arr = ray.put([1, 2, 3]);
    expect(await mod.describeArg.remote(arr)).toEqual({ type: 'object', isArray: true, len: 3 });
    expect(await mod.square.remote(mod.square.remote(3))).toBe(81);
  });

  it('runs in a worker process, not in the driver', async () => {
    const mod = ray.importModule<Tasks>(url);
    const where = await mod.whereAmI.remote();
    expect(where.pid).not.toBe(process.pid);
    expect(where.workerId).not.toBe(ray.getRuntimeContext().workerId);
  });

  it('a path string works as well as a URL', async () => {
    const mod = ray.importModule<Tasks>(url.pathname);
    expect(await mod.square.remote(5)).toBe(25);
    const mod2 = ray.importModule<Tasks>(url.href);
    expect(await mod2.square.remote(6)).toBe(36);
  });

  it('options() apply to module functions', async () => {
    const mod = ray.importModule<Tasks>(url);
    expect(await mod.square.options({ numCpus: 0.5 }).remote(9)).toBe(81);
    expect(() => mod.square.options({ numCpus: -1 })).toThrow(RangeError);
  });

  it('a module task may submit module tasks (nested)', async () => {
    const mod = ray.importModule<Tasks>(url);
    expect(await mod.nestedSquare.remote(12)).toBe(144);
  });

  it('an export that throws gives RayTaskError with the original error', async () => {
    const mod = ray.importModule<Tasks>(url);
    const err = await ray.get(mod.fail.remote('bad module input')).catch((e: unknown) => e) as ray.RayTaskError;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err.cause.name).toBe('SyntaxError');
    expect(err.cause.message).toBe('bad module input');
    expect(err.message).toContain('tasks.mjs');
  });

  it('a missing export is an error naming it', async () => {
    const mod = ray.importModule<Record<string, (...a: unknown[]) => unknown>>(url);
    let err: unknown;
    try {
      await ray.get(mod.doesNotExist!.remote(1), { timeoutMs: 10_000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect((err as Error).message).toContain('doesNotExist');
  });

  it('an export that is not a function is an error naming it', async () => {
    const mod = ray.importModule<Record<string, (...a: unknown[]) => unknown>>(url);
    let err: unknown;
    try {
      await ray.get(mod.notAFunction!.remote(), { timeoutMs: 10_000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect((err as Error).message).toContain('notAFunction');
  });

  it('a module that does not exist is an error naming the file', async () => {
    const mod = ray.importModule<Record<string, (...a: unknown[]) => unknown>>(new URL('../fixtures/no_such_module.mjs', import.meta.url));
    let err: unknown;
    try {
      await ray.get(mod.f!.remote(), { timeoutMs: 10_000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ray.GetTimeoutError);
    expect((err as Error).message).toContain('no_such_module');
  });

  it('the runtime keeps working after module errors', async () => {
    const mod = ray.importModule<Tasks>(url);
    expect(await mod.square.remote(11)).toBe(121);
  });
});

describe('module mode actors', () => {
  it('an exported class becomes an actor class', async () => {
    const mod = ray.importModule<{ Tally: new (start?: number) => { add(x: number): number; get(): Promise<number> } }>(
      new URL('../fixtures/tasks.mjs', import.meta.url));
    const t = mod.Tally.remote(10);
    expect(await t.add.remote(5)).toBe(15);
    expect(await t.get.remote()).toBe(15);
    expect(() => (t as unknown as Record<string, { remote(): unknown }>).nope!.remote()).toThrow(/no method 'nope'/);
    ray.kill(t);
  });

  // Ray: python/ray/tests/test_actor.py::test_inherit_actor_from_class.
  it('methods inherited from a base class of the same module are callable', async () => {
    const mod = ray.importModule<Pick<Tasks, 'Derived'>>(url);
    const d = mod.Derived.remote();
    expect(await d.hello.remote()).toBe('hello from Base');
    expect(await d.twice.remote(21)).toBe(42);
    expect(await d.own.remote()).toBe('own');
    expect(() => (d as unknown as Record<string, { remote(): unknown }>).nope!.remote()).toThrow(/no method 'nope'/);
    ray.kill(d);
  });

  // Ray: python/ray/tests/test_actor.py::test_inherit_actor_from_class.
  it('a class extending an imported one: inherited methods work, unknown names fail in the actor', async () => {
    const mod = ray.importModule<Pick<Tasks, 'Emitting'>>(url);
    const e = mod.Emitting.remote();
    expect(await e.ping.remote()).toBe('pong');
    expect(await e.listenerCount.remote('x')).toBe(0); // from EventEmitter, which the driver never read
    await expect((e as unknown as Record<string, { remote(): Promise<unknown> }>).nope!.remote()).rejects.toThrow(/no method 'nope'/);
    ray.kill(e);
  });
});
