// Ray's semantics, ported case by case from Ray's own tests (each case
// names the Ray test it follows): resource quantities finer than Ray's
// precision, custom fields of thrown errors, the dependency error of a task
// whose argument failed (and the original class at the end of the chain),
// and calls to an actor whose owner was killed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { rejection, thrown } from '../support/errors.js';
import { waitForExit } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 2 }));
afterAll(() => ray.shutdown());

describe('resource quantities finer than 0.0001', () => {
  // Ray: python/ray/tests/test_basic.py::test_invalid_arguments ("Check invalid resource quantity").
  it('are a RangeError naming the option, in tasks, actors and .options()', () => {
    const fn = (): number => 1;
    const A = class A { m(): number { return 1; } };
    const cases: [() => unknown, string][] = [
      [() => ray.remote({ numGpus: 0.0000001 }, fn), 'numGpus'],
      [() => ray.remote({ resources: { custom_resource: 0.0000001 } }, fn), 'resources.custom_resource'],
      [() => ray.remote(fn).options({ numCpus: 0.00001 }), 'numCpus'],
      [() => ray.remote({ numCpus: 0.00009 }, A), 'numCpus'],
      [() => ray.remote(A).options({ resources: { r: 1e-9 } }), 'resources.r'],
    ];
    for (const [make, option] of cases) {
      const e = thrown(make);
      expect(e, option).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(new RegExp(`^${option.replace('.', '\\.')}: the precision of a fractional resource quantity cannot go beyond 0\\.0001`));
    }
  });

  it('0.0001 itself and 0 are accepted and run', async () => {
    const f = ray.remote({ numCpus: 0.0001, resources: { none: 0 } }, () => 'ran');
    expect(await f.remote()).toBe('ran');
  });
});

describe('custom fields of a thrown error', () => {
  // Ray: python/ray/tests/test_basic.py::test_failed_task (a CustomException's
  // self.field = 1 reaches the caller: e.field == 1).
  it('an error field set by the task and a subclass\'s own fields reach the caller; what cannot serialize is left out', async () => {
    const f = ray.remote(() => {
      class QuotaError extends RangeError {
        readonly limit = 5;
        readonly details = { user: 'u1', tags: new Set(['a']) };
        constructor(message: string) {
          super(message);
          this.name = 'QuotaError';
        }
      }
      const e = new QuotaError('over quota') as QuotaError & { field: number; handler: () => void };
      e.field = 1;
      e.handler = () => undefined;  // a function: not carried
      throw e;
    });
    const err = await rejection(ray.get(f.remote())) as ray.RayTaskError;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    const cause = err.cause as Error & Record<string, unknown>;
    expect(cause.name).toBe('QuotaError');
    expect(cause.message).toBe('over quota');
    expect(cause.field).toBe(1);
    expect(cause.limit).toBe(5);
    expect(cause.details).toStrictEqual({ user: 'u1', tags: new Set(['a']) });
    expect('handler' in cause).toBe(false);
    expect(cause.stack).toContain('QuotaError: over quota');
  });

  it('a built-in error class comes back as itself, with its cause', async () => {
    const f = ray.remote(() => {
      throw Object.assign(new TypeError('bad type', { cause: new RangeError('inner') }), { code: 'E_TYPE' });
    });
    const err = await rejection(ray.get(f.remote())) as ray.RayTaskError;
    expect(err.cause).toBeInstanceOf(TypeError);
    expect((err.cause as TypeError & { code: string }).code).toBe('E_TYPE');
    expect(err.cause.cause).toBeInstanceOf(RangeError);
    expect(err.rootCause).toBe(err.cause);
  });
});

