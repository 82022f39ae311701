// TypeScript ergonomics: ObjectRef is a full thenable (then, catch,
// finally), ray.getActor(name) without a type parameter gives a callable
// handle, and ray.importModule() takes a `.ts` module when the driver runs
// under tsx (the CLI or `node --import tsx`), its workers loading it with
// the driver's loader.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { rejection, thrown } from '../support/errors.js';

const root = path.resolve(__dirname, '..', '..');

beforeAll(() => ray.init({ numCpus: 1, objectStoreMemory: 64 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

describe('ObjectRef as a promise', () => {
  it('catch gets the task error and finally runs after either outcome', async () => {
    const fail = ray.remote((msg: string): number => {
      throw new RangeError(msg);
    });
    const events: string[] = [];
    const caught = await fail.remote('bad input').catch((e: unknown) => {
      events.push('catch');
      return e;
    });
    expect(caught).toBeInstanceOf(ray.RayTaskError);
    expect((caught as ray.RayTaskError).cause).toMatchObject({ name: 'RangeError', message: 'bad input' });

    const ok = ray.remote((a: number) => a + 1).remote(41);
    expect(await ok.catch(() => -1)).toBe(42);
    expect(await ok.finally(() => events.push('finally ok'))).toBe(42);
    const err = await rejection(fail.remote('again').finally(() => events.push('finally failed')));
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect(events).toEqual(['catch', 'finally ok', 'finally failed']);
  });

  it('Promise.all and Promise.resolve take refs as thenables', async () => {
    const sq = ray.remote((x: number) => x * x);
    expect(await Promise.all([sq.remote(2), sq.remote(3)])).toEqual([4, 9]);
    expect(await Promise.resolve(ray.put('v'))).toBe('v');
  });
});

describe('ray.getActor without a type parameter', () => {
  it('gives a handle whose methods are callable with .remote()', async () => {
    const Counter = ray.remote(class Counter {
      n = 0;
      inc(by: number): number { return (this.n += by); }
      label(): string { return `n=${this.n}`; }
    });
    const owner = Counter.options({ name: 'untyped-counter' }).remote();
    await owner.inc.remote(1);
    const h = await ray.getActor('untyped-counter');
    expect(h.actorId).toBe(owner.actorId);
    expect(await h.inc.remote(2)).toBe(3);
    expect(await h.label.remote()).toBe('n=3');
    const e = thrown(() => h.nope);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe("actor class Counter has no method 'nope' (methods: inc, label)");
    ray.kill(h);
  });
});

describe('ray.importModule of a .ts module', () => {
  const tsxCli = createRequire(path.join(root, 'package.json')).resolve('tsx/cli');
  const expected = { norm: 7, scaled: 42, total: 22, viaName: 23, inline: 42, workerIsOther: true };
  const run = (args: string[]): unknown => {
    const out = execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
    return JSON.parse(out.trim().split('\n').at(-1)!) as unknown;
  };

  it('works from a driver run with node --import tsx', () => {
    expect(run(['--import', 'tsx', 'test/fixtures/ts_driver.ts'])).toMatchObject(expected);
  });

  it('works from a driver run with the tsx CLI', () => {
    expect(run([tsxCli, 'test/fixtures/ts_driver.ts'])).toMatchObject(expected);
  });

  it('without a TypeScript loader fails at once, saying how to run the driver', () => {
    const e = thrown(() => ray.importModule(new URL('../fixtures/ts_tasks.ts', import.meta.url)));
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toMatch(/ts_tasks\.ts is a TypeScript module, and this driver runs without a TypeScript loader/);
    expect((e as Error).message).toContain('node --import tsx driver.ts');
  });
});
