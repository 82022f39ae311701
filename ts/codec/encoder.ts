// Encoder: validates a value (pass 1), copies it with markers where it
// needs them (pass 2: refs, out-of-band buffers, errors, Buffers, -0), and
// packs it with msgpackr; writeTo / serializeToBytes lay it out (see
// format.ts). The marker extensions are registered in serialization.ts.
import { Packr } from 'msgpackr';
import {
  BUFFER_ALIGNMENT, BUFFER_ENTRY_SIZE, BufferKind, BufferMarker, DEFAULT_OOB_THRESHOLD, ErrorMarker, HEADER_SIZE,
  LAYOUT_MAGIC, NEG_ZERO, OobMarker, RefMarker, TYPED_ARRAY_KINDS, type RefHooks, type Serialized, type SerializeOptions,
} from './format.js';

// ---------------------------------------------------------------------------
// Packers

const packr = new Packr({ structuredClone: true, moreTypes: true });
const primitivePackr = new Packr({ moreTypes: true, useRecords: false });
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
