// Value codec for values that cross processes (task arguments, return values,
// ray.put objects).
//
// Codec choice (measured on this machine kind, Node 20.20, 2 cores shared
// with other builds, so +-30%; best of 5-7 runs, ns per call, encode / decode):
//
//   value                        v8.serialize      msgpackr structuredClone+records
//   number 42.5                  2086 / 1407       ~300 / 110
//   small object (5 fields)      6327 / 2846       1279 / 678
//   array of 1000 numbers        7529 / 36228      30623 / 14109
//   100 objects {id,name,ok}     27961 / 68391     36423 / 15750
//   Map of 2 entries             3123 / 2011       563 / 248
//
// msgpackr wins every round trip (v8 only encodes the number array faster
// and loses it back on decode), so the codec is msgpackr with
// {structuredClone, moreTypes} and records on. Records are required: with
// useRecords:false a Map and a plain object encode alike and a Map comes
// back as an object; they also make arrays of same-shaped objects 3x faster
// to decode. Record definitions are inline in each message (no shared
// structures), so any process can decode any message.
//
// This module as built (validation scan + layout header included):
// serializeToBytes / deserialize: number 254 / 324, string 371 / 280,
// small object 1438 / 985, 1000 numbers 25979 / 16674, 100 objects
// 32141 / 8891; an 8 MiB Float64Array: serialize+writeTo 682 us
// (12 GB/s, one memcpy), deserialize 474 ns (a view, no copy).
//
// Contract and decisions:
// - Supported: primitives incl. undefined and -0, BigInt of any size,
//   arrays, plain objects (also null-prototype), Map, Set, Date, RegExp,
//   Error (name/message/stack/cause and own enumerable fields; built-in
//   error classes come back as themselves, others as Error with the name
//   set), ArrayBuffer, every TypedArray, DataView, Buffer (comes back as a
//   Buffer), refs (through RefHooks) anywhere inside.
// - Shared sub-objects and cycles are preserved (structured clone).
// - Class instances are rejected with a TypeError naming the class and the
//   path, unless hooks.isRef() claims them. We cannot ship a class the way
//   Ray pickles one, and copying own fields silently drops private #fields
//   and methods, which is not detectable reliably; failing at the call site
//   is better than a half-copied object in the worker. Functions, symbols,
//   Promise, WeakMap/WeakSet/WeakRef and SharedArrayBuffer are rejected
//   likewise. Subclasses of Map/Set/typed arrays count as class instances;
//   subclasses of Error are sent as errors (by name).
// - Binary data over `oobThreshold` bytes (TypedArray, Buffer, DataView,
//   ArrayBuffer) is not copied into the msgpack body: it is listed as an
//   out-of-band buffer and written after the body, 64-byte aligned.
//   deserialize() returns views over the input's memory for those (zero
//   copy) when the input itself is suitably aligned (plasma memory is); an
//   out-of-band ArrayBuffer is always copied, since an ArrayBuffer cannot be
//   a view over part of another.
//
// Files: format.ts (layout, types, markers), encoder.ts, decoder.ts; this
// module registers the marker extensions with msgpackr and is the codec's
// entry point (import the codec from here, so the extensions are in place).

import { addExtension } from 'msgpackr';
import {
  BufferMarker, ErrorMarker, EXT_BUFFER, EXT_ERROR, EXT_NEG_ZERO, EXT_OOB, EXT_REF, NegZeroMarker, OobMarker, RefMarker,
} from './format.js';
import { readError, readOob, readRef } from './decoder.js';

export {
  BUFFER_ALIGNMENT, BUFFER_ENTRY_SIZE, BufferKind, DEFAULT_OOB_THRESHOLD, HEADER_SIZE, LAYOUT_MAGIC,
} from './format.js';
export type { RefHooks, Serialized, SerializeOptions } from './format.js';
export { layoutSize, serialize, serializeToBytes, writeTo } from './encoder.js';
export { deserialize, deserializeAt } from './decoder.js';

addExtension({ Class: RefMarker, type: EXT_REF, write: (m: RefMarker) => m.bytes, read: (b: Uint8Array) => readRef(b) });
addExtension({ Class: OobMarker, type: EXT_OOB, write: (m: OobMarker) => m.index, read: (i: number) => readOob(i) });
addExtension({
  Class: BufferMarker,
  type: EXT_BUFFER,
  write: (m: BufferMarker) => m.bytes,
  read: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
});
addExtension({ Class: NegZeroMarker, type: EXT_NEG_ZERO, write: () => null, read: () => -0 });
addExtension({ Class: ErrorMarker, type: EXT_ERROR, write: (m: ErrorMarker) => m.data, read: (d: unknown[]) => readError(d) });
