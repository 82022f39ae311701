// Objects: put/get of every serializable type, zero-copy large reads from the
// shared-memory store, large values to and from tasks, wait, get timeouts,
// release, and bounded store usage when refs are dropped.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { obtainGc } from '../support/gc.js';

const STORE = 256 * 1024 * 1024;
const MiB = 1024 * 1024;

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: STORE }));
afterAll(() => ray.shutdown());

/** Byte-wise equality (vitest's deep equality is very slow on million-element arrays). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A real gc() even when node was started without --expose-gc. */

const echo = ray.remote((x: unknown) => x);

/** put -> get in the driver, and the value through a task and back. */
async function roundTrip<T>(v: T): Promise<{ local: T; viaTask: T }> {
  const ref = ray.put(v);
  const local = await ray.get(ref);
  const viaTask = (await echo.remote(v)) as T;
  return { local, viaTask };
}

describe('put/get of every serializable type', () => {
  const primitives: Array<[string, unknown]> = [
    ['number', 3.25], ['negative zero', -0], ['NaN', NaN], ['Infinity', -Infinity],
    ['string', 'héllo ✓'], ['empty string', ''], ['true', true], ['false', false],
    ['null', null], ['undefined', undefined],
    ['BigInt', 12345678901234567890123456789n], ['negative BigInt', -42n],
  ];
  for (const [name, v] of primitives) {
    it(`primitive: ${name}`, async () => {
      const { local, viaTask } = await roundTrip(v);
      expect(Object.is(local, v)).toBe(true);
      expect(Object.is(viaTask, v)).toBe(true);
    });
  }

  it('Map (non-string keys, nested values)', async () => {
    const v = new Map<unknown, unknown>([[1, 'one'], ['k', { a: [1, 2] }], [2n, new Set([3])]]);
    for (const got of Object.values(await roundTrip(v))) {
      expect(got).toBeInstanceOf(Map);
      expect(got).toEqual(v);
    }
  });

  it('Set', async () => {
    const v = new Set<unknown>([1, 'two', 3n, null]);
    for (const got of Object.values(await roundTrip(v))) {
      expect(got).toBeInstanceOf(Set);
      expect([...(got as Set<unknown>)]).toEqual([...v]);
    }
  });

  it('Date', async () => {
    const v = new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
    for (const got of Object.values(await roundTrip(v))) {
      expect(got).toBeInstanceOf(Date);
      expect((got as Date).getTime()).toBe(v.getTime());
    }
  });

  it('RegExp with flags', async () => {
    const v = /a(b+)c/giu;
    for (const got of Object.values(await roundTrip(v))) {
      expect(got).toBeInstanceOf(RegExp);
      expect((got as RegExp).source).toBe('a(b+)c');
      expect((got as RegExp).flags).toBe('giu');
    }
  });

  it('Error (name, message, subclass kept)', async () => {
    const e = new TypeError('bad thing');
    for (const got of Object.values(await roundTrip(e))) {
      expect(got).toBeInstanceOf(Error);
      expect((got as Error).message).toBe('bad thing');
      expect((got as Error).name).toBe('TypeError');
      expect(got).toBeInstanceOf(TypeError);
    }
    const plain = new Error('plain');
    const got = await ray.get(ray.put(plain));
    expect(got).toBeInstanceOf(Error);
    expect(got.message).toBe('plain');
  });

  it('ArrayBuffer', async () => {
    const ab = new ArrayBuffer(16);
    new Uint8Array(ab).set([1, 2, 3, 250], 4);
    for (const got of Object.values(await roundTrip(ab))) {
      expect(got).toBeInstanceOf(ArrayBuffer);
      expect((got as ArrayBuffer).byteLength).toBe(16);
      expect([...new Uint8Array(got as ArrayBuffer)]).toEqual([...new Uint8Array(ab)]);
    }
  });

  const typed: Array<[string, () => ArrayBufferView]> = [
    ['Int8Array', () => Int8Array.from([-128, -1, 0, 1, 127])],
    ['Uint8Array', () => Uint8Array.from([0, 1, 254, 255])],
    ['Uint8ClampedArray', () => Uint8ClampedArray.from([0, 128, 255])],
    ['Int16Array', () => Int16Array.from([-32768, 0, 32767])],
    ['Uint16Array', () => Uint16Array.from([0, 65535])],
    ['Int32Array', () => Int32Array.from([-(2 ** 31), 0, 2 ** 31 - 1])],
    ['Uint32Array', () => Uint32Array.from([0, 2 ** 32 - 1])],
    ['Float32Array', () => Float32Array.from([1.5, -0.25, Infinity])],
    ['Float64Array', () => Float64Array.from([Math.PI, -Number.MAX_VALUE, NaN])],
    ['BigInt64Array', () => BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 63n - 1n])],
    ['BigUint64Array', () => BigUint64Array.from([0n, 2n ** 64n - 1n])],
    ['DataView', () => { const d = new DataView(new ArrayBuffer(8)); d.setFloat64(0, 1.25); return d; }],
  ];
  for (const [name, make] of typed) {
    it(`${name} (small, inline)`, async () => {
      const v = make();
      for (const got of Object.values(await roundTrip(v))) {
        expect((got as object).constructor.name).toBe(name);
        expect(got).toEqual(v);
      }
    });
    it(`${name} (large, out of band, ~1 MiB)`, async () => {
      const small = make();
      const ctor = small.constructor as { new(len: number): ArrayBufferView; BYTES_PER_ELEMENT?: number };
      let v: ArrayBufferView;
      if (small instanceof DataView) {
        v = new DataView(new ArrayBuffer(MiB));
        (v as DataView).setUint32(MiB - 4, 0xdeadbeef);
      } else {
        const len = MiB / (ctor.BYTES_PER_ELEMENT ?? 1);
        v = new ctor(len);
        const src = small as unknown as ArrayLike<unknown>;
        const dst = v as unknown as { [i: number]: unknown };
        for (let i = 0; i < src.length; i++) {
          dst[i] = src[i];
          dst[len - 1 - i] = src[i];
        }
      }
      for (const got of Object.values(await roundTrip(v))) {
        expect((got as object).constructor.name).toBe(name);
        expect((got as ArrayBufferView).byteLength).toBe(MiB);
        expect(sameBytes(got as ArrayBufferView, v)).toBe(true);
      }
    });
  }

  it('Buffer stays a Buffer (small and large)', async () => {
    const small = Buffer.from('hello buffer');
    for (const got of Object.values(await roundTrip(small))) {
      expect(Buffer.isBuffer(got)).toBe(true);
      expect((got as Buffer).toString()).toBe('hello buffer');
    }
    const large = Buffer.alloc(2 * MiB, 7);
    large.write('end', 2 * MiB - 3);
    for (const got of Object.values(await roundTrip(large))) {
      expect(Buffer.isBuffer(got)).toBe(true);
      expect((got as Buffer).length).toBe(2 * MiB);
      expect((got as Buffer).equals(large)).toBe(true);
    }
  });

  it('a TypedArray view over part of a larger buffer keeps only its range', async () => {
    const backing = new Float64Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const view = backing.subarray(2, 5);
    for (const got of Object.values(await roundTrip(view))) {
      expect(got).toBeInstanceOf(Float64Array);
      expect([...(got as Float64Array)]).toEqual([2, 3, 4]);
    }
  });

  it('nested arrays and objects mixing all of the above', async () => {
    const v = {
      arr: [1, [2, [3, [4, 'deep']]], { x: null }],
      map: new Map([['d', new Date(0)]]),
      set: new Set([/x/g]),
      bytes: new Uint16Array([1, 2, 3]),
      big: 7n,
      sparse: [1, , 3], // eslint-disable-line no-sparse-arrays -- a hole must survive the round trip
      emptyObj: {},
      nestedBuf: { b: Buffer.from([9, 8]) },
      'key with spaces': 1,
    };
    for (const got of Object.values(await roundTrip(v))) {
      expect(got).toEqual(v);
    }
  });

  it('shared substructures and cycles', async () => {
    const shared = { s: 1 };
    const cyc: { self?: unknown; pair: unknown[] } = { pair: [shared, shared] };
    cyc.self = cyc;
    for (const got of Object.values(await roundTrip(cyc))) {
      const g = got as typeof cyc;
      expect(g.self).toBe(g);
      expect(g.pair[0]).toBe(g.pair[1]);
      expect(g.pair[0]).toEqual({ s: 1 });
    }
  });

  it('an ObjectRef nested in a put value comes back as a usable ObjectRef', async () => {
    const inner = ray.put('inner value');
    const outer = ray.put({ ref: inner, list: [inner] });
    const got = await ray.get(outer);
    expect(got.ref).toBeInstanceOf(ray.ObjectRef);
    expect(got.ref.id).toBe(inner.id);
    expect(await got.list[0]).toBe('inner value');
  });
});

