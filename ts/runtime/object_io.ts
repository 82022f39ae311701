// ObjectIO: values in and out of this process. put and task returns are
// serialized inline (up to MAX_INLINE_BYTES, kept in the owner's memory
// store) or written to plasma; get reads a value from the core's memory
// store or from plasma (zero-copy views for large binary data), waiting
// for it first and recovering a lost plasma copy through lineage.
import { ObjectRef } from '../api/object_ref.js';
import { deserialize, deserializeAt, serialize, serializeToBytes, writeTo } from '../codec/serialization.js';
import { GetTimeoutError, ObjectLostError, ObjectStoreFullError, RaySystemError, type ErrorRecord } from '../api/errors.js';
import { errorFromRecord } from '../api/error_records.js';
import { hasStatusCode, type NativeCoreWorker } from './native.js';
import { MAX_RECOVERIES, requestRecovery, stageNested } from './ownership.js';
import { PUT_FULL_WAIT_MS, RESTORE_FULL_WAIT_MS } from './pressure.js';
import type { Runtime } from './runtime.js';
import { ListGet, PENDING, SLICE_MS, SLOW, type ListGetSource } from './list_get.js';

/** Values up to this size live in the owner's memory store and travel inline. */
export const MAX_INLINE_BYTES = 100 * 1024;

/** Binary data too large to inline: skip the all-inline fast path. */
export function isLargeBinary(v: unknown): boolean {
  return (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) && v.byteLength > MAX_INLINE_BYTES;
}

/** Bytes per id arena: ids of new puts are views into it (819 ids per arena). */
const ID_ARENA_BYTES = 16 * 1024;
const ID_BYTES = 20;
/** Bytes per value arena: inline values read by get are copied into it. */
const VALUE_ARENA_BYTES = 256 * 1024;
/** A fresh value arena when less than this is left in the current one. */
const VALUE_ARENA_MIN_FREE = 4 * 1024;
/** Binary sources at least this large get the huge-page read advice (plasmaCreate). */
const HUGE_SOURCE_BYTES = 4 * 1024 * 1024;

/** Retries of a create after a sweep do not spill for this long (see #createAfterSweep). */
const SPILL_GRACE_MS = 10;

/** An inline value is not ready here: the caller must wait (see #readReady). */
/** A pull's admission order on the node that pulls (PlasmaGet.pull_priority). */
const PULL_GET = 0;
const PULL_TASK_ARGUMENT = 2;

const NOT_READY: unique symbol = Symbol('not ready');

/** What tryGet says of an id, an inline value as a view of it. */
type Lookup = Exclude<ReturnType<NativeCoreWorker['tryGet']>, number>;

