import { describe, expect, it } from 'vitest';
import {
  BufferKind,
  DEFAULT_OOB_THRESHOLD,
  LAYOUT_MAGIC,
  deserialize,
  layoutSize,
  serialize,
  serializeToBytes,
  writeTo,
  type RefHooks,
  type Serialized,
} from '../../ts/codec/serialization.js';

/** Stand-in for ObjectRef: a class the hooks recognise. */
class FakeRef {
  constructor(readonly id: string) {}
}

function fakeHooks(): RefHooks & { encoded: string[]; decoded: string[] } {
  const encoded: string[] = [];
  const decoded: string[] = [];
  return {
    encoded,
    decoded,
    isRef: (v: unknown) => v instanceof FakeRef,
    encodeRef: (v: object) => {
      const id = (v as FakeRef).id;
      encoded.push(id);
      return new TextEncoder().encode(id);
    },
    decodeRef: (b: Uint8Array) => {
      const id = new TextDecoder().decode(b);
      decoded.push(id);
      return new FakeRef(id);
    },
  };
}

/** Byte equality and same type, without a slow element-wise deep compare. */
function expectSameBinary(a: ArrayBufferView, b: ArrayBufferView): void {
  expect(a.constructor).toBe(b.constructor);
  expect(a.byteLength).toBe(b.byteLength);
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
}

/** A 64-byte aligned target, like a plasma buffer. */
function alignedTarget(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size + 64), 0, size);
}

function layout(s: Serialized): Uint8Array {
  const target = alignedTarget(layoutSize(s));
  writeTo(s, target);
  return target;
}

function roundTrip<T>(value: T, hooks: RefHooks = fakeHooks()): T {
  const viaLayout = deserialize(layout(serialize(value, hooks)), hooks) as T;
  const viaBytes = deserialize(serializeToBytes(value, hooks), hooks) as T;
  expect(viaBytes).toStrictEqual(viaLayout);
  return viaLayout;
}

