// The allocation-light object paths (object_io.ts, core_worker_objects.cc):
// put ids are views into an id arena, got inline values are copied into a
// value arena, refs register without an unregister token, and large fresh
// typed arrays are copied into plasma with huge-page read advice. Each test
// names what would break if an arena were reused or a view aliased.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { obtainGc } from '../support/gc.js';

const MiB = 1024 * 1024;

beforeAll(() => ray.init({ numCpus: 1, objectStoreMemory: 256 * MiB }));
afterAll(() => ray.shutdown());

describe('put ids from the id arena', () => {
  it('refs of more puts than one arena holds (819 ids) keep distinct ids and their values', async () => {
    const n = 3000;
    const refs = Array.from({ length: n }, (_, i) => ray.put(i));
    expect(new Set(refs.map((r) => r.id)).size).toBe(n);
    for (const r of refs) expect(r.binary.byteLength).toBe(20);
    const values = await ray.get(refs);
    expect(values).toEqual(Array.from({ length: n }, (_, i) => i));
    for (const r of refs) r.release();
  });

  it('a released ref is not counted down again when it is collected (no unregister token)', async () => {
    const gc = obtainGc();
    const keep = ray.put('kept');
    const dropped = Array.from({ length: 100 }, (_, i) => ray.put(i));
    for (const r of dropped) r.release();
    dropped.length = 0;
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(await ray.get(keep)).toBe('kept');
    const again = ray.put('after');
    expect(await ray.get(again)).toBe('after');
  });
});

describe('got values from the value arena', () => {
  it('a Buffer value got many times is a fresh copy each time: mutating one changes neither the object nor earlier copies', async () => {
    const ref = ray.put(Buffer.from('abcdef'));
    const first = (await ray.get(ref)) as Buffer;
    first[0] = 0x7a; // 'z'
    const copies: Buffer[] = [];
    // More bytes than one value arena (256 KiB) so that it is replaced.
    for (let i = 0; i < 50_000; i++) copies.push((await ray.get(ref)) as Buffer);
    expect(first.toString()).toBe('zbcdef');
    for (const c of copies) expect(c.toString()).toBe('abcdef');
    copies[0]![1] = 0x7a;
    expect(copies[1]!.toString()).toBe('abcdef');
    expect(((await ray.get(ref)) as Buffer).toString()).toBe('abcdef');
  });

  it('values close to the inline limit, which do not fit the arena room left, come back whole', async () => {
    const big = new Uint8Array(90 * 1024).map((_, i) => i & 0xff);
    const refs = Array.from({ length: 8 }, () => ray.put(big));
    for (const r of refs) {
      const v = (await ray.get(r)) as Uint8Array;
      expect(v.byteLength).toBe(big.byteLength);
      expect(Buffer.from(v).equals(Buffer.from(big))).toBe(true);
    }
  });

  it('get of a list: ready values at once, pending ones awaited, order kept', async () => {
    const slow = ray.remote(async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return x;
    });
    const list = [ray.put(1), slow.remote(2), ray.put(3), slow.remote(4)];
    expect(await ray.get(list)).toEqual([1, 2, 3, 4]);
  });

  it('get of a list with an error among ready values rejects with that error', async () => {
    const boom = ray.remote(() => {
      throw new RangeError('boom');
    });
    const bad = boom.remote();
    await expect(ray.get(bad)).rejects.toThrow(/boom/);
    await expect(ray.get([ray.put(1), bad])).rejects.toThrow(/boom/);
  });
});

describe('large fresh typed arrays into plasma (huge-page read advice)', () => {
  it('an untouched 40 MiB typed array and one written at its edges come back exact', async () => {
    const fresh = new Float64Array(5 * MiB);
    const edged = new Float64Array(5 * MiB + 3);
    edged[0] = 1.5;
    edged[edged.length - 1] = -2.5;
    edged[(512 * 1024) + 7] = 42;
    const [a, b] = await ray.get([ray.put(fresh), ray.put(edged)]) as [Float64Array, Float64Array];
    expect(a.length).toBe(fresh.length);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(b.length).toBe(edged.length);
    expect(b[0]).toBe(1.5);
    expect(b[b.length - 1]).toBe(-2.5);
    expect(b[(512 * 1024) + 7]).toBe(42);
    expect(b.reduce((s, x) => s + x, 0)).toBe(41);
  });

  it('puts of fresh 8 MiB arrays in a task come back exact in the driver', async () => {
    const make = ray.remote(async () => {
      const r = (await import('rayts' as string)) as typeof ray;
      const out = [];
      for (let i = 0; i < 4; i++) {
        const a = new BigInt64Array(1024 * 1024);
        a[i] = BigInt(i + 1);
        out.push(r.put(a));
      }
      return out;
    });
    const refs = (await ray.get(make.remote())) as ray.ObjectRef<BigInt64Array>[];
    const arrays = await ray.get(refs);
    arrays.forEach((a, i) => {
      expect(a.length).toBe(MiB);
      expect(a[i]).toBe(BigInt(i + 1));
      let nonzero = 0;
      for (let j = 0; j < a.length; j++) if (a[j] !== 0n) nonzero++;
      expect(nonzero).toBe(1);
    });
  });

  it('a synchronous loop of put + release of 8 MiB arrays through a 256 MiB store spills nothing (deletes are sent before each create)', async () => {
    const before = (await ray.storeStats()).spillCount;
    for (let i = 0; i < 100; i++) ray.put(new Float64Array(1024 * 1024)).release();
    expect((await ray.storeStats()).spillCount - before).toBe(0);
  });
});