describe('large objects in shared memory', () => {
  it('an 8 MB Float64Array is read zero-copy: two gets view the same store memory', async () => {
    const n = 1024 * 1024; // 8 MiB of float64
    const src = new Float64Array(n);
    for (let i = 0; i < n; i += 4096) src[i] = i + 0.5;
    src[n - 1] = -1;
    const ref = ray.put(src);
    const a = await ray.get(ref);
    const b = await ray.get(ref);
    expect(a).toBeInstanceOf(Float64Array);
    expect(a.length).toBe(n);
    expect(a[4096]).toBe(4096.5);
    expect(a[n - 1]).toBe(-1);
    // Both are views over the one mapped store region, not copies.
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer).not.toBe(src.buffer);
    expect(a.buffer.byteLength).toBeGreaterThan(4 * a.byteLength);
    expect(a.buffer.byteLength).toBeGreaterThanOrEqual(STORE / 2);
    expect(a.byteOffset).toBe(b.byteOffset);
  });

  it('a large value returned from a task', async () => {
    const make = ray.remote((n: number) => {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = i * 2;
      return out;
    });
    const n = 2 * 1024 * 1024; // 16 MiB
    const ref = make.remote(n);
    const got = await ref;
    expect(got).toBeInstanceOf(Float64Array);
    expect(got.length).toBe(n);
    expect(got[0]).toBe(0);
    expect(got[12345]).toBe(24690);
    expect(got[n - 1]).toBe((n - 1) * 2);
    // Read from shared memory on this node as well.
    expect(got.buffer.byteLength).toBeGreaterThan(got.byteLength);
  });

  it('a large argument passed to a task, by value and by ref', async () => {
    const sum = ray.remote((a: Float64Array) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i]!;
      return [a.constructor.name, a.length, s];
    });
    const n = 1024 * 1024;
    const arr = new Float64Array(n).fill(0.5);
    const expected = ['Float64Array', n, n * 0.5];
    expect(await sum.remote(arr)).toEqual(expected);
    const ref = ray.put(arr);
    expect(await sum.remote(ref)).toEqual(expected);
    expect(await ray.get([sum.remote(ref), sum.remote(ref)])).toEqual([expected, expected]);
  });

  it('a large Buffer inside an object passed to a task', async () => {
    const f = ray.remote((o: { name: string; data: Buffer }) => [o.name, Buffer.isBuffer(o.data), o.data.length, o.data[o.data.length - 1]]);
    const data = Buffer.alloc(3 * MiB, 1);
    data[data.length - 1] = 99;
    expect(await f.remote({ name: 'blob', data })).toEqual(['blob', true, 3 * MiB, 99]);
  });
});

