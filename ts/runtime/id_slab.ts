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

/** A slab, and how many handles (see handleOf) into it are registered. */
interface Slab {
  bytes: Uint8Array;
  no: number;
  handles: number;
}

/** Slabs with registered handles, by number. */
const slabs = new Map<number, Slab>();
const freeNumbers: number[] = [];
let nextNumber = 0;
let slab = newSlab();
let used = 0;
/** The bytes the last copyId wrote: handleOf reads `.buffer` only of views inside them. */
let lastFrom = 0;
let lastTo = 0;

function newSlab(): Slab {
  return { bytes: new Uint8Array(new ArrayBuffer(SLAB_BYTES)), no: freeNumbers.pop() ?? nextNumber++, handles: 0 };
}

/** A copy of `src[start, start + length)`, as a view into a slab when it is small. */
export function copyId(src: Uint8Array, start: number, length: number): Uint8Array {
  if (length > SLAB_BYTES / 8) return src.slice(start, start + length); // off the V8 heap already (> 64 bytes)
  if (used + length > SLAB_BYTES) {
    if (slab.handles === 0) freeNumbers.push(slab.no);
    slab = newSlab();
    used = 0;
  }
  const at = used;
  const bytes = slab.bytes;
  for (let i = 0; i < length; i++) bytes[at + i] = src[start + i]!;
  used = at + length;
  lastFrom = at;
  lastTo = used;
  return bytes.subarray(at, at + length);
}

/**
 * Copies the 20-byte id at `src[start]` into a slab and returns a registered
 * handle naming it (see handleOf), making no view: a decoded ref that is
 * never read costs no typed array.
 */
export function copyIdHandle(src: Uint8Array, start: number): number {
  if (used + 20 > SLAB_BYTES) {
    if (slab.handles === 0) freeNumbers.push(slab.no);
    slab = newSlab();
    used = 0;
  }
  const at = used;
  const bytes = slab.bytes;
  for (let i = 0; i < 20; i++) bytes[at + i] = src[start + i]!;
  used = at + 20;
  lastFrom = at;
  lastTo = used;
  if (slab.handles++ === 0) slabs.set(slab.no, slab);
  return slab.no * SLAB_BYTES + at;
}

/**
 * A number that names the 20-byte id `view` (a view into what the last
 * copyId wrote) while it is registered: a handle can keep just this number
 * (a Smi) and drop the view. -1 if `view` is not one. (The range is checked
 * first: `.buffer` of a small typed array on the V8 heap would move its
 * bytes to a new ArrayBuffer.)
 */
export function handleOf(view: Uint8Array): number {
  const off = view.byteOffset;
  if (view.length !== 20 || off < lastFrom || off + 20 > lastTo || view.buffer !== slab.bytes.buffer) return -1;
  if (slab.handles++ === 0) slabs.set(slab.no, slab);
  return slab.no * SLAB_BYTES + off;
}

/** A view of the id a handle names (a new view per call). */
export function idOfHandle(h: number): Uint8Array {
  const s = slabs.get(Math.floor(h / SLAB_BYTES))!;
  const at = h % SLAB_BYTES;
  return s.bytes.subarray(at, at + 20);
}

/** Copies the id a handle names to `dst[at, at + 20)` (no view made). */
export function writeHandleId(h: number, dst: Uint8Array, at: number): void {
  const bytes = slabs.get(Math.floor(h / SLAB_BYTES))!.bytes;
  const from = h % SLAB_BYTES;
  for (let i = 0; i < 20; i++) dst[at + i] = bytes[from + i]!;
}

/** The handle is no longer registered; its slab number is reused once none of its handles is. */
export function dropHandle(h: number): void {
  const s = slabs.get(Math.floor(h / SLAB_BYTES));
  if (s === undefined || --s.handles > 0) return;
  slabs.delete(s.no);
  if (s !== slab) freeNumbers.push(s.no);
}

/** An object id as a compact map key: its bytes as a latin1 string (as the addon's Ready events). */
export function idKey(b: Uint8Array): string {
  if (b.length !== 20) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  return String.fromCharCode(b[0]!, b[1]!, b[2]!, b[3]!, b[4]!, b[5]!, b[6]!, b[7]!, b[8]!, b[9]!,
    b[10]!, b[11]!, b[12]!, b[13]!, b[14]!, b[15]!, b[16]!, b[17]!, b[18]!, b[19]!);
}