describe('serialization round trip', () => {
  it('primitives', () => {
    for (const v of [0, 1, -1, 42.5, 2 ** 53, -(2 ** 40), NaN, Infinity, -Infinity, '', 'hello', 'ünïcødé ✓', true, false, null, undefined]) {
      expect(roundTrip(v)).toStrictEqual(v);
    }
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is(roundTrip({ z: -0 }).z, -0)).toBe(true);
    const long = 'x'.repeat(200_000);
    expect(roundTrip(long)).toBe(long);
  });

  it('BigInt of any size', () => {
    for (const v of [0n, 5n, -5n, 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n + 1n, 2n ** 5000n + 7n, -(3n ** 2000n)]) {
      expect(roundTrip(v)).toBe(v);
    }
  });

  it('arrays, plain objects, undefined fields, null prototype', () => {
    const v = { a: 1, b: [1, 'two', { three: 3 }], c: undefined, d: { e: { f: [null, undefined] } } };
    const out = roundTrip(v);
    expect(out).toStrictEqual(v);
    expect('c' in out).toBe(true);
    const np = Object.create(null) as Record<string, number>;
    np.x = 1;
    expect(roundTrip({ np }).np.x).toBe(1);
    expect(roundTrip([])).toStrictEqual([]);
    expect(roundTrip({})).toStrictEqual({});
  });

  it('Map, Set, Date, RegExp', () => {
    const v = {
      m: new Map<unknown, unknown>([
        [1, 'a'],
        ['k', { z: 1 }],
        [{ obj: true }, [1, 2]],
      ]),
      s: new Set([1, 'x', 3n]),
      d: new Date(1_700_000_000_123),
      re: /a+b/gi,
    };
    const out = roundTrip(v);
    expect(out.m).toBeInstanceOf(Map);
    expect(out.m).toStrictEqual(v.m);
    expect(out.s).toBeInstanceOf(Set);
    expect([...out.s]).toStrictEqual([1, 'x', 3n]);
    expect(out.d).toBeInstanceOf(Date);
    expect(out.d.getTime()).toBe(v.d.getTime());
    expect(out.re).toBeInstanceOf(RegExp);
    expect(out.re.source).toBe('a+b');
    expect(out.re.flags).toBe('gi');
  });

  it('Error keeps class, name, message, stack, cause and fields', () => {
    const cause = new RangeError('inner');
    const e = new TypeError('boom', { cause }) as TypeError & { code?: string };
    e.code = 'E_BOOM';
    const out = roundTrip({ e }).e as TypeError & { code?: string };
    expect(out).toBeInstanceOf(TypeError);
    expect(out.name).toBe('TypeError');
    expect(out.message).toBe('boom');
    expect(out.stack).toBe(e.stack);
    expect(out.code).toBe('E_BOOM');
    expect(out.cause).toBeInstanceOf(RangeError);
    expect((out.cause as Error).message).toBe('inner');

    class MyError extends Error {
      override name = 'MyError';
    }
    const mine = roundTrip(new MyError('custom'));
    expect(mine).toBeInstanceOf(Error);
    expect(mine.name).toBe('MyError');
    expect(mine.message).toBe('custom');
  });

  it('ArrayBuffer, every TypedArray kind, DataView, Buffer (small, inline)', () => {
    const ab = new Uint8Array([1, 2, 3, 4]).buffer;
    const arrays = [
      new Int8Array([-1, 2]),
      new Uint8Array([1, 255]),
      new Uint8ClampedArray([0, 255]),
      new Int16Array([-300, 300]),
      new Uint16Array([65535]),
      new Int32Array([-(2 ** 31)]),
      new Uint32Array([2 ** 32 - 1]),
      new Float32Array([1.5, -2.25]),
      new Float64Array([Math.PI, -0]),
      new BigInt64Array([-(2n ** 63n)]),
      new BigUint64Array([2n ** 64n - 1n]),
    ];
    const out = roundTrip({ ab, arrays, dv: new DataView(new Uint8Array([9, 8, 7]).buffer), buf: Buffer.from('hi there') });
    expect(out.ab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(out.ab)]).toStrictEqual([1, 2, 3, 4]);
    arrays.forEach((a, i) => {
      expect(out.arrays[i]!.constructor).toBe(a.constructor);
      expect(out.arrays[i]).toStrictEqual(a);
    });
    expect(out.dv).toBeInstanceOf(DataView);
    expect(out.dv.getUint8(2)).toBe(7);
    expect(Buffer.isBuffer(out.buf)).toBe(true);
    expect(out.buf.toString()).toBe('hi there');
    // a plain Uint8Array stays a Uint8Array, not a Buffer
    expect(Buffer.isBuffer(roundTrip(new Uint8Array([1])))).toBe(false);
    // a view into part of a larger buffer sends only its own bytes
    const part = new Float64Array(new ArrayBuffer(64), 16, 2);
    part.set([1, 2]);
    expect(roundTrip(part)).toStrictEqual(new Float64Array([1, 2]));
  });

  it('shared sub-objects and cycles are preserved', () => {
    const shared = { k: 1 };
    const v: Record<string, unknown> = { a: shared, b: shared };
    v.self = v;
    const out = roundTrip(v);
    expect(out.a).toBe(out.b);
    expect(out.self).toBe(out);
    // also through the marker (transform) path
    const withBuf: Record<string, unknown> = { a: shared, b: shared, buf: Buffer.from('x') };
    withBuf.self = withBuf;
    const out2 = roundTrip(withBuf);
    expect(out2.a).toBe(out2.b);
    expect(out2.self).toBe(out2);
  });

  it('deep nesting, many objects, heavily shared DAGs', () => {
    type Node = { next: Node | null; i: number };
    let list: Node | null = null;
    for (let i = 0; i < 500; i++) list = { next: list, i };
    let out = roundTrip(list)!;
    for (let i = 499; i > 0; i--) out = out.next!;
    expect(out.i).toBe(0);
    const many = Array.from({ length: 5000 }, (_, i) => ({ i }));
    expect(roundTrip(many)[4999]!.i).toBe(4999);
    // 2^40 paths through 40 shared levels: must be visited once per object
    let dag: unknown = { leaf: true };
    for (let i = 0; i < 40; i++) dag = [dag, dag];
    const h = fakeHooks();
    const d = deserialize(layout(serialize(dag, h)), h) as unknown[]; // (a deep compare would take 2^40 steps)
    expect(d[0]).toBe(d[1]);
    // an unserializable value deep inside is still found, with its path
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 70; i++) cur = cur.c = {};
    cur.f = () => 0;
    expect(() => serialize(deep, fakeHooks(), 'argument 1')).toThrow(/^cannot serialize argument 1 at (\.c){70}\.f: functions/);
  });
});

