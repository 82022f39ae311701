import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as esbuild from 'esbuild';
import ts from 'typescript';
import { checkSelfContained, compileFunction, freeVariables, functionSource } from '../../ts/codec/source.js';
import { BUILD_HELPERS_SOURCE, installBuildHelpers } from '../../ts/worker/build_helpers.js';
import { createImportResolver, type ImportResolver } from '../../ts/worker/import_resolver.js';

const noImports: ImportResolver = (s) => Promise.reject(new Error(`unexpected import of ${s}`));
const resolver = createImportResolver({ api: { marker: 'rayts-api' } });

/** Ship a function the way the runtime does: source on one side, compile on the other. */
function ship<F extends Function>(fn: F, r: ImportResolver = noImports): F {
  return compileFunction(functionSource(fn).source, r) as unknown as F;
}

describe('functionSource', () => {
  it('keeps expressions (arrow, function, async, generator, class) as they are', () => {
    const arrow = (a: number, b: number) => a + b;
    expect(functionSource(arrow).source).toBe(arrow.toString());
    expect(ship(arrow)(2, 3)).toBe(5);
    const asyncArrow = async (x: number) => x * 2;
    expect(functionSource(asyncArrow).source).toBe(asyncArrow.toString());
    expect(ship(function named(x: number) { return x + 1; })(1)).toBe(2);
    function* gen() {
      yield 1;
      yield 2;
    }
    expect([...ship(gen)()]).toStrictEqual([1, 2]);
    class Counter {
      n = 0;
      inc() {
        return ++this.n;
      }
    }
    const C = ship(Counter);
    const c = new C();
    c.inc();
    expect(c.inc()).toBe(2);
  });

  it('normalises method shorthand into function expressions', () => {
    const o = {
      foo(a: number) {
        return a + 1;
      },
      async bar(a: number) {
        return a * 10;
      },
      *gen() {
        yield 'g';
      },
      async *agen() {
        yield 'ag';
      },
      get getter() {
        return 7;
      },
      ['comp' + 'uted'](x: number) {
        return x;
      },
      delete() {
        return 'del';
      },
      async() {
        return 'async named';
      },
    };
    const foo = functionSource(o.foo);
    expect(foo.source.startsWith('function foo(a)')).toBe(true);
    expect(foo.name).toBe('foo');
    expect(ship(o.foo)(1)).toBe(2);
    expect(functionSource(o.bar).source.startsWith('async function bar(a)')).toBe(true);
    return (async () => {
      expect(await ship(o.bar)(2)).toBe(20);
      expect(functionSource(o.gen).source.startsWith('function* gen()')).toBe(true);
      expect([...ship(o.gen)()]).toStrictEqual(['g']);
      expect(functionSource(o.agen).source.startsWith('async function* agen()')).toBe(true);
      const items: string[] = [];
      for await (const v of ship(o.agen)()) items.push(v);
      expect(items).toStrictEqual(['ag']);
      const getter = Object.getOwnPropertyDescriptor(o, 'getter')!.get!;
      expect(ship(getter)()).toBe(7);
      expect(ship((o as unknown as { computed: (x: number) => number }).computed)(5)).toBe(5);
      expect(ship(o.delete)()).toBe('del'); // reserved word: compiled as an anonymous function
      expect(ship(o.async)()).toBe('async named');
    })();
  });

  it('static methods and methods whose name would shadow an outer binding', () => {
    class K {
      static twice(x: number) {
        return 2 * x;
      }
    }
    expect(ship(K.twice)(4)).toBe(8);
    const o = {
      parseInt(s: string) {
        return parseInt(s, 10) + 1; // the global, not this method
      },
    };
    expect(functionSource(o.parseInt).source.startsWith('function (s)')).toBe(true);
    expect(ship(o.parseInt)('41')).toBe(42);
  });

  it('rejects native and bound functions, and methods that use super', () => {
    expect(() => functionSource(Math.max)).toThrow(new TypeError("cannot ship native function 'max': it has no JavaScript source"));
    const bound = function f(this: unknown) {
      return this;
    }.bind(null);
    expect(() => functionSource(bound)).toThrow(/^cannot ship bound function 'f'/);
    const base = { hi() { return 'hi'; } };
    const o = {
      __proto__: base,
      hi() {
        return super.hi() + '!';
      },
    };
    expect(() => functionSource(o.hi)).toThrow(/uses 'super'/);
  });

  it('hash is the sha1 of the source and is cached per function', () => {
    const f = (x: number) => x;
    const a = functionSource(f);
    expect(a.hash).toBe(createHash('sha1').update(a.source).digest('hex'));
    expect(functionSource(f)).toBe(a);
  });
});

