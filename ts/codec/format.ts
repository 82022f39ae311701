// The codec's shared vocabulary: the object layout, the types both sides
// use, the out-of-band buffer kinds, and the marker classes (with their
// msgpackr extension codes) that stand in for refs, out-of-band buffers,
// errors, Buffers and -0 in a transformed copy of the value. See
// serialization.ts for the codec's contract.
//
// Layout (all integers little-endian), produced by writeTo() and
// serializeToBytes(), read by deserialize():
//   u32 magic/version | u32 body length | u32 buffer count
//   per buffer: u64 offset | u64 length | u8 kind      (offsets from layout start)
//   body (msgpack) | zero padding to 64 | buffer0 | padding to 64 | buffer1 ...
//
// Marker classes (below) stand in for refs, out-of-band buffers, errors,
// Buffers and -0 in a transformed copy of the value; they are registered as
// msgpackr extensions 20..24 (the user range). Only values that contain one
// of these are copied; everything else is packed as given.

/** How refs (ObjectRef, ActorHandle) nested in a value are encoded. */
export interface RefHooks {
  isRef(v: unknown): boolean;
  /** Opaque bytes that decodeRef() turns back into an equivalent ref. */
  encodeRef(v: object): Uint8Array;
  decodeRef(b: Uint8Array): object;
}

/** A serialized value, before it is laid out in memory. */
export interface Serialized {
  /** msgpack body; out-of-band buffers are referenced from it by index. */
  body: Uint8Array;
  /** out-of-band buffers, in index order (an ArrayBuffer is given as a Uint8Array over it). */
  buffers: ArrayBufferView[];
  /** BufferKind of each entry of `buffers`. */
  kinds: BufferKind[];
  /** encodeRef() output of every distinct ref found in the value. */
  nestedRefs: Uint8Array[];
  /** layoutSize() of this value: bytes writeTo() needs. */
  totalSize: number;
}

export interface SerializeOptions {
  /** Binary values with byteLength above this travel out of band. Default 100 KiB. */
  oobThreshold?: number;
}

export const DEFAULT_OOB_THRESHOLD = 100 * 1024;
/** 'RTS' + layout version 1. */
export const LAYOUT_MAGIC = 0x52545301;
export const HEADER_SIZE = 12;
export const BUFFER_ENTRY_SIZE = 17;
export const BUFFER_ALIGNMENT = 64;

/** Kind code of an out-of-band buffer in the layout header. */
export const BufferKind = {
  ArrayBuffer: 0,
  Buffer: 1,
  Uint8Array: 2,
  Int8Array: 3,
  Uint8ClampedArray: 4,
  Int16Array: 5,
  Uint16Array: 6,
  Int32Array: 7,
  Uint32Array: 8,
  Float32Array: 9,
  Float64Array: 10,
  BigInt64Array: 11,
  BigUint64Array: 12,
  DataView: 13,
} as const;
export type BufferKind = (typeof BufferKind)[keyof typeof BufferKind];

export type TypedArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView;
  new (buffer: ArrayBufferLike): ArrayBufferView;
  readonly BYTES_PER_ELEMENT: number;
};

export const TYPED_ARRAY_KINDS = new Map<unknown, BufferKind>([
  [Uint8Array, BufferKind.Uint8Array],
  [Int8Array, BufferKind.Int8Array],
  [Uint8ClampedArray, BufferKind.Uint8ClampedArray],
  [Int16Array, BufferKind.Int16Array],
  [Uint16Array, BufferKind.Uint16Array],
  [Int32Array, BufferKind.Int32Array],
  [Uint32Array, BufferKind.Uint32Array],
  [Float32Array, BufferKind.Float32Array],
  [Float64Array, BufferKind.Float64Array],
  [BigInt64Array, BufferKind.BigInt64Array],
  [BigUint64Array, BufferKind.BigUint64Array],
]);
export const KIND_CTORS: (TypedArrayCtor | undefined)[] = [];
for (const [ctor, kind] of TYPED_ARRAY_KINDS) KIND_CTORS[kind] = ctor as TypedArrayCtor;

// ---------------------------------------------------------------------------
// Markers and their msgpackr extensions

export const EXT_REF = 20;
export const EXT_OOB = 21;
export const EXT_ERROR = 22;
export const EXT_BUFFER = 23;
export const EXT_NEG_ZERO = 24;

export class RefMarker {
  constructor(readonly bytes: Uint8Array) {}
}
export class OobMarker {
  constructor(readonly index: number) {}
}
export class BufferMarker {
  constructor(readonly bytes: Uint8Array) {}
}
export class NegZeroMarker {}
export const NEG_ZERO = new NegZeroMarker();
/** [name, message, stack, own enumerable fields, cause?] */
export class ErrorMarker {
  data: unknown[] = [];
}
