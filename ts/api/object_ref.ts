// ObjectRef: a handle to an immutable object owned by some rayts process.
//
// Each live ObjectRef counts as one local reference in its process's
// CoreWorker. release() (or Symbol.dispose) drops it at once; otherwise a
// FinalizationRegistry drops it when the handle is garbage-collected. An
// ObjectRef is a thenable with then/catch/finally: `await ref` is
// `await ray.get(ref)`, `ref.catch(f)` is `ray.get(ref).catch(f)`.

/** What an ObjectRef needs from the runtime of its process. */
export interface RefRuntime {
  getValue(ref: ObjectRef<unknown>): Promise<unknown>;
  dropRef(binary: Uint8Array, externalBytes: number, held: HeldRef): void;
  releaseRef(binary: Uint8Array, externalBytes: number, held: HeldRef): void;
  /** Refs that pin large objects are also tracked weakly (see Runtime.sweep). */
  trackLarge(held: HeldRef, ref: ObjectRef<unknown>): void;
}

/** What is left of a handle after it is gone: enough to count it down once. */
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
}

const registry = new FinalizationRegistry<HeldRef>((held) => {
  if (held.dropped) return;
  held.dropped = true;
  held.rt.dropRef(held.binary, held.externalBytes, held);
});

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

export class ObjectRef<T = unknown> implements PromiseLike<T> {
  /** Raw 20-byte object id. */
  readonly binary: Uint8Array;
  /** Socket address of the owner; '' when this process owns the object. */
  readonly ownerAddress: string;
  #rt: RefRuntime;
  #held: HeldRef;
  #released = false;
  #hex: string | undefined;
  /** @internal Readiness as last learned here (waiting.ts); undefined: ask the core. */
  readyCell: ReadyCell | undefined = undefined;
  /** @internal Number of the last ray.wait call that checked this handle for duplicates. */
  waitMark = 0;

  /** @internal Created by the runtime; user code gets refs from remote calls and put(). */
  constructor(binary: Uint8Array, ownerAddress: string, rt: RefRuntime, externalBytes = 0) {
    this.binary = binary;
    this.ownerAddress = ownerAddress;
    this.#rt = rt;
    this.#held = { binary, rt, externalBytes, dropped: false };
    registry.register(this, this.#held, this);
    if (externalBytes > 0) rt.trackLarge(this.#held, this);
  }

  #key: string | undefined;

  /** @internal The id as a compact map key (latin1 string of the bytes). */
  get key(): string {
    return (this.#key ??= Buffer.from(this.binary.buffer, this.binary.byteOffset, this.binary.byteLength).toString('latin1'));
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
    registry.unregister(this);
    if (this.#held.dropped) return;
    this.#held.dropped = true;
    this.#rt.releaseRef(this.binary, this.#held.externalBytes, this.#held);
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
