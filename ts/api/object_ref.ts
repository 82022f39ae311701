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
// sweep already counted it down).
import { dropHandle, handleOf, idKey, idOfHandle } from '../runtime/id_slab.js';

/** What an ObjectRef needs from the runtime of its process. */
export interface RefRuntime {
  getValue(ref: ObjectRef<unknown>): Promise<unknown>;
  dropRef(binary: Uint8Array, externalBytes: number, held?: HeldRef): void;
  /** dropRef of a handle whose id is an id-slab handle (copied from the slab, no view). */
  dropRefHandle(h: number): void;
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
    r = { registry, released, releasedHandles };
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

  /** Raw 20-byte object id. */
  get binary(): Uint8Array {
    return (this.#bin ??= idOfHandle(this.#h));
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
      if (this.#h >= 0) refs.releasedHandles.add(this.#h);
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
