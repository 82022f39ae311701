// ObjectRef: a handle to an immutable object owned by some rayts process.
//
// Each live ObjectRef counts as one local reference in its process's
// CoreWorker. release() (or Symbol.dispose) drops it at once; otherwise a
// FinalizationRegistry drops it when the handle is garbage-collected. An
// ObjectRef is a thenable with then/catch/finally: `await ref` is
// `await ray.get(ref)`, `ref.catch(f)` is `ray.get(ref).catch(f)`.
//
// A handle is kept small (a million queued tasks hold a million of them):
// its registration holds just its id, with no unregister token (a token
// costs an identity hash and a table entry per handle); one registry per
// runtime says whose. release() instead counts the id as released, and the
// finalizer that comes later for it does nothing. Only a handle that pins a
// large object has a HeldRef (its size, its weak token, and the flag that a
// sweep already counted it down). The refs decoded out of one value are
// registered together, as one batch (ref_batches.ts): their ids packed in
// the batch's holder, one registry cell for all of them.
import { copyIdHandle, dropHandle, handleOf, idKey, idOfHandle } from '../runtime/id_slab.js';
import { BATCH_MIN, idsToDrop, newBatch, type BatchHeld, type RefBatch } from './ref_batches.js';

/** What an ObjectRef needs from the runtime of its process. */
export interface RefRuntime {
  getValue(ref: ObjectRef<unknown>): Promise<unknown>;
  dropRef(binary: Uint8Array, externalBytes: number, held?: HeldRef): void;
  /** dropRef of a handle whose id is an id-slab handle (copied from the slab, no view). */
  dropRefHandle(h: number): void;
  /** dropRef of many ids at once (packed, 20 bytes each): a collected batch of decoded refs. */
  dropRefsPacked(ids: Uint8Array): void;
  releaseRef(binary: Uint8Array, externalBytes: number, held?: HeldRef): void;
  /** Refs that pin large objects are also tracked weakly (see Runtime.sweep). */
  trackLarge(held: HeldRef, ref: ObjectRef<unknown>): void;
}

/** What is left of a handle to a large object after it is gone: enough to count it down once. */
export interface HeldRef {
  binary: Uint8Array;
  rt: RefRuntime;
  externalBytes: number;
  /** Set once the count was dropped (release, finalizer or sweep): never twice. */
  dropped: boolean;
  /** Weak-tracking token for large refs (Runtime.sweep). */
  token?: number;
}

/**
 * What this process knows of an object's readiness, shared by the handles of
 * one id (see waiting.ts). `ready` only goes from false to true; a handle
 * whose object is being recovered gets a new cell.
 */
export interface ReadyCell {
  ready: boolean;
  /** A ray.wait in progress looked at it while not ready: its Ready event wakes the waits. */
  watched: boolean;
  /**
   * Where the ready value is (ray.wait fetchLocal): 0 not known yet, 1 on this
   * node (or inline), 2 in plasma on another node and not fetched here yet.
   */
  where: 0 | 1 | 2;
}

/** What the finalizer is told of a collected handle: its id handle (id_slab.ts), its id, or its HeldRef. */
type Held = number | Uint8Array | HeldRef;
type Registry = FinalizationRegistry<Held>;
interface RuntimeRefs {
  registry: Registry;
  /** Ids released by hand whose finalizer has not run yet (a count: two handles may share an id array). */
  released: WeakMap<Uint8Array, number>;
  /** The same for ids held as id handles (each names one ObjectRef's id). */
  releasedHandles: Set<number>;
  /** Holders of batches of decoded refs (ref_batches.ts). */
  batches: FinalizationRegistry<BatchHeld>;
}
const byRuntime = new WeakMap<RefRuntime, RuntimeRefs>();
let lastRt: RefRuntime | undefined;
let last: RuntimeRefs | undefined;