describe('a task whose argument failed', () => {
  // Ray: python/ray/tests/test_traceback.py::test_dep_failure (f(a(b())): "At
  // least one of the input arguments for this task could not be computed",
  // each task's error nesting the upstream one down to b's ValueError).
  it('rejects with a RayTaskError of its own whose cause is the upstream error; the original class stays reachable', async () => {
    const fail = ray.remote(() => {
      throw new RangeError('value 5 is too large');
    });
    const inc = ray.remote((x: number) => x + 1);
    const first = fail.remote();
    const second = inc.options({ name: 'second' }).remote(first);
    const third = inc.options({ name: 'third' }).remote(second);

    const e2 = await rejection(ray.get(second)) as ray.RayTaskError;
    expect(e2).toBeInstanceOf(ray.RayTaskError);
    expect(e2.taskName).toBe('second');
    expect(e2.cause).toBeInstanceOf(ray.RayTaskError);
    expect((e2.cause as ray.RayTaskError).cause).toBeInstanceOf(RangeError);
    expect(e2.rootCause).toBeInstanceOf(RangeError);
    expect(e2.rootCause.message).toBe('value 5 is too large');
    expect(e2.message).toMatch(/^RayTaskError\(RangeError\): task second failed: a result it depends on failed: /);

    const e3 = await rejection(ray.get(third)) as ray.RayTaskError;
    expect(e3.taskName).toBe('third');
    expect(e3.rootCause).toBeInstanceOf(RangeError);
    const upstream = e3.cause as ray.RayTaskError;
    expect(upstream).toBeInstanceOf(ray.RayTaskError);
    expect(upstream.taskName).toBe('second');
    expect(upstream.cause).toBeInstanceOf(ray.RayTaskError);
    expect((upstream.cause as ray.RayTaskError).cause).toBeInstanceOf(RangeError);
  });

  it('a custom error class at the start of a chain is reachable by its name, with its fields', async () => {
    const fail = ray.remote(() => {
      class ParseError extends Error {
        constructor(readonly line: number) {
          super(`line ${line}`);
          this.name = 'ParseError';
        }
      }
      throw new ParseError(7);
    });
    const id = ray.remote((x: unknown) => x);
    const err = await rejection(ray.get(id.options({ name: 'outer' }).remote(id.remote(fail.remote())))) as ray.RayTaskError;
    expect(err.taskName).toBe('outer');
    expect(err.cause).toBeInstanceOf(ray.RayTaskError);
    expect(err.rootCause.name).toBe('ParseError');
    expect((err.rootCause as Error & { line: number }).line).toBe(7);
  });

  it('an error the task\'s code lets escape from a ray.get of a failed result is a dependency error too', async () => {
    const fail = ray.remote(() => {
      throw new SyntaxError('bad json');
    });
    const reader = ray.remote(async (refs: ray.ObjectRef<unknown>[]) => {
      const r = await import('rayts');
      return r.get(refs[0]!);  // nested ref: fetched by the task itself
    });
    const err = await rejection(ray.get(reader.options({ name: 'reader' }).remote([fail.remote()]))) as ray.RayTaskError;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err.taskName).toBe('reader');
    expect(err.cause).toBeInstanceOf(ray.RayTaskError);
    expect(err.rootCause).toBeInstanceOf(SyntaxError);
  });

  it('an actor method whose argument failed rejects the same way', async () => {
    const fail = ray.remote(() => {
      throw new TypeError('no');
    });
    const A = ray.remote(class A { echo(x: unknown): unknown { return x; } });
    const a = A.remote();
    const err = await rejection(ray.get(a.echo.options({ name: 'echo' }).remote(fail.remote()))) as ray.RayTaskError;
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(err.taskName).toBe('echo');
    expect(err.cause).toBeInstanceOf(ray.RayTaskError);
    expect(err.rootCause).toBeInstanceOf(TypeError);
    ray.kill(a);
  });
});

describe('ray.kill of an actor\'s owner', () => {
  // Ray: python/ray/tests/test_actor_failures.py::test_actor_failure_per_type
  // ("Test actor killed because of owner failure": RayActorError, "its owner has died").
  it('a call made after the owner is killed rejects with ActorDiedError naming the owner\'s death', async () => {
    const Owner = ray.remote(class Owner {
      child: unknown;
      async makeChild(): Promise<unknown> {
        const r = await import('rayts');
        const C = r.remote(class Child { pid(): number { return process.pid; } });
        this.child = C.remote();
        return this.child;
      }
    });
    const owner = Owner.remote();
    const child = await owner.makeChild.remote() as ray.ActorHandle<{ pid(): number }>;
    const pid = await child.pid.remote();
    ray.kill(owner);
    // At once, not a call that still reaches the child's worker for a while.
    const err = await rejection(ray.get(child.pid.remote(), { timeoutMs: 20_000 }));
    expect(err).toBeInstanceOf(ray.ActorDiedError);
    expect(err.message).toMatch(/the actor is dead because its owner has died \(actor [0-9a-f]+ was killed by ray\.kill\(\)\)/);
    await expect(child.pid.remote()).rejects.toBeInstanceOf(ray.ActorDiedError);
    await waitForExit(pid, 10_000);  // and its worker ends with its owner
  });

  it('a detached actor created by the killed owner lives on', async () => {
    const Owner = ray.remote(class Owner {
      async makeChild(): Promise<unknown> {
        const r = await import('rayts');
        const C = r.remote(class Kept { ping(): string { return 'pong'; } });
        return C.options({ name: 'kept-child', lifetime: 'detached' }).remote();
      }
    });
    const owner = Owner.remote();
    const child = await owner.makeChild.remote() as ray.ActorHandle<{ ping(): string }>;
    expect(await child.ping.remote()).toBe('pong');
    ray.kill(owner);
    expect(await ray.get(child.ping.remote(), { timeoutMs: 20_000 })).toBe('pong');
    ray.kill(child);
  });
});