describe('wait and get timeouts', () => {
  const sleep = ray.remote(async (ms: number, v: unknown) => {
    await new Promise((r) => setTimeout(r, ms));
    return v;
  });
  /** Force-cancels a slow task and waits until its ref settles, so later tests start clean. */
  async function stop(ref: ray.ObjectRef<unknown>): Promise<void> {
    ray.cancel(ref, { force: true });
    await ray.get(ref, { timeoutMs: 10_000 }).catch(() => undefined);
  }

  it('wait returns [ready, notReady] with numReturns', async () => {
    const fast = [ray.put(1), ray.put(2), ray.put(3)];
    const [ready, notReady] = await ray.wait(fast, { numReturns: 2 });
    expect(ready).toHaveLength(2);
    expect(notReady).toHaveLength(1);
    for (const r of [...ready, ...notReady]) expect(fast).toContain(r);
    const [allReady, none] = await ray.wait(fast, { numReturns: 3 });
    expect(allReady).toEqual(fast);
    expect(none).toEqual([]);
  });

  // Ray: python/ray/tests/test_wait.py::test_wait ("call wait with an empty list").
  it('wait([]) settles at once with [[], []] (as Ray); numReturns above 0 is a RangeError', async () => {
    expect(await ray.wait([])).toEqual([[], []]);
    expect(await ray.wait([], { timeoutMs: 0 })).toEqual([[], []]);
    await expect(ray.wait([], { numReturns: 1 })).rejects.toThrow(RangeError);
  });

  it('wait defaults to numReturns 1', async () => {
    const refs = [ray.put('a'), ray.put('b')];
    const [ready, notReady] = await ray.wait(refs);
    expect(ready).toHaveLength(1);
    expect(notReady).toHaveLength(1);
  });

  it('wait with timeoutMs returns what is ready when a task is still running', async () => {
    const slow = sleep.remote(20_000, 'slow');
    const quick = ray.put('quick');
    const t0 = performance.now();
    const [ready, notReady] = await ray.wait([slow, quick], { numReturns: 2, timeoutMs: 300 });
    const elapsed = performance.now() - t0;
    expect(ready).toEqual([quick]);
    expect(notReady).toEqual([slow]);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5000);
    await stop(slow);
  });

  it('wait returns as soon as numReturns tasks finish (different functions)', async () => {
    const slow = sleep.remote(20_000, 'slow');
    const fast = ray.remote(() => 'fast').remote();
    const t0 = performance.now();
    const [ready, notReady] = await ray.wait([slow, fast], { numReturns: 1, timeoutMs: 10_000 });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(ready).toEqual([fast]);
    expect(notReady).toEqual([slow]);
    expect(await fast).toBe('fast');
    await stop(slow);
  });

  it('a quick task is not queued behind a slow task of the same function while a CPU is free', async () => {
    // 2 CPUs: the slow and the fast call must run side by side.
    const slow = sleep.remote(4000, 'slow');
    const fast = sleep.remote(10, 'fast');
    const t0 = performance.now();
    const [ready] = await ray.wait([slow, fast], { numReturns: 1, timeoutMs: 3000 });
    const elapsed = performance.now() - t0;
    await stop(slow);
    expect(ready).toEqual([fast]);
    expect(elapsed).toBeLessThan(2000);
  });

  it('get with timeoutMs rejects with GetTimeoutError', async () => {
    const slow = sleep.remote(20_000, 'slow');
    const t0 = performance.now();
    const err = await ray.get(slow, { timeoutMs: 200 }).catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    expect(err).toBeInstanceOf(ray.GetTimeoutError);
    expect(err).toBeInstanceOf(ray.RayError);
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(5000);
    // list form as well
    const err2 = await ray.get([ray.put(1), slow], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ray.GetTimeoutError);
    await stop(slow);
  });

  it('get with timeoutMs resolves when the value arrives in time', async () => {
    expect(await ray.get(sleep.remote(20, 'ok'), { timeoutMs: 10_000 })).toBe('ok');
  });
});