describe('refs', () => {
  it('nested refs are encoded through the hooks and collected', () => {
    const hooks = fakeHooks();
    const r1 = new FakeRef('aa01');
    const r2 = new FakeRef('bb02');
    const value = { list: [r1, { deep: r2 }], again: r1, m: new Map([['k', r2]]) };
    const s = serialize(value, hooks, 'argument 1');
    expect(s.nestedRefs.map((b) => new TextDecoder().decode(b)).sort()).toStrictEqual(['aa01', 'bb02']);
    const out = deserialize(layout(s), hooks) as typeof value;
    expect(out.list[0]).toBeInstanceOf(FakeRef);
    expect((out.list[0] as FakeRef).id).toBe('aa01');
    expect((out.list[1] as { deep: FakeRef }).deep.id).toBe('bb02');
    expect(out.again).toBe(out.list[0]); // same ref twice decodes once
    expect(out.m.get('k')).toBe((out.list[1] as { deep: FakeRef }).deep);
    expect(hooks.decoded.sort()).toStrictEqual(['aa01', 'bb02']);
  });

  it('a top-level ref and serializeToBytes report refs', () => {
    const hooks = fakeHooks();
    const refs: Uint8Array[] = [];
    const bytes = serializeToBytes([new FakeRef('cc03')], hooks, 'argument 1', refs);
    expect(refs.map((b) => new TextDecoder().decode(b))).toStrictEqual(['cc03']);
    expect(((deserialize(bytes, hooks) as FakeRef[])[0] as FakeRef).id).toBe('cc03');
    const s = serialize(new FakeRef('dd04'), hooks);
    expect(s.nestedRefs).toHaveLength(1);
    expect((deserialize(layout(s), hooks) as FakeRef).id).toBe('dd04');
  });
});

describe('out-of-band buffers', () => {
  it('large binary values are not copied into the body', () => {
    const big = new Float64Array(20_000).map((_, i) => i * 0.5); // 160 KB
    const s = serialize({ big, small: new Float64Array(4) }, fakeHooks());
    expect(s.buffers).toHaveLength(1);
    expect(s.kinds).toStrictEqual([BufferKind.Float64Array]);
    expect(s.body.byteLength).toBeLessThan(200);
    expect(s.totalSize).toBe(layoutSize(s));
    expect(s.totalSize).toBeGreaterThan(big.byteLength);
  });

  it('deserialize returns views over the layout memory (zero copy)', () => {
    const hooks = fakeHooks();
    const f64 = new Float64Array(20_000).map((_, i) => i + 0.25);
    const buf = Buffer.alloc(DEFAULT_OOB_THRESHOLD + 1, 7);
    const dv = new DataView(new ArrayBuffer(DEFAULT_OOB_THRESHOLD + 8));
    dv.setFloat64(8, 1.5);
    const s = serialize({ f64, buf, dv }, hooks);
    expect(s.buffers).toHaveLength(3);
    const data = layout(s);
    const out = deserialize(data, hooks) as { f64: Float64Array; buf: Buffer; dv: DataView };
    expectSameBinary(out.f64, f64);
    expect(out.f64.buffer).toBe(data.buffer);
    expect(out.f64.byteOffset % 64).toBe(0);
    expect(Buffer.isBuffer(out.buf)).toBe(true);
    expect(out.buf.buffer).toBe(data.buffer);
    expect(out.dv.getFloat64(8)).toBe(1.5);

    // Mutate the source bytes after deserialize: the views see it.
    const f64Offset = out.f64.byteOffset - data.byteOffset;
    new Float64Array(data.buffer, data.byteOffset + f64Offset, 1)[0] = 12345.5;
    expect(out.f64[0]).toBe(12345.5);
    data[out.buf.byteOffset - data.byteOffset] = 99;
    expect(out.buf[0]).toBe(99);
  });

  it('every kind travels out of band and comes back with its type', () => {
    const n = 40_000;
    const hooks = fakeHooks();
    const values = [
      new Int8Array(n * 4),
      new Uint8Array(n * 4),
      new Uint8ClampedArray(n * 4),
      new Int16Array(n * 2),
      new Uint16Array(n * 2),
      new Int32Array(n),
      new Uint32Array(n),
      new Float32Array(n),
      new Float64Array(n),
      new BigInt64Array(n),
      new BigUint64Array(n),
    ];
    values.forEach((a, i) => {
      if (a instanceof BigInt64Array || a instanceof BigUint64Array) a.fill(BigInt(i + 1));
      else (a as Uint8Array).fill(i + 1);
    });
    const ab = new ArrayBuffer(n * 4);
    new Uint8Array(ab).fill(3);
    const s = serialize({ values, ab }, hooks);
    expect(s.buffers).toHaveLength(values.length + 1);
    const out = deserialize(layout(s), hooks) as { values: ArrayBufferView[]; ab: ArrayBuffer };
    out.values.forEach((a, i) => expectSameBinary(a, values[i]!));
    expect(out.ab).toBeInstanceOf(ArrayBuffer);
    expectSameBinary(new Uint8Array(out.ab), new Uint8Array(ab));
  });

  it('an unaligned input falls back to copying', () => {
    const hooks = fakeHooks();
    const f64 = new Float64Array(20_000).fill(2.5);
    const s = serialize(f64, hooks);
    const backing = new Uint8Array(layoutSize(s) + 3);
    const target = backing.subarray(3);
    writeTo(s, target);
    const out = deserialize(target, hooks) as Float64Array;
    expectSameBinary(out, f64);
  });

  it('the layout header is as documented', () => {
    const s = serialize({ a: new Uint8Array(DEFAULT_OOB_THRESHOLD + 10) }, fakeHooks(), 'value', { oobThreshold: 1000 });
    const data = layout(s);
    const view = new DataView(data.buffer, data.byteOffset);
    expect(view.getUint32(0, true)).toBe(LAYOUT_MAGIC);
    expect(view.getUint32(4, true)).toBe(s.body.byteLength);
    expect(view.getUint32(8, true)).toBe(1);
    const offset = Number(view.getBigUint64(12, true));
    expect(offset % 64).toBe(0);
    expect(offset).toBeGreaterThanOrEqual(12 + 17 + s.body.byteLength);
    expect(Number(view.getBigUint64(20, true))).toBe(DEFAULT_OOB_THRESHOLD + 10);
    expect(view.getUint8(28)).toBe(BufferKind.Uint8Array);
  });

  it('oobThreshold option applies', () => {
    const s = serialize(new Uint8Array(2000), fakeHooks(), 'value', { oobThreshold: 1000 });
    expect(s.buffers).toHaveLength(1);
    expect(serialize(new Uint8Array(2000), fakeHooks()).buffers).toHaveLength(0);
  });

  it('serializeToBytes keeps large binary inline', () => {
    const big = new Uint8Array(DEFAULT_OOB_THRESHOLD * 2).fill(5);
    const bytes = serializeToBytes({ big }, fakeHooks());
    expect(bytes.byteLength).toBeGreaterThan(big.byteLength);
    expectSameBinary((deserialize(bytes, fakeHooks()) as { big: Uint8Array }).big, big);
  });
});

