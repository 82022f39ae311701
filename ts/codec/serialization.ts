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

import { Packr, Unpackr, addExtension } from 'msgpackr';
import { RaySystemError } from '../api/errors.js';

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

type TypedArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView;
  new (buffer: ArrayBufferLike): ArrayBufferView;
  readonly BYTES_PER_ELEMENT: number;
};

const TYPED_ARRAY_KINDS = new Map<unknown, BufferKind>([
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
const KIND_CTORS: (TypedArrayCtor | undefined)[] = [];
for (const [ctor, kind] of TYPED_ARRAY_KINDS) KIND_CTORS[kind] = ctor as TypedArrayCtor;

// ---------------------------------------------------------------------------
// Markers and their msgpackr extensions

const EXT_REF = 20;
const EXT_OOB = 21;
const EXT_ERROR = 22;
const EXT_BUFFER = 23;
const EXT_NEG_ZERO = 24;

class RefMarker {
  constructor(readonly bytes: Uint8Array) {}
}
class OobMarker {
  constructor(readonly index: number) {}
}
class BufferMarker {
  constructor(readonly bytes: Uint8Array) {}
}
class NegZeroMarker {}
const NEG_ZERO = new NegZeroMarker();
/** [name, message, stack, own enumerable fields, cause?] */
class ErrorMarker {
  data: unknown[] = [];
}

const BUILTIN_ERRORS: Record<string, new (message?: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

// State of the deserialize() call in progress (saved and restored around
// re-entrant calls from decodeRef); module variables, not an object, to keep
// decoding a small value allocation-free.
let decodeData: Uint8Array | undefined;
let decodeHooks: RefHooks | undefined;
let decodeCount = 0;
/** Collects the zero-copy views deserialize() makes (views over `data`'s memory). */
let decodeViews: ArrayBufferView[] | undefined;

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

function readRef(bytes: Uint8Array): object {
  if (decodeHooks === undefined) throw new RaySystemError('ref marker decoded outside deserialize()');
  return decodeHooks.decodeRef(bytes);
}

function readError(d: unknown[]): Error {
  const [name, message, stack, fields, cause] = d as [string, string, string | undefined, Record<string, unknown> | null, unknown];
  const Ctor = Object.hasOwn(BUILTIN_ERRORS, name) ? BUILTIN_ERRORS[name]! : Error;
  const e = new Ctor(message);
  if (e.name !== name) Object.defineProperty(e, 'name', { value: name, writable: true, configurable: true, enumerable: false });
  if (stack === undefined) delete (e as { stack?: string }).stack;
  else Object.defineProperty(e, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
  if (d.length > 4) Object.defineProperty(e, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  if (fields !== null && typeof fields === 'object') Object.assign(e, fields);
  return e;
}

function readOob(index: number): unknown {
  const data = decodeData;
  if (data === undefined || !Number.isInteger(index) || index < 0 || index >= decodeCount) {
    throw new RaySystemError(`out-of-band buffer #${index} is not in the object layout`);
  }
  const entry = HEADER_SIZE + index * BUFFER_ENTRY_SIZE;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const offset = v.getUint32(entry, true) + v.getUint32(entry + 4, true) * 0x100000000;
  const length = v.getUint32(entry + 8, true) + v.getUint32(entry + 12, true) * 0x100000000;
  const kind = v.getUint8(entry + 16);
  if (offset + length > data.byteLength) {
    throw new RaySystemError(`out-of-band buffer #${index} (${offset}+${length}) is outside the ${data.byteLength}-byte layout`);
  }
  const abs = data.byteOffset + offset;
  const zeroCopy = <V extends ArrayBufferView>(view: V): V => {
    decodeViews?.push(view);
    return view;
  };
  switch (kind) {
    case BufferKind.ArrayBuffer:
      return data.buffer.slice(abs, abs + length);
    case BufferKind.Buffer:
      return zeroCopy(Buffer.from(data.buffer, abs, length));
    case BufferKind.DataView:
      return zeroCopy(new DataView(data.buffer, abs, length));
    default: {
      const Ctor = KIND_CTORS[kind];
      if (Ctor === undefined) throw new RaySystemError(`out-of-band buffer #${index} has unknown kind ${kind}`);
      const size = Ctor.BYTES_PER_ELEMENT;
      if (length % size !== 0) throw new RaySystemError(`out-of-band buffer #${index}: ${length} bytes is not a whole number of elements`);
      if (abs % size === 0) return zeroCopy(new Ctor(data.buffer, abs, length / size));
      // Input not aligned for this element size (not plasma memory): copy.
      return new Ctor(data.slice(offset, offset + length).buffer);
    }
  }
}

// ---------------------------------------------------------------------------
// Packers

const packr = new Packr({ structuredClone: true, moreTypes: true });
const primitivePackr = new Packr({ moreTypes: true, useRecords: false });
const unpackr = new Unpackr({ structuredClone: true, moreTypes: true });
// RESERVE_START_SPACE (2048) | bytes to reserve; the constant is not exported by every msgpackr build.
const RESERVE_HEADER = 2048 | HEADER_SIZE;

// ---------------------------------------------------------------------------
// Pass 1: validate, and find out whether the value needs markers.

interface Scan {
  hooks: RefHooks;
  oobThreshold: number;
  /** Objects visited; only kept in careful mode (see validate()). */
  seen: Set<object> | undefined;
  /** Objects visited so far in fast mode. */
  visited: number;
  /** Path to the value being scanned; formatted only when an error is thrown. */
  path: PathSegment[];
  label: string;
  special: boolean;
}

/** number: array index; string: object key; otherwise a Map/Set position. */
type PathSegment = number | string | MapKeySegment | MapValueSegment | SetSegment | ErrorCauseSegment;
class MapKeySegment {
  constructor(readonly i: number) {}
}
class MapValueSegment {
  constructor(
    readonly key: unknown,
    readonly i: number,
  ) {}
}
class SetSegment {
  constructor(readonly i: number) {}
}
class ErrorCauseSegment {}
const ERROR_CAUSE = new ErrorCauseSegment();

function formatSegment(p: PathSegment): string {
  if (typeof p === 'number') return `[${p}]`;
  if (typeof p === 'string') return /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  if (p instanceof MapKeySegment) return `.keys()[${p.i}]`;
  if (p instanceof SetSegment) return `.values()[${p.i}]`;
  if (p instanceof ErrorCauseSegment) return '.cause';
  const key = p.key;
  switch (typeof key) {
    case 'string':
      return `.get(${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key)})`;
    case 'number':
    case 'boolean':
      return `.get(${String(key)})`;
    case 'bigint':
      return `.get(${String(key)}n)`;
    default:
      return `.get(<key #${p.i}>)`;
  }
}

function fail(s: Scan, reason: string): TypeError {
  const where = s.path.length > 0 ? ` at ${s.path.map(formatSegment).join('')}` : '';
  return new TypeError(`cannot serialize ${s.label}${where}: ${reason}`);
}

function className(v: object): string {
  try {
    const ctor = (v as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor === 'function' && typeof ctor.name === 'string' && ctor.name !== '') return ctor.name;
  } catch {
    // fall through
  }
  return Object.prototype.toString.call(v).slice(8, -1);
}

function rejectObject(s: Scan, v: object): TypeError {
  if (v instanceof Promise) return fail(s, 'a Promise cannot be sent to another process (await it first, or pass an ObjectRef)');
  if (v instanceof WeakMap || v instanceof WeakSet || (typeof WeakRef === 'function' && v instanceof WeakRef)) {
    return fail(s, `a ${className(v)} cannot be sent to another process`);
  }
  if (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer) {
    return fail(s, 'a SharedArrayBuffer cannot be sent to another process (copy it into an ArrayBuffer)');
  }
  const name = className(v);
  return fail(
    s,
    `instances of class ${name} cannot be sent to another process (send its data as a plain object, or put it in an actor)`,
  );
}

/** False for values scan() would accept without looking further (the common case, checked inline). */
function needsScan(x: unknown): boolean {
  const t = typeof x;
  return t === 'object' ? x !== null : t === 'function' || t === 'symbol' || x === 0;
}

function scanChild(x: unknown, seg: PathSegment, s: Scan): void {
  s.path.push(seg);
  scan(x, s);
  s.path.pop();
}

function scan(v: unknown, s: Scan): void {
  switch (typeof v) {
    case 'number':
      if (v === 0 && 1 / v < 0) s.special = true;
      return;
    case 'string':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return;
    case 'function':
      throw fail(s, 'functions cannot be sent to another process');
    case 'symbol':
      throw fail(s, 'symbols cannot be sent to another process');
    default:
      break;
  }
  if (v === null) return;
  const o = v as object;
  if (s.seen !== undefined) {
    if (s.seen.has(o)) return;
    s.seen.add(o);
  } else if (++s.visited > FAST_SCAN_MAX_OBJECTS || s.path.length > FAST_SCAN_MAX_DEPTH) {
    throw RESCAN;
  }
  if (s.hooks.isRef(o)) {
    s.special = true;
    return;
  }
  if (Array.isArray(o)) {
    const a = o as unknown[];
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      if (needsScan(x)) scanChild(x, i, s);
    }
    return;
  }
  if (ArrayBuffer.isView(o)) {
    if (Buffer.isBuffer(o)) s.special = true;
    else if (o instanceof DataView) {
      if (o.byteLength > s.oobThreshold) s.special = true;
    } else if (TYPED_ARRAY_KINDS.has(o.constructor)) {
      if (o.byteLength > s.oobThreshold) s.special = true;
    } else throw rejectObject(s, o);
    return;
  }
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto === Object.prototype || proto === null) {
    const rec = o as Record<string, unknown>;
    const keys = Object.keys(rec);
    for (let i = 0; i < keys.length; i++) {
      const x = rec[keys[i]!];
      if (needsScan(x)) scanChild(x, keys[i]!, s);
    }
    return;
  }
  if (proto === Map.prototype) {
    let i = 0;
    for (const [key, value] of o as Map<unknown, unknown>) {
      if (needsScan(key)) scanChild(key, new MapKeySegment(i), s);
      if (needsScan(value)) scanChild(value, new MapValueSegment(key, i), s);
      i++;
    }
    return;
  }
  if (proto === Set.prototype) {
    let i = 0;
    for (const value of o as Set<unknown>) {
      if (needsScan(value)) scanChild(value, new SetSegment(i), s);
      i++;
    }
    return;
  }
  if (proto === Date.prototype || proto === RegExp.prototype) return;
  if (o instanceof ArrayBuffer && proto === ArrayBuffer.prototype) {
    if (o.byteLength > s.oobThreshold) s.special = true;
    return;
  }
  if (o instanceof Error) {
    s.special = true;
    const rec = o as unknown as Record<string, unknown>;
    if (Object.hasOwn(o, 'cause')) scanChild(rec.cause, ERROR_CAUSE, s);
    for (const key of Object.keys(o)) scanChild(rec[key], key, s);
    return;
  }
  throw rejectObject(s, o);
}

// ---------------------------------------------------------------------------
// Pass 2 (only when pass 1 found something special): a copy with markers.

interface Transform {
  hooks: RefHooks;
  oobThreshold: number;
  memo: Map<object, unknown>;
  buffers: ArrayBufferView[];
  kinds: BufferKind[];
  nestedRefs: Uint8Array[];
}

function outOfBand(t: Transform, view: ArrayBufferView, kind: BufferKind): OobMarker {
  t.buffers.push(view);
  t.kinds.push(kind);
  return new OobMarker(t.buffers.length - 1);
}

function setKey(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
  else out[key] = value;
}

function transform(v: unknown, t: Transform): unknown {
  if (typeof v !== 'object' || v === null) {
    return typeof v === 'number' && v === 0 && 1 / v < 0 ? NEG_ZERO : v;
  }
  const done = t.memo.get(v);
  if (done !== undefined) return done;
  let out: unknown;
  if (t.hooks.isRef(v)) {
    const bytes = t.hooks.encodeRef(v);
    t.nestedRefs.push(bytes);
    out = new RefMarker(bytes);
    t.memo.set(v, out);
    return out;
  }
  if (Array.isArray(v)) {
    const a = v as unknown[];
    const copy = new Array<unknown>(a.length);
    t.memo.set(v, copy);
    for (let i = 0; i < a.length; i++) copy[i] = transform(a[i], t);
    return copy;
  }
  if (ArrayBuffer.isView(v)) {
    const big = v.byteLength > t.oobThreshold;
    if (Buffer.isBuffer(v)) {
      out = big ? outOfBand(t, v, BufferKind.Buffer) : new BufferMarker(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    } else if (!big) {
      out = v;
    } else if (v instanceof DataView) {
      out = outOfBand(t, v, BufferKind.DataView);
    } else {
      out = outOfBand(t, v, TYPED_ARRAY_KINDS.get(v.constructor)!);
    }
    t.memo.set(v, out);
    return out;
  }
  if (v instanceof ArrayBuffer) {
    out = v.byteLength > t.oobThreshold ? outOfBand(t, new Uint8Array(v), BufferKind.ArrayBuffer) : v;
    t.memo.set(v, out);
    return out;
  }
  if (v instanceof Error) {
    const marker = new ErrorMarker();
    t.memo.set(v, marker);
    const rec = v as unknown as Record<string, unknown>;
    const keys = Object.keys(v);
    let fields: Record<string, unknown> | null = null;
    if (keys.length > 0) {
      fields = {};
      for (const key of keys) setKey(fields, key, transform(rec[key], t));
    }
    const stack = typeof v.stack === 'string' ? v.stack : undefined;
    marker.data = [String(v.name), String(v.message), stack, fields];
    if (Object.hasOwn(v, 'cause')) marker.data.push(transform(rec.cause, t));
    return marker;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    const copy: Record<string, unknown> = proto === null ? (Object.create(null) as Record<string, unknown>) : {};
    t.memo.set(v, copy);
    const rec = v as Record<string, unknown>;
    for (const key of Object.keys(rec)) setKey(copy, key, transform(rec[key], t));
    return copy;
  }
  if (proto === Map.prototype) {
    const copy = new Map<unknown, unknown>();
    t.memo.set(v, copy);
    for (const [key, value] of v as Map<unknown, unknown>) copy.set(transform(key, t), transform(value, t));
    return copy;
  }
  if (proto === Set.prototype) {
    const copy = new Set<unknown>();
    t.memo.set(v, copy);
    for (const value of v as Set<unknown>) copy.add(transform(value, t));
    return copy;
  }
  // Date, RegExp: packed as they are.
  t.memo.set(v, v);
  return v;
}

// ---------------------------------------------------------------------------
// Public API

// Fast mode scans without remembering visited objects (no Set, no identity
// hashes): fine for the small trees most calls pass. A value with more than
// FAST_SCAN_MAX_OBJECTS objects or deeper than FAST_SCAN_MAX_DEPTH (which is
// also what a cycle looks like) is scanned again in careful mode, which
// visits each object once.
const FAST_SCAN_MAX_OBJECTS = 2000;
const FAST_SCAN_MAX_DEPTH = 64;
const RESCAN = new Error('rescan with a visited set');

/** Validates `value`; returns true when it contains something that needs markers. */
function validate(value: unknown, hooks: RefHooks, label: string, oobThreshold: number): boolean {
  const s: Scan = { hooks, oobThreshold, seen: undefined, visited: 0, path: [], label, special: false };
  try {
    scan(value, s);
  } catch (e) {
    if (e !== RESCAN) throw e;
    s.seen = new Set();
    s.path = [];
    s.special = false;
    scan(value, s);
  }
  return s.special;
}

function isPlainPrimitive(value: unknown): boolean {
  const t = typeof value;
  return (
    t === 'string' ||
    t === 'boolean' ||
    t === 'undefined' ||
    value === null ||
    (t === 'number' && !(value === 0 && 1 / (value as number) < 0))
  );
}

/**
 * Serializes `value`. Binary data over options.oobThreshold is left out of
 * the body and listed in `buffers`; refs are encoded through `hooks` and
 * listed in `nestedRefs`. `label` names the value in errors ('argument 1',
 * 'return value').
 */
export function serialize(value: unknown, hooks: RefHooks, label = 'value', options?: SerializeOptions): Serialized {
  const oobThreshold = options?.oobThreshold ?? DEFAULT_OOB_THRESHOLD;
  let body: Uint8Array;
  let buffers: ArrayBufferView[] = [];
  let kinds: BufferKind[] = [];
  let nestedRefs: Uint8Array[] = [];
  if (isPlainPrimitive(value) || typeof value === 'bigint') {
    body = primitivePackr.pack(value);
  } else if (!validate(value, hooks, label, oobThreshold)) {
    body = packr.pack(value);
  } else {
    const t: Transform = { hooks, oobThreshold, memo: new Map(), buffers, kinds, nestedRefs };
    body = packr.pack(transform(value, t));
    ({ buffers, kinds, nestedRefs } = t);
  }
  const s: Serialized = { body, buffers, kinds, nestedRefs, totalSize: 0 };
  s.totalSize = layoutSize(s);
  return s;
}

const align = (n: number): number => Math.ceil(n / BUFFER_ALIGNMENT) * BUFFER_ALIGNMENT;

/** Bytes needed by writeTo(s, ...). */
export function layoutSize(s: Serialized): number {
  const bodyEnd = HEADER_SIZE + s.buffers.length * BUFFER_ENTRY_SIZE + s.body.byteLength;
  if (s.buffers.length === 0) return bodyEnd;
  let end = bodyEnd;
  for (const b of s.buffers) end = align(end) + b.byteLength;
  return end;
}

/**
 * Writes the layout of `s` to target[0 .. layoutSize(s)). For zero-copy
 * reads target should start 64-byte aligned (plasma buffers do).
 */
export function writeTo(s: Serialized, target: Uint8Array): void {
  const size = layoutSize(s);
  if (target.byteLength < size) {
    throw new RangeError(`writeTo: target has ${target.byteLength} bytes, the object layout needs ${size}`);
  }
  const n = s.buffers.length;
  const view = new DataView(target.buffer, target.byteOffset, size);
  view.setUint32(0, LAYOUT_MAGIC, true);
  view.setUint32(4, s.body.byteLength, true);
  view.setUint32(8, n, true);
  let pos = HEADER_SIZE + n * BUFFER_ENTRY_SIZE;
  target.set(s.body, pos);
  pos += s.body.byteLength;
  for (let i = 0; i < n; i++) {
    const b = s.buffers[i]!;
    const start = align(pos);
    target.fill(0, pos, start);
    const entry = HEADER_SIZE + i * BUFFER_ENTRY_SIZE;
    view.setUint32(entry, start % 0x100000000, true);
    view.setUint32(entry + 4, Math.floor(start / 0x100000000), true);
    view.setUint32(entry + 8, b.byteLength % 0x100000000, true);
    view.setUint32(entry + 12, Math.floor(b.byteLength / 0x100000000), true);
    view.setUint8(entry + 16, s.kinds[i]!);
    target.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), start);
    pos = start + b.byteLength;
  }
}

function writeSmallHeader(out: Uint8Array, bodyLength: number): void {
  out[0] = LAYOUT_MAGIC & 0xff;
  out[1] = (LAYOUT_MAGIC >>> 8) & 0xff;
  out[2] = (LAYOUT_MAGIC >>> 16) & 0xff;
  out[3] = LAYOUT_MAGIC >>> 24;
  out[4] = bodyLength & 0xff;
  out[5] = (bodyLength >>> 8) & 0xff;
  out[6] = (bodyLength >>> 16) & 0xff;
  out[7] = bodyLength >>> 24;
  out[8] = 0;
  out[9] = 0;
  out[10] = 0;
  out[11] = 0;
}

/**
 * Fast path for small values: the whole layout (no out-of-band buffers,
 * binary data inline) in one Uint8Array. The result is a view into a slab
 * msgpackr allocates for many messages; copy it if you keep it for long.
 * Refs found are pushed to `nestedRefsOut` when given.
 */
export function serializeToBytes(value: unknown, hooks: RefHooks, label = 'value', nestedRefsOut?: Uint8Array[]): Uint8Array {
  let out: Uint8Array;
  if (isPlainPrimitive(value) || typeof value === 'bigint') {
    out = primitivePackr.pack(value, RESERVE_HEADER);
  } else if (!validate(value, hooks, label, Infinity)) {
    out = packr.pack(value, RESERVE_HEADER);
  } else {
    const t: Transform = { hooks, oobThreshold: Infinity, memo: new Map(), buffers: [], kinds: [], nestedRefs: nestedRefsOut ?? [] };
    out = packr.pack(transform(value, t), RESERVE_HEADER);
  }
  writeSmallHeader(out, out.byteLength - HEADER_SIZE);
  return out;
}

/**
 * Reads a layout written by writeTo() or serializeToBytes(). Out-of-band
 * typed arrays, Buffers and DataViews are views over data.buffer (no copy);
 * each such view is also pushed to `views` when given (the caller keeps the
 * memory alive for as long as any of them lives).
 */
export function deserialize(data: Uint8Array, hooks: RefHooks, views?: ArrayBufferView[]): unknown {
  if (data.byteLength < HEADER_SIZE) throw new RaySystemError(`object layout too short: ${data.byteLength} bytes`);
  const magic = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
  if (magic !== LAYOUT_MAGIC) {
    throw new RaySystemError(`not a rayts object layout (magic 0x${magic.toString(16)}, expected 0x${LAYOUT_MAGIC.toString(16)})`);
  }
  const bodyLength = (data[4]! | (data[5]! << 8) | (data[6]! << 16) | (data[7]! << 24)) >>> 0;
  const count = (data[8]! | (data[9]! << 8) | (data[10]! << 16) | (data[11]! << 24)) >>> 0;
  const bodyStart = HEADER_SIZE + count * BUFFER_ENTRY_SIZE;
  if (bodyStart + bodyLength > data.byteLength) {
    throw new RaySystemError(`object layout truncated: body ends at ${bodyStart + bodyLength}, have ${data.byteLength} bytes`);
  }
  const savedData = decodeData;
  const savedHooks = decodeHooks;
  const savedCount = decodeCount;
  const savedViews = decodeViews;
  decodeData = data;
  decodeHooks = hooks;
  decodeCount = count;
  decodeViews = views;
  try {
    // start/end instead of a subarray: msgpackr caches its DataView on the
    // source object, so repeated reads of one buffer make no new views.
    return unpackr.unpack(data, { start: bodyStart, end: bodyStart + bodyLength });
  } finally {
    decodeData = savedData;
    decodeHooks = savedHooks;
    decodeCount = savedCount;
    decodeViews = savedViews;
  }
}