describe('release', () => {
  it('ref.release() and Symbol.dispose exist and drop the handle', async () => {
    const ref = ray.put({ a: 1 });
    expect(typeof ref.release).toBe('function');
    expect(typeof (ref as unknown as Record<symbol, unknown>)[Symbol.dispose]).toBe('function');
    expect(await ref).toEqual({ a: 1 });
    ref.release();
    ref.release(); // idempotent
    const ref2 = ray.put(2);
    (ref2 as unknown as Record<symbol, () => void>)[Symbol.dispose]!();
    expect(ref.id).toMatch(/^[0-9a-f]+$/);
  });

  it('a released large object is freed from the store', async () => {
    const before = (await ray.debugStats()).node.storeUsed!;
    const ref = ray.put(new Uint8Array(16 * MiB));
    const during = (await ray.debugStats()).node.storeUsed!;
    expect(during - before).toBeGreaterThanOrEqual(16 * MiB);
    ref.release();
    const deadline = Date.now() + 5000;
    let after = (await ray.debugStats()).node.storeUsed!;
    while (after > before + MiB && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      after = (await ray.debugStats()).node.storeUsed!;
    }
    expect(after).toBeLessThanOrEqual(before + MiB);
  });
});

describe('memory stays bounded', () => {
  const BOUND = 64 * MiB;
  const gc = obtainGc();

  async function settledStoreUsed(): Promise<number> {
    // Frees travel asynchronously to the store: poll (bounded) until usage drops below the bound.
    const deadline = Date.now() + 5000;
    let used = (await ray.debugStats()).node.storeUsed!;
    while (used >= BOUND && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      used = (await ray.debugStats()).node.storeUsed!;
    }
    return used;
  }

  // Each case starts from a settled store, independent of the one before.
  beforeEach(async () => {
    gc();
    await new Promise((r) => setTimeout(r, 0));
    await settledStoreUsed();
  });

  it('2,000 puts of 1 MiB, each released, keep the store below 64 MiB (2000 MiB through a 256 MiB store)', async () => {
    let maxUsed = 0;
    for (let i = 0; i < 2000; i++) {
      const ref = ray.put(new Uint8Array(MiB));
      ref.release();
      if (i % 250 === 249) maxUsed = Math.max(maxUsed, (await ray.debugStats()).node.storeUsed!);
    }
    expect(await settledStoreUsed()).toBeLessThan(BOUND);
    expect(maxUsed).toBeLessThan(STORE);
  }, 60_000);

  it('2,000 puts of 1 MiB with refs dropped (no release, garbage collection frees them)', async () => {
    for (let i = 0; i < 2000; i++) {
      ray.put(new Uint8Array(MiB));
      if (i % 50 === 49) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
    }
    gc();
    await new Promise((r) => setImmediate(r));
    expect(await settledStoreUsed()).toBeLessThan(BOUND);
  }, 60_000);

  it('2,000 puts of 1 MiB with refs dropped and no gc() call: GC keeps pace (external memory)', async () => {
    // A program that never calls gc(): puts must keep succeeding.
    for (let i = 0; i < 2000; i++) {
      ray.put(new Uint8Array(MiB));
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    gc();
    await new Promise((r) => setImmediate(r));
    expect(await settledStoreUsed()).toBeLessThan(BOUND);
  }, 60_000);

  it('2,000 large values returned by tasks, read and dropped, with no gc() call: store never fills', async () => {
    const make = ray.remote((i: number) => new Uint8Array(1024 * 1024).fill(i & 0xff));
    // One frame per batch: an async frame may keep its last locals alive
    // across awaits, which would pin the final batch's views.
    const runBatch = async (batch: number): Promise<void> => {
      const refs = Array.from({ length: 100 }, (_, i) => make.remote(batch * 100 + i));
      const vals = await ray.get(refs, { timeoutMs: 20_000 });
      expect(vals[99]![0]).toBe((batch * 100 + 99) & 0xff);
      for (const r of refs) r.release();
    };
    for (let batch = 0; batch < 20; batch++) await runBatch(batch);
    gc();
    await new Promise((r) => setImmediate(r));
    expect(await settledStoreUsed()).toBeLessThan(BOUND);
  }, 90_000);
});
