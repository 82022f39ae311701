// Decoder: reads a layout written by the encoder (writeTo or
// serializeToBytes) back into a value. Out-of-band typed arrays, Buffers and
// DataViews come back as views over the input's memory (zero copy); the
// readers of the marker extensions (registered in serialization.ts) run
// inside deserialize() and use its per-call state.
import { Unpackr } from 'msgpackr';
import { RaySystemError, rebuildError } from '../api/errors.js';
import { BUFFER_ENTRY_SIZE, BufferKind, HEADER_SIZE, KIND_CTORS, LAYOUT_MAGIC, type RefHooks } from './format.js';

// State of the deserialize() call in progress (saved and restored around
// re-entrant calls from decodeRef); module variables, not an object, to keep
// decoding a small value allocation-free.
let decodeData: Uint8Array | undefined;
let decodeHooks: RefHooks | undefined;
let decodeCount = 0;
/** Collects the zero-copy views deserialize() makes (views over `data`'s memory). */
let decodeViews: ArrayBufferView[] | undefined;

export function readRef(bytes: Uint8Array): object {
  if (decodeHooks === undefined) throw new RaySystemError('ref marker decoded outside deserialize()');
  return decodeHooks.decodeRef(bytes);
}

export function readError(d: unknown[]): Error {
  const [name, message, stack, fields, cause] = d as [string, string, string | undefined, Record<string, unknown> | null, unknown];
  const e = rebuildError(name, message, stack);
  if (d.length > 4) Object.defineProperty(e, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  if (fields !== null && typeof fields === 'object') Object.assign(e, fields);
  return e;
}

export function readOob(index: number): unknown {
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

const unpackr = new Unpackr({ structuredClone: true, moreTypes: true });

/**
 * Reads a layout written by writeTo() or serializeToBytes(). Out-of-band
 * typed arrays, Buffers and DataViews are views over data.buffer (no copy);
 * each such view is also pushed to `views` when given (the caller keeps the
 * memory alive for as long as any of them lives).
 */
export function deserialize(data: Uint8Array, hooks: RefHooks, views?: ArrayBufferView[]): unknown {
  return deserializeAt(data, 0, data.byteLength, hooks, views);
}

/**
 * deserialize() of the layout at data[start, start + length): a caller that
 * decodes many values out of one buffer (ObjectIO's value arena) passes the
 * same Uint8Array each time, so msgpackr reuses the DataView it keeps on it
 * (a new view per value cost ~210 ns of a ~330 ns small decode). A layout
 * with out-of-band buffers is decoded from a view of its range.
 */
export function deserializeAt(data: Uint8Array, start: number, length: number, hooks: RefHooks, views?: ArrayBufferView[]): unknown {
  if (start !== 0 || length !== data.byteLength) {
    if (start < 0 || length < 0 || start + length > data.byteLength) {
      throw new RaySystemError(`object layout range ${start}+${length} is outside the ${data.byteLength}-byte buffer`);
    }
    if (length >= HEADER_SIZE && (data[start + 8]! | data[start + 9]! | data[start + 10]! | data[start + 11]!) !== 0) {
      return deserializeAt(data.subarray(start, start + length), 0, length, hooks, views);
    }
  }
  if (length < HEADER_SIZE) throw new RaySystemError(`object layout too short: ${length} bytes`);
  const s = start;
  const magic = (data[s]! | (data[s + 1]! << 8) | (data[s + 2]! << 16) | (data[s + 3]! << 24)) >>> 0;
  if (magic !== LAYOUT_MAGIC) {
    throw new RaySystemError(`not a rayts object layout (magic 0x${magic.toString(16)}, expected 0x${LAYOUT_MAGIC.toString(16)})`);
  }
  const bodyLength = (data[s + 4]! | (data[s + 5]! << 8) | (data[s + 6]! << 16) | (data[s + 7]! << 24)) >>> 0;
  const count = (data[s + 8]! | (data[s + 9]! << 8) | (data[s + 10]! << 16) | (data[s + 11]! << 24)) >>> 0;
  // count is 0 here unless start is 0 (see above): out-of-band offsets are from data[0].
  const bodyStart = HEADER_SIZE + count * BUFFER_ENTRY_SIZE;
  if (bodyStart + bodyLength > length) {
    throw new RaySystemError(`object layout truncated: body ends at ${bodyStart + bodyLength}, have ${length} bytes`);
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
    return unpackr.unpack(data, { start: s + bodyStart, end: s + bodyStart + bodyLength });
  } finally {
    decodeData = savedData;
    decodeHooks = savedHooks;
    decodeCount = savedCount;
    decodeViews = savedViews;
  }
}