export class ObjectIO {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;
  // Arenas the addon writes into (setScratch kinds 1 and 2), bump-allocated
  // and never reused: a new put's id is a view into the id arena (no buffer
  // per id, and an off-heap view the addon reads without materializing it);
  // a got inline value is copied into the value arena and decoded from a view
  // there, so views the decoder makes into it (Buffers) stay valid as long as
  // they live. A filled arena is replaced; the old one lives on while views
  // into it do.
  #idArena = new ArrayBuffer(0);
  #idOffset = 0;
  #valueArena = new ArrayBuffer(0);
  /** One view over the whole value arena: values are decoded out of it by offset (deserializeAt). */
  #valueView = new Uint8Array(0);
  #valueOffset = 0;
  #lastValueOffset = 0;
  /** What tryGet said of the last ref #readReady found not ready (null, false or true). */
  #lastLookup: null | boolean = null;
  /** What ListGets of this process read and wait through. */
  readonly #lists: ListGetSource;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.core = rt.core;
    this.#newIdArena();
    this.#newValueArena();
    this.#lists = {
      readNow: (ref) => this.readNow(ref),
      getValue: (ref, deadline) => this.getValue(ref, deadline),
      watch: (ref, cb) => rt.waiting.watch(ref, cb),
      setBlocked: (blocked) => this.core.setBlocked(blocked),
      timeoutError: (ms, ref) => new GetTimeoutError(`ray.get() timed out after ${ms} ms waiting for ${ref.id}`),
      shutdownError: () => new RaySystemError('rayts was shut down while ray.get() was waiting'),
    };
  }

  #newIdArena(): void {
    this.#idArena = new ArrayBuffer(ID_ARENA_BYTES);
    this.#idOffset = 0;
    this.core.setScratch(new Uint8Array(this.#idArena), 1);
  }

  #newValueArena(): void {
    this.#valueArena = new ArrayBuffer(VALUE_ARENA_BYTES);
    this.#valueView = new Uint8Array(this.#valueArena);
    this.#valueOffset = 0;
    this.core.setScratch(this.#valueView, 2);
  }

  /** putInline with the new id written into the id arena; returns a view of it. */
  #putInline(bytes: Uint8Array): Uint8Array {
    if (this.#idOffset + ID_BYTES > ID_ARENA_BYTES) this.#newIdArena();
    const offset = this.#idOffset;
    const returned = this.core.putInline(bytes, offset);
    if (returned !== undefined) return returned;
    this.#idOffset = offset + ID_BYTES;
    return new Uint8Array(this.#idArena, offset, ID_BYTES);
  }

  /**
   * tryGet with a ready inline value copied into the value arena: then the
   * value's size is returned and #lastValueOffset says where it starts.
   */
  #tryGetRaw(id: Uint8Array): ReturnType<NativeCoreWorker['tryGet']> {
    if (VALUE_ARENA_BYTES - this.#valueOffset < VALUE_ARENA_MIN_FREE) this.#newValueArena();
    const offset = this.#valueOffset;
    const r = this.core.tryGet(id, offset);
    if (typeof r === 'number') {
      this.#lastValueOffset = offset;
      this.#valueOffset = offset + ((r + 7) & ~7);
    }
    return r;
  }

  /** tryGet with a ready inline value as a view into the value arena. */
  #tryGet(id: Uint8Array): Lookup {
    const r = this.#tryGetRaw(id);
    return typeof r === 'number' ? new Uint8Array(this.#valueArena, this.#lastValueOffset, r) : r;
  }

  #checkOpen(what: string): void {
    this.#rt.checkOpen(what);
  }

  put<T>(value: T): ObjectRef<T> {
    this.#checkOpen('ray.put()');
    const primitive = value === null || (typeof value !== 'object' && typeof value !== 'function');
    if (primitive) {
      // A primitive holds no refs: no collecting scope, nothing to stage.
      const small = serializeToBytes(value, this.#rt.hooks, 'ray.put value');
      if (small.byteLength <= MAX_INLINE_BYTES) return this.#rt.adoptRef<T>(this.#putInline(small));
    }
    const nested: ObjectRef<unknown>[] = []; // refs inside the value: the put object holds them
    if (!primitive && !isLargeBinary(value)) {
      const small = this.#rt.refs.collecting(nested, () => serializeToBytes(value, this.#rt.hooks, 'ray.put value'));
      if (small.byteLength <= MAX_INLINE_BYTES) {
        stageNested(this.core, nested);
        return this.#rt.adoptRef<T>(this.#putInline(small));
      }
      nested.length = 0;
    }
    const s = this.#rt.refs.collecting(nested, () => serialize(value, this.#rt.hooks, 'ray.put value'));
    if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
      const bytes = new Uint8Array(s.totalSize);
      writeTo(s, bytes);
      stageNested(this.core, nested);
      return this.#rt.adoptRef<T>(this.#putInline(bytes));
    }
    const id = this.core.nextPutId();
    this.writePlasma(id, s);
    stageNested(this.core, nested);
    this.core.plasmaSeal(id, true);
    return this.#rt.adoptRef<T>(id, s.totalSize);
  }

  /** `waitMs`: how long a full store is waited for in place (see StorePressure.underPressure). */
  writePlasma(id: Uint8Array, s: ReturnType<typeof serialize>, waitMs = PUT_FULL_WAIT_MS): void {
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
      offset = this.core.plasmaCreate(id, s.totalSize, this.#rt.pressure.spillFirst(), hugeSources(s.buffers));
    } catch (e) {
      if (!(e instanceof ObjectStoreFullError)) throw e;
      const swept = performance.now();
      offset = this.#rt.pressure.underPressure(() => this.#createAfterSweep(id, s, swept), e, waitMs);
    }
    writeTo(s, this.#rt.store.subarray(offset, offset + s.totalSize));
  }

  /**
   * A create retried after a sweep. The sweep's frees (plasma deletes) travel
   * on the control connection and may reach the node after this create on the
   * plasma channel: spilling then would write to disk a copy that is about to
   * be deleted (800 MB per put in "single client put gigabytes"). So the first
   * SPILL_GRACE_MS of retries do not spill.
   */
  #createAfterSweep(id: Uint8Array, s: ReturnType<typeof serialize>, swept: number): number {
    const spill = performance.now() - swept >= SPILL_GRACE_MS;
    return this.core.plasmaCreate(id, s.totalSize, spill, spill ? undefined : hugeSources(s.buffers));
  }

  /** Worker side: encodes a task's return value for the reply. */
  /**
   * The first try of encodeReturn alone: the value's bytes when it has no
   * large binary part (they may exceed the inline limit), else undefined.
   * The executor's fast path for a task's one small result.
   */
  serializeReturn(value: unknown, label: string, nested: ObjectRef<unknown>[]): Uint8Array | undefined {
    nested.length = 0;
    if (isLargeBinary(value)) return undefined;
    return this.#rt.refs.collecting(nested, () => serializeToBytes(value, this.#rt.hooks, label));
  }

  /** `tried`: serializeReturn already ran and its bytes could not be used as they were. */
  encodeReturn(value: unknown, returnId: Uint8Array, label: string, nested: ObjectRef<unknown>[] = [], tried = false): [Uint8Array | null, boolean, boolean, number] {
    nested.length = 0;
    if (!tried && !isLargeBinary(value)) {
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
      // No wait in place: the executor waits for room without blocking (Executor.#encode).
      this.writePlasma(returnId, s, 0);
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

  #decode(ref: ObjectRef<unknown>, r: Lookup): unknown {
    if (r instanceof Uint8Array) return this.deserialize(r);
    if (r === true) return this.#readPlasma(ref.binary);
    if (r === null || r === false) {
      throw new ObjectLostError(ref.id, `object ${ref.id} is not known to this process (it was freed or never existed)`);
    }
    throw errorFromRecord(JSON.parse(r.error) as ErrorRecord);
  }

  /** `waitMs`: how long a full store is waited for in place when the object must be restored. */
  /** `priority`: when the object is pulled from another node, its admission order there (PULL_*). */
  #readPlasma(id: Uint8Array, waitMs = PUT_FULL_WAIT_MS, priority = PULL_GET): unknown {
    let offset: number, size: number;
    try {
      [offset, size] = this.core.plasmaGet(id, priority);
    } catch (e) {
      if (!(e instanceof ObjectStoreFullError)) throw e; // else: spilled or pulled, no room yet
      [offset, size] = this.#rt.pressure.underPressure(() => this.core.plasmaGet(id, priority), e, waitMs);
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
    return this.#readPlasma(id, PUT_FULL_WAIT_MS, PULL_TASK_ARGUMENT);
  }

  /**
   * The value of `ref` if it is ready in this process's memory store (an
   * inline value or an error, which is thrown); NOT_READY otherwise (pending,
   * unknown, or in plasma: those take the waiting path of #getValue).
   */
  #readReady(ref: ObjectRef<unknown>): unknown {
    const r = this.#tryGetRaw(ref.binary);
    if (typeof r === 'number') {
      try {
        return deserializeAt(this.#valueView, this.#lastValueOffset, r, this.#rt.hooks);
      } finally {
        this.#rt.refs.flushAdds();
      }
    }
    if (r instanceof Uint8Array) return this.deserialize(r);
    if (r === null || typeof r === 'boolean') {
      this.#lastLookup = r;
      return NOT_READY;
    }
    throw errorFromRecord(JSON.parse(r.error) as ErrorRecord);
  }

  getValue(ref: ObjectRef<unknown>, deadline?: number): Promise<unknown> {
    try {
      this.#checkOpen('ray.get()');
      const v = this.#readReady(ref);
      if (v !== NOT_READY) return Promise.resolve(v);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#getValue(ref, deadline);
  }

  async #getValue(ref: ObjectRef<unknown>, deadline?: number): Promise<unknown> {
    let r = this.#tryGet(ref.binary);
    if (r === false || (r === null && ref.ownerAddress !== '')) {
      const timeout = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const ok = await this.#rt.waitReady(ref, timeout);
      if (!ok) {
        if (this.#rt.closed) throw new RaySystemError('rayts was shut down while ray.get() was waiting');
        throw new GetTimeoutError(`ray.get() timed out after ${deadline === undefined ? 0 : timeout} ms waiting for ${ref.id}`);
      }
      r = this.#tryGet(ref.binary);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        if (r !== true) return this.#decode(ref, r);
        // In plasma: a spilled object that finds no room to be restored
        // waits (bounded, without blocking) for releases on their way.
        try {
          return this.#readPlasma(ref.binary, 0);
        } catch (e) {
          if (!(e instanceof ObjectStoreFullError)) throw e;
          return await this.#rt.pressure.waitForRoom(() => this.#readPlasma(ref.binary, 0), e, RESTORE_FULL_WAIT_MS);
        }
      } catch (e) { // the plasma copy is gone: recover it (lineage), then read again
        if (!(e instanceof ObjectLostError) || r !== true || attempt >= MAX_RECOVERIES) throw e;
      }
      requestRecovery(this.core, ref);
      if (!(await this.#rt.waitReady(ref))) throw new RaySystemError('rayts was shut down while ray.get() was waiting');
      r = this.#tryGet(ref.binary);
    }
  }

  /**
   * ListGet's read: the value of `ref` if it is ready here (an error is
   * thrown); PENDING when it must be waited for (pending, or borrowed and
   * not fetched yet); SLOW when the single-ref get must read it (plasma, or
   * unknown here and owned here: lost).
   */
  readNow(ref: ObjectRef<unknown>): unknown {
    const r = this.#readReady(ref);
    if (r !== NOT_READY) return r;
    const last = this.#lastLookup;
    return last === false || (last === null && ref.ownerAddress !== '') ? PENDING : SLOW;
  }

  get(refs: ObjectRef<unknown> | ObjectRef<unknown>[], timeoutMs?: number): Promise<unknown> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (!Array.isArray(refs)) return this.getValue(refs, deadline);
    // Every value ready here (the common case after the tasks finished):
    // read them all now, one resolved promise instead of one per ref; a
    // long list in slices (ListGet) so the event loop moves in between.
    const values: unknown[] = new Array(refs.length);
    const start = performance.now();
    let i = 0;
    try {
      this.#checkOpen('ray.get()');
      for (; i < refs.length; i++) {
        if ((i & 255) === 255 && performance.now() - start > SLICE_MS) break;
        const v = this.#readReady(refs[i]!);
        if (v === NOT_READY) break;
        values[i] = v;
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (i === refs.length) return Promise.resolve(values);
    const blocked = !this.#rt.isDriver && this.#rt.executing > 0;
    return new ListGet(this.#lists, refs, values, i, deadline, blocked, start).promise;
  }
}

/** The out-of-band buffers large enough for the huge-page read advice; undefined when none. */
function hugeSources(buffers: ArrayBufferView[]): ArrayBufferView[] | undefined {
  let out: ArrayBufferView[] | undefined;
  for (const b of buffers) if (b.byteLength >= HUGE_SOURCE_BYTES) (out ??= []).push(b);
  return out;
}
