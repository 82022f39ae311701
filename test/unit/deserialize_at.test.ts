// deserializeAt: layouts decoded by offset out of one buffer (ObjectIO's
// value arena), and the fallback for layouts with out-of-band buffers.
import { describe, expect, it } from 'vitest';
import { deserialize, deserializeAt, serialize, serializeToBytes, writeTo, type RefHooks } from '../../ts/codec/serialization.js';

const hooks: RefHooks = { isRef: () => false, encodeRef: () => new Uint8Array(0), decodeRef: () => ({}) };

describe('deserializeAt', () => {
  it('decodes many small layouts packed into one buffer, each at its offset', () => {
    const values: unknown[] = [0, -1.5, 'héllo', null, undefined, true, 12345678901234567890n, { a: [1, 2], b: 'x' }, new Map([[1, 2]]), Buffer.from('abc')];
    const arena = new Uint8Array(64 * 1024);
    const at: [number, number][] = [];
    let off = 3; // odd start: no alignment is assumed
    for (const v of values) {
      const b = serializeToBytes(v, hooks);
      arena.set(b, off);
      at.push([off, b.byteLength]);
      off += b.byteLength + 5;
    }
    values.forEach((v, i) => expect(deserializeAt(arena, at[i]![0], at[i]![1], hooks)).toEqual(v));
  });

  it('a Buffer decoded out of the buffer, then changed, leaves the layout as it was', () => {
    const arena = new Uint8Array(1024);
    const b = serializeToBytes(Buffer.from('abcdef'), hooks);
    arena.set(b, 100);
    const got = deserializeAt(arena, 100, b.byteLength, hooks) as Buffer;
    expect(got.toString()).toBe('abcdef');
    if (got.buffer === arena.buffer) {
      // A view: it must lie inside the layout's own range.
      expect(got.byteOffset).toBeGreaterThanOrEqual(100);
      expect(got.byteOffset + got.byteLength).toBeLessThanOrEqual(100 + b.byteLength);
    } else {
      got[0] = 0x7a;
      expect((deserializeAt(arena, 100, b.byteLength, hooks) as Buffer).toString()).toBe('abcdef');
    }
  });

  it('a layout with out-of-band buffers at an offset decodes as deserialize() of its range', () => {
    const big = new Float64Array(1024).map((_, i) => i * 0.5);
    const s = serialize({ big, tag: 'x' }, hooks, 'v', { oobThreshold: 16 });
    expect(s.buffers.length).toBe(1);
    const arena = new Uint8Array(s.totalSize + 128);
    writeTo(s, arena.subarray(64, 64 + s.totalSize));
    const a = deserializeAt(arena, 64, s.totalSize, hooks) as { big: Float64Array; tag: string };
    const b = deserialize(arena.subarray(64, 64 + s.totalSize), hooks) as { big: Float64Array; tag: string };
    expect(a.tag).toBe('x');
    expect(Array.from(a.big)).toEqual(Array.from(big));
    expect(Array.from(b.big)).toEqual(Array.from(big));
  });

  it('rejects a range outside the buffer and a short layout', () => {
    const arena = new Uint8Array(32);
    expect(() => deserializeAt(arena, 30, 8, hooks)).toThrow(/outside/);
    expect(() => deserializeAt(arena, 0, 4, hooks)).toThrow(/too short/);
  });
});