describe('freeVariables and checkSelfContained', () => {
  it('finds captured variables, not locals, params, globals or properties', () => {
    expect(
      freeVariables(`function f(a, { b, c: [d = k1] }, ...rest) {
        var v = 1; let l = 2; const { m, ...others } = a;
        function inner(p) { return p + v + l + captured1; }
        class Local extends Base { #p = 1; field = outerField; method() { return this.#p + arguments.length; } }
        for (const i of [1]) { label: for (let j = 0; j < i; j++) { continue label; } }
        for (var q in a) {}
        try { throw 1 } catch ({ message }) { message; } 
        switch (a) { case 1: let s = 3; s; }
        const o = { shorthand, key: value1, [computed]: 1, method() { return notHere; } };
        a.prop.other; a[idx];
        [x1, y1.z] = [1, 2];
        typeof maybe;
        return Math.max(a, b, d, rest, m, others, inner, Local, q, o, process.pid, Buffer, console, globalThis, undefined, NaN, require);
      }`),
    ).toStrictEqual(['k1', 'captured1', 'Base', 'outerField', 'shorthand', 'value1', 'computed', 'notHere', 'idx', 'x1', 'y1', 'maybe']);
    expect(freeVariables('(a) => a + 1')).toStrictEqual([]);
    expect(freeVariables('function fact(n) { return n <= 1 ? 1 : n * fact(n - 1); }')).toStrictEqual([]);
    expect(freeVariables('class A { static make() { return new A(); } }')).toStrictEqual([]);
    expect(freeVariables('async () => { const m = await import("node:path"); return m; }')).toStrictEqual([]);
    expect(freeVariables('function () { hoisted(); { function hoisted() {} } }')).toStrictEqual([]);
  });

  it('names the captured variable', () => {
    const x = 10;
    const f = (a: number) => a + x;
    expect(() => checkSelfContained(f)).toThrow(
      new TypeError(
        "remote function 'f' reads captured variable 'x': remote functions must be self-contained (move it inside the function, pass it as an argument, or import it with await import())",
      ),
    );
    const y = 1;
    const g = () => x + y;
    expect(() => checkSelfContained(g)).toThrow(/reads captured variables 'x', 'y'/);
    class Uses {
      v = x;
    }
    expect(() => checkSelfContained(Uses)).toThrow(/^actor class 'Uses' reads captured variable 'x'/);
  });

  it('self-contained functions pass, including ones that import', () => {
    expect(checkSelfContained((a: number, b: number) => a + b).name).toBe('');
    expect(() =>
      checkSelfContained(async () => {
        const p = await import('node:path');
        return p.sep;
      }),
    ).not.toThrow();
  });
});

