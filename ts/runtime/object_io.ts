// ObjectIO: values in and out of this process. put and task returns are
// serialized inline (up to MAX_INLINE_BYTES, kept in the owner's memory
// store) or written to plasma; get reads a value from the core's memory
// store or from plasma (zero-copy views for large binary data), waiting
// for it first and recovering a lost plasma copy through lineage.
import { ObjectRef } from '../api/object_ref.js';
import { deserialize, serialize, serializeToBytes, writeTo } from '../codec/serialization.js';
import { errorFromRecord, GetTimeoutError, ObjectLostError, ObjectStoreFullError, RaySystemError, type ErrorRecord } from '../api/errors.js';
import { hasStatusCode, type NativeCoreWorker } from './native.js';
import { MAX_RECOVERIES, requestRecovery, stageNested } from './ownership.js';
import type { Runtime } from './runtime.js';

/** Values up to this size live in the owner's memory store and travel inline. */
export const MAX_INLINE_BYTES = 100 * 1024;

/** Binary data too large to inline: skip the all-inline fast path. */
export function isLargeBinary(v: unknown): boolean {
  return (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) && v.byteLength > MAX_INLINE_BYTES;
}

export class ObjectIO {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.core = rt.core;
  }

  #checkOpen(what: string): void {
    this.#rt.checkOpen(what);
  }

  put<T>(value: T): ObjectRef<T> {
    this.#checkOpen('ray.put()');
    const nested: ObjectRef<unknown>[] = []; // refs inside the value: the put object holds them
    if (!isLargeBinary(value)) {
      const small = this.#rt.refs.collecting(nested, () => serializeToBytes(value, this.#rt.hooks, 'ray.put value'));
      if (small.byteLength <= MAX_INLINE_BYTES) {
        stageNested(this.core, nested);
        return this.#rt.adoptRef<T>((this.core.putInline(small) ?? this.#rt.scratch).slice(0, 20));
      }
      nested.length = 0;
    }
    const s = this.#rt.refs.collecting(nested, () => serialize(value, this.#rt.hooks, 'ray.put value'));
    if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
      const bytes = new Uint8Array(s.totalSize);
      writeTo(s, bytes);
      stageNested(this.core, nested);
      return this.#rt.adoptRef<T>((this.core.putInline(bytes) ?? this.#rt.scratch).slice(0, 20));
    }
    const id = this.core.nextPutId();
    this.writePlasma(id, s);
    stageNested(this.core, nested);
    this.core.plasmaSeal(id, true);
    return this.#rt.adoptRef<T>(id, s.totalSize);
  }

  writePlasma(id: Uint8Array, s: ReturnType<typeof serialize>): void {
    if (s.totalSize > this.#rt.storeCapacity) {
      // Can never fit: fail at once, no waiting for room.
      const e = new ObjectStoreFullError(`cannot store an object of ${s.totalSize} bytes: larger than the whole object store (${this.#rt.storeCapacity} bytes); start rayts with a larger objectStoreMemory`);
      (e as { permanent?: boolean }).permanent = true;
      throw e;
    }
    let offset: number;
    try {
      // First without spilling: garbage this process can free at once (a
      // sweep) is cheaper to drop than to write to disk. But not a full GC
      // per put: after a sweep that found nothing, spill at once for 1 s.
      offset = this.core.plasmaCreate(id, s.totalSize, this.#rt.pressure.spillFirst());
    } catch (e) {
      if (!(e instanceof ObjectStoreFullError)) throw e;
      offset = this.#rt.pressure.underPressure(() => this.core.plasmaCreate(id, s.totalSize), e);
    }
    writeTo(s, this.#rt.store.subarray(offset, offset + s.totalSize));
  }

  /** Worker side: encodes a task's return value for the reply. */
  encodeReturn(value: unknown, returnId: Uint8Array, label: string, nested: ObjectRef<unknown>[] = []): [Uint8Array | null, boolean, boolean, number] {
    nested.length = 0;
    if (!isLargeBinary(value)) {
      const small = this.#rt.refs.collecting(nested, () => serializeToBytes(value, this.#rt.hooks, label));
      if (small.byteLength <= MAX_INLINE_BYTES) return [small, false, false, small.byteLength];
      nested.length = 0;
    }
    const s = this.#rt.refs.collecting(nested, () => serialize(value, this.#rt.hooks, label));
    if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
      const bytes = new Uint8Array(s.totalSize);
      writeTo(s, bytes);
      return [bytes, false, false, s.totalSize];
    }
    try {
      this.writePlasma(returnId, s);
    } catch (e) {
      // Another attempt of this task (one a crash cut off) already sealed
      // this return: keep that copy, as Ray does. A copy still being
      // written is retried by the executor (see Executor.#encode).
      if (hasStatusCode(e, 'ObjectExists')) {
        return [null, true, false, s.totalSize];
      }
      throw e;
    }
    this.core.plasmaSeal(returnId, false);
    return [null, true, false, s.totalSize];
  }

  /** Deserializes with nested refs counted in one native call. */
  deserialize(data: Uint8Array, views?: ArrayBufferView[]): unknown {
    try {
      return deserialize(data, this.#rt.hooks, views);
    } finally {
      this.#rt.refs.flushAdds();
    }
  }

  #decode(ref: ObjectRef<unknown>, r: ReturnType<NativeCoreWorker['tryGet']>): unknown {
    if (r instanceof Uint8Array) return this.deserialize(r);
    if (r === true) return this.#readPlasma(ref.binary);
    if (r === null || r === false) {
      throw new ObjectLostError(ref.id, `object ${ref.id} is not known to this process (it was freed or never existed)`);
    }
    throw errorFromRecord(JSON.parse(r.error) as ErrorRecord);
  }

  #readPlasma(id: Uint8Array): unknown {
    let offset: number, size: number;
    try {
      [offset, size] = this.core.plasmaGet(id);
    } catch (e) {
      if (!(e instanceof ObjectStoreFullError)) throw e; // else: spilled, no room to restore yet
      [offset, size] = this.#rt.pressure.underPressure(() => this.core.plasmaGet(id), e);
    }
    const view = this.#rt.store.subarray(offset, offset + size);
    const views: ArrayBufferView[] = [];
    let value: unknown;
    try {
      value = this.deserialize(view, views);
    } catch (e) {
      this.core.plasmaRelease(id);
      throw e;
    }
    // Out-of-band buffers are views over shared memory: the store copy stays
    // pinned (one plasma ref) until the last of those views is collected.
    if (views.length === 0) {
      this.core.plasmaRelease(id);
    } else {
      this.#rt.localRefs.holdViews(id, size, views);
    }
    return value;
  }

  /** Worker side: reads an argument the owner reported as being in plasma. */
  readPlasmaArg(id: Uint8Array): unknown {
    return this.#readPlasma(id);
  }

  async getValue(ref: ObjectRef<unknown>, deadline?: number): Promise<unknown> {
    this.#checkOpen('ray.get()');
    let r = this.core.tryGet(ref.binary);
    if (r === false || (r === null && ref.ownerAddress !== '')) {
      const timeout = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const ok = await this.#rt.waitReady(ref, timeout);
      if (!ok) {
        if (this.#rt.closed) throw new RaySystemError('rayts was shut down while ray.get() was waiting');
        throw new GetTimeoutError(`ray.get() timed out after ${deadline === undefined ? 0 : timeout} ms waiting for ${ref.id}`);
      }
      r = this.core.tryGet(ref.binary);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return this.#decode(ref, r);
      } catch (e) { // the plasma copy is gone: recover it (lineage), then read again
        if (!(e instanceof ObjectLostError) || r !== true || attempt >= MAX_RECOVERIES) throw e;
      }
      requestRecovery(this.core, ref);
      if (!(await this.#rt.waitReady(ref))) throw new RaySystemError('rayts was shut down while ray.get() was waiting');
      r = this.core.tryGet(ref.binary);
    }
  }

  async get(refs: ObjectRef<unknown> | ObjectRef<unknown>[], timeoutMs?: number): Promise<unknown> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (Array.isArray(refs)) return Promise.all(refs.map((r) => this.getValue(r, deadline)));
    return this.getValue(refs, deadline);
  }
}
