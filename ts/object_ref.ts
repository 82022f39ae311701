// ObjectRef: a handle to an immutable object owned by some rayts process.
//
// Each live ObjectRef counts as one local reference in its process's
// CoreWorker. release() (or Symbol.dispose) drops it at once; otherwise a
// FinalizationRegistry drops it when the handle is garbage-collected. An
// ObjectRef is PromiseLike: `await ref` is `await ray.get(ref)`.

/** What an ObjectRef needs from the runtime of its process. */
export interface RefRuntime {
  getValue(ref: ObjectRef<unknown>): Promise<unknown>;
  dropRef(binary: Uint8Array, externalBytes: number): void;
  releaseRef(binary: Uint8Array, externalBytes: number): void;
}

interface Held {
  binary: Uint8Array;
  rt: RefRuntime;
  externalBytes: number;
}

const registry = new FinalizationRegistry<Held>((held) => {
  held.rt.dropRef(held.binary, held.externalBytes);
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
  #held: Held;
  #released = false;
  #hex: string | undefined;

  /** @internal Created by the runtime; user code gets refs from remote calls and put(). */
  constructor(binary: Uint8Array, ownerAddress: string, rt: RefRuntime, externalBytes = 0) {
    this.binary = binary;
    this.ownerAddress = ownerAddress;
    this.#rt = rt;
    this.#held = { binary, rt, externalBytes };
    registry.register(this, this.#held, this);
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

  /** Drops this handle now instead of waiting for garbage collection. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    registry.unregister(this);
    this.#rt.releaseRef(this.binary, this.#held.externalBytes);
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
