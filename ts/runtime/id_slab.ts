// IdSlab: object and task ids as views into small shared off-heap slabs.
//
// A 20-byte id copied out on its own (`slice`) is a typed array whose bytes
// live on the V8 heap; the first `.buffer`, `subarray` or N-API read of it
// moves them to a new ArrayBuffer with its own backing store (~300 bytes of
// heap and malloc per id, measured). A view into a slab shares one backing
// store with ~100 other ids. A slab is freed when its last view is
// collected, so a program that keeps one id of every slab keeps 2 KiB per id
// kept: the slab size bounds that.

const SLAB_BYTES = 2048;

let slab = new Uint8Array(new ArrayBuffer(SLAB_BYTES));
let used = 0;

/** A copy of `src[start, start + length)`, as a view into a slab when it is small. */
export function copyId(src: Uint8Array, start: number, length: number): Uint8Array {
  if (length > SLAB_BYTES / 8) return src.slice(start, start + length); // off the V8 heap already (> 64 bytes)
  if (used + length > SLAB_BYTES) {
    slab = new Uint8Array(new ArrayBuffer(SLAB_BYTES));
    used = 0;
  }
  const at = used;
  for (let i = 0; i < length; i++) slab[at + i] = src[start + i]!;
  used = at + length;
  return slab.subarray(at, at + length);
}

/** An object id as a compact map key: its bytes as a latin1 string (as the addon's Ready events). */
export function idKey(b: Uint8Array): string {
  if (b.length !== 20) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  return String.fromCharCode(b[0]!, b[1]!, b[2]!, b[3]!, b[4]!, b[5]!, b[6]!, b[7]!, b[8]!, b[9]!,
    b[10]!, b[11]!, b[12]!, b[13]!, b[14]!, b[15]!, b[16]!, b[17]!, b[18]!, b[19]!);
}