/** The registry of the handles of `rt`: what it is told is the id (or the HeldRef) of a collected handle. */
function refsOf(rt: RefRuntime): RuntimeRefs {
  if (rt === lastRt) return last!;
  let r = byRuntime.get(rt);
  if (r === undefined) {
    const released = new WeakMap<Uint8Array, number>();
    const releasedHandles = new Set<number>();
    const registry = new FinalizationRegistry<Held>((held) => {
      if (typeof held === 'number') {
        if (!releasedHandles.delete(held)) rt.dropRefHandle(held);
        dropHandle(held); // after: the id is read from the slab
        return;
      }
      if (held instanceof Uint8Array) {
        const n = released.get(held);
        if (n === undefined) rt.dropRef(held, 0);
        else if (n > 1) released.set(held, n - 1);
        else released.delete(held);
        return;
      }
      if (held.dropped) return;
      held.dropped = true;
      rt.dropRef(held.binary, held.externalBytes, held);
    });
    const batches = new FinalizationRegistry<BatchHeld>((held) => {
      if (held.split) return;
      const ids = idsToDrop(held);
      if (ids.length > 0) rt.dropRefsPacked(ids);
    });
    r = { registry, released, releasedHandles, batches };
    byRuntime.set(rt, r);
  }
  lastRt = rt;
  last = r;
  return r;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

export class ObjectRef<T = unknown> implements PromiseLike<T> {
  /** Socket address of the owner; '' when this process owns the object. */
  readonly ownerAddress: string;
  #rt: RefRuntime;
  /**
   * The id: a view (#bin), or, for an id copied into an id slab, a handle
   * naming it (#h >= 0; the slab is kept while the handle is registered):
   * the view is made on first use,
   * so a handle that is never read (a queued task's, one of 10,000 decoded
   * refs) costs no typed array.
   */
  #bin: Uint8Array | undefined;
  #h: number;
  /** Large objects only. */
  #held: HeldRef | undefined;
  /** The holder of this ref's batch (a decoded ref, #h <= -2: its id is at index -2 - #h there). */
  #batch: RefBatch | undefined = undefined;
  #released = false;
  #hex: string | undefined;
  /** @internal Readiness as last learned here (waiting.ts); undefined: ask the core. */
  readyCell: ReadyCell | undefined = undefined;
  /** @internal Number of the last ray.wait call that checked this handle for duplicates. */
  waitMark = 0;

  /**
   * @internal Created by the runtime; user code gets refs from remote calls and put().
   * `weak`: tracked weakly like a large ref, so a sweep can drop it at once
   * (refs a running task decoded: released when the task ends unless kept).
   */
  constructor(binary: Uint8Array | number, ownerAddress: string, rt: RefRuntime, externalBytes = 0, weak = false) {
    this.ownerAddress = ownerAddress;
    this.#rt = rt;
    if (typeof binary === 'number' && binary <= -2) {
      // Decoded (RefCodec): its id is the -2 - binary'th of the value's;
      // registered with the others at the end of the decode (settleDecoded).
      this.#bin = undefined;
      this.#h = binary;
      this.#held = undefined;
      return;
    }
    if (typeof binary === 'number') binary = ObjectRef.#fromHandle(binary, externalBytes > 0 || weak);
    if (typeof binary === 'number') {
      // An id-slab handle (copyIdHandle), kept as it is: no view until read.
      this.#bin = undefined;
      this.#h = binary;
      this.#held = undefined;
      refsOf(rt).registry.register(this, binary);
      return;
    }
    if (externalBytes > 0 || weak) {
      this.#bin = binary;
      this.#h = -1;
      const held: HeldRef = { binary, rt, externalBytes, dropped: false };
      this.#held = held;
      refsOf(rt).registry.register(this, held);
      rt.trackLarge(held, this);
      return;
    }
    this.#held = undefined;
    const h = handleOf(binary);
    this.#h = h;
    if (h < 0) {
      this.#bin = binary;
      refsOf(rt).registry.register(this, binary);
    } else {
      this.#bin = undefined;
      refsOf(rt).registry.register(this, h);
    }
  }

  /** A handle given to the constructor: kept, or (a tracked ref keeps its view) turned into a view and unregistered. */
  static #fromHandle(h: number, needsView: boolean): Uint8Array | number {
    if (!needsView) return h;
    const view = idOfHandle(h);
    dropHandle(h);
    return view;
  }

  /**
   * @internal The end of a decode: `refs` were made with the index of their
   * id in `ids` (packed, 20 bytes each; reused by the caller after). Few:
   * each gets an id-slab handle and is registered alone. Many: they become
   * one batch (ref_batches.ts) over a copy of their ids.
   */
  static settleDecoded(refs: ObjectRef<unknown>[], ids: Uint8Array, rt: RefRuntime): void {
    const n = refs.length;
    const registry = refsOf(rt);
    if (n < BATCH_MIN) {
      for (let i = 0; i < n; i++) {
        const ref = refs[i]!;
        const h = copyIdHandle(ids, (-2 - ref.#h) * 20);
        ref.#h = h;
        registry.registry.register(ref, h);
      }
      return;
    }
    // The batch's own copy of the ids, in the order of `refs`.
    let own: Uint8Array;
    if (-2 - refs[0]!.#h === 0 && -2 - refs[n - 1]!.#h === n - 1) {
      own = ids.slice(0, n * 20);
    } else {
      own = new Uint8Array(n * 20);
      for (let i = 0; i < n; i++) {
        const at = (-2 - refs[i]!.#h) * 20;
        own.set(ids.subarray(at, at + 20), i * 20);
      }
    }
    const batch = newBatch(refs, own, registry.batches, ObjectRef.#unbatch);
    for (let i = 0; i < n; i++) {
      const ref = refs[i]!;
      ref.#h = -2 - i;
      ref.#batch = batch;
    }
  }

  /** A split batch: the ref keeps a view of its id and is registered alone (unless released by hand). */
  static #unbatch(this: void, r: object, b: RefBatch, index: number): void {
    const ref = r as ObjectRef<unknown>;
    ref.#bin ??= b.held.ids.subarray(index * 20, index * 20 + 20);
    ref.#h = -1;
    ref.#batch = undefined;
    if (!ref.#released) refsOf(ref.#rt).registry.register(ref, ref.#bin);
  }

  /** Raw 20-byte object id. */
  get binary(): Uint8Array {
    if (this.#bin !== undefined) return this.#bin;
    const h = this.#h;
    if (h >= 0) return (this.#bin = idOfHandle(h));
    const at = (-2 - h) * 20;
    return (this.#bin = this.#batch!.held.ids.subarray(at, at + 20));
  }

  #key: string | undefined;

  /** @internal The id as a compact map key (latin1 string of the bytes). */
  get key(): string {
    return (this.#key ??= idKey(this.binary));
  }

  /** Hex string of the object id. */
  get id(): string {
    return (this.#hex ??= toHex(this.binary));
  }

  get released(): boolean {
    return this.#released;
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return (this.#rt.getValue(this) as Promise<T>).then(onfulfilled, onrejected);
  }

  /** `ref.catch(f)` is `ray.get(ref).catch(f)`. */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return (this.#rt.getValue(this) as Promise<T>).catch(onrejected);
  }

  /** `ref.finally(f)` is `ray.get(ref).finally(f)`. */
  finally(onfinally?: (() => void) | null): Promise<T> {
    return (this.#rt.getValue(this) as Promise<T>).finally(onfinally);
  }

  /** Drops this handle now instead of waiting for garbage collection. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const held = this.#held;
    if (held === undefined) {
      // Its finalizer, which comes later, does nothing.
      const refs = refsOf(this.#rt);
      const batch = this.#batch;
      if (batch !== undefined) {
        const b = batch.held;
        (b.released ??= new Uint8Array(b.ids.length / 20))[-2 - this.#h] = 1;
      } else if (this.#h >= 0) refs.releasedHandles.add(this.#h);
      else refs.released.set(this.binary, (refs.released.get(this.binary) ?? 0) + 1);
      this.#rt.releaseRef(this.binary, 0);
      return;
    }
    if (held.dropped) return;
    held.dropped = true;
    this.#rt.releaseRef(this.binary, held.externalBytes, held);
  }

  [Symbol.dispose](): void {
    this.release();
  }

  toString(): string {
    return `ObjectRef(${this.id})`;
  }

  toJSON(): { objectRef: string } {
    return { objectRef: this.id };
  }
}

if (disposeSymbol !== Symbol.dispose) {
  Object.defineProperty(ObjectRef.prototype, disposeSymbol, { value: ObjectRef.prototype.release });
}