describe('compiled TypeScript output', () => {
  it('esbuild keepNames output uses __name: passes the check and runs after BUILD_HELPERS_SOURCE', async () => {
    const out = await esbuild.transform(
      `export const compiled = (xs: number[]) => { function double(v: number): number { return v * 2; } const sq = (v: number) => v * v; return xs.map(double).map(sq); };`,
      { loader: 'ts', keepNames: true, format: 'esm', target: 'es2022' },
    );
    // What compiled.toString() gives: the arrow inside __name(..., "compiled").
    const match = /__name\((\(xs\) => \{[\s\S]*?\n\}), "compiled"\)/.exec(out.code);
    expect(match).not.toBeNull();
    const source = match![1]!;
    expect(source).toContain('__name(');
    expect(freeVariables(source)).toStrictEqual([]);
    installBuildHelpers();
    const fn = compileFunction(source, noImports) as (xs: number[]) => number[];
    expect(fn([1, 2])).toStrictEqual([4, 16]);
  });

  it('tsc ES5 output with __awaiter/__generator runs after BUILD_HELPERS_SOURCE', async () => {
    const js = ts.transpileModule(
      `const f = async function (a: number) { const b = await Promise.resolve(a + 1); for (const x of [1, 2]) { await null; } return b * 2; };`,
      { compilerOptions: { target: ts.ScriptTarget.ES5, noEmitHelpers: true, lib: ['es2015'] } },
    ).outputText;
    const source = /var f = (function [\s\S]*\});/.exec(js)![1]!;
    expect(source).toContain('__awaiter');
    expect(source).toContain('__generator');
    expect(freeVariables(source)).toStrictEqual([]);
    // Run the helper script in a fresh context to prove it defines everything by itself.
    const vm = await import('node:vm');
    const ctx = vm.createContext({ Promise, process });
    vm.runInContext(BUILD_HELPERS_SOURCE, ctx);
    for (const name of ['__name', '__publicField', '__defProp', '__awaiter', '__generator', '__async', '__spreadValues', '__spreadProps', '__objRest', '__export', '__toESM', '__require']) {
      expect(typeof vm.runInContext(name, ctx)).toBe('function');
    }
    installBuildHelpers();
    const fn = compileFunction(source, noImports) as (a: number) => Promise<number>;
    expect(await fn(1)).toBe(4);
  });

  it('esbuild lowered helpers: __async, __spreadValues, __objRest, __publicField', async () => {
    const out = await esbuild.transform(
      `export const g = async (o: { a: number; b: number; c: number }) => { class P { x = 1; } const { a, ...rest } = o; const s = { ...rest, extra: 1 }; await null; return [a, s, new P().x]; };`,
      { loader: 'ts', format: 'esm', target: 'es2016', supported: { 'class-field': false } },
    );
    const source = /const g = ([\s\S]*?);\nexport/.exec(out.code)![1]!;
    expect(source).toMatch(/__async|__objRest|__spreadValues/);
    expect(freeVariables(source)).toStrictEqual([]);
    installBuildHelpers();
    const fn = compileFunction(source, noImports) as (o: object) => Promise<unknown>;
    expect(await fn({ a: 1, b: 2, c: 3 })).toStrictEqual([1, { b: 2, c: 3, extra: 1 }, 1]);
  });
});

describe('dynamic import inside a compiled function', () => {
  it("node builtins, bare specifiers resolved from cwd, and 'rayts'", async () => {
    const f = compileFunction(
      `async function usesImports(x) {
        const p = await import('node:path');
        const acorn = await import('acorn');
        const api = await import('rayts');
        return [p.join('a', x), typeof acorn.parse, api.marker];
      }`,
      resolver,
    ) as (x: string) => Promise<[string, string, string]>;
    expect(await f('b')).toStrictEqual(['a/b', 'function', 'rayts-api']);
  });

  it('a function defined in this (vitest-transformed) file can import', async () => {
    const fn = async (x: string) => {
      const p = await import('node:path');
      const { Packr } = await import('msgpackr');
      return p.basename(x) + typeof Packr;
    };
    expect(checkSelfContained(fn).source).toBeTruthy();
    expect(await ship(fn, resolver)('/tmp/file.txt')).toBe('file.txtfunction');
  });

  it('the resolver sees the specifier, errors reject the import', async () => {
    const seen: string[] = [];
    const f = compileFunction(`async () => (await import('x-' + 'y')).v`, async (s) => {
      seen.push(s);
      return { v: 42 };
    }) as () => Promise<number>;
    expect(await f()).toBe(42);
    expect(seen).toStrictEqual(['x-y']);
    const g = compileFunction(`async () => import('nope')`, () => {
      throw new Error('cannot load nope');
    }) as () => Promise<unknown>;
    await expect(g()).rejects.toThrow('cannot load nope');
  });

  it('stack traces point into the remote function', () => {
    const f = compileFunction(`function boom() {\n  throw new Error('bad');\n}`, noImports, { filename: 'remote:boom.js' }) as () => void;
    try {
      f();
      expect.unreachable();
    } catch (e) {
      expect((e as Error).stack).toContain('remote:boom.js:2');
    }
  });
});