describe('unserializable values name the path', () => {
  const hooks = fakeHooks();
  it('function', () => {
    expect(() => serialize({ config: { handler: () => 1 } }, hooks, 'argument 1')).toThrow(
      new TypeError('cannot serialize argument 1 at .config.handler: functions cannot be sent to another process'),
    );
    expect(() => serializeToBytes(() => 1, hooks, 'return value')).toThrow(
      'cannot serialize return value: functions cannot be sent to another process',
    );
  });
  it('symbol', () => {
    expect(() => serialize({ list: [1, Symbol('s')] }, hooks, 'argument 2')).toThrow(
      new TypeError('cannot serialize argument 2 at .list[1]: symbols cannot be sent to another process'),
    );
  });
  it('class instances, including ones with private fields', () => {
    class Secret {
      #x = 1;
      get x(): number {
        return this.#x;
      }
    }
    expect(() => serialize({ s: new Secret() }, hooks, 'argument 1')).toThrow(
      /^cannot serialize argument 1 at \.s: instances of class Secret cannot be sent to another process/,
    );
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    expect(() => serialize([new Point(1, 2)], hooks)).toThrow(/at \[0\]: instances of class Point/);
  });
  it('WeakMap, Promise, paths through Map and Set', () => {
    expect(() => serialize({ w: new WeakMap() }, hooks)).toThrow(/at \.w: a WeakMap cannot be sent/);
    expect(() => serialize({ p: Promise.resolve(1) }, hooks)).toThrow(/at \.p: a Promise cannot be sent to another process \(await it first/);
    expect(() => serialize(new Map([['k', () => 0]]), hooks)).toThrow(/at \.get\("k"\): functions/);
    expect(() => serialize({ s: new Set([1, Symbol.iterator]) }, hooks)).toThrow(/at \.s\.values\(\)\[1\]: symbols/);
    expect(() => serialize({ 'odd key': [() => 0] }, hooks)).toThrow(/at \["odd key"\]\[0\]: functions/);
  });
  it('errors thrown are TypeErrors', () => {
    try {
      serialize({ f: function named() {} }, hooks);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TypeError);
    }
  });
});

describe('speed', () => {
  it('serializeToBytes of a number is under 1 µs', () => {
    const hooks = fakeHooks();
    const n = 200_000;
    for (let i = 0; i < n; i++) serializeToBytes(i + 0.5, hooks);
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) serializeToBytes(i + 0.5, hooks);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
    }
    console.log(`serializeToBytes(number): ${best.toFixed(0)} ns`);
    expect(best).toBeLessThan(1000);
  });
});
