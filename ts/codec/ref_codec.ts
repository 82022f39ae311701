// RefCodec: how ObjectRefs and actor handles nested in values cross a
// process boundary, for one Runtime.
//
// Encoding: 0x01 + ObjectRef (20-byte id + owner address) or 0x02 + actor
// handle (see actor.ts; its token travels as a nested ref too), as a Buffer
// (msgpack bin inside the ref extension). While a
// `collecting` call runs, every ref encoded is recorded (the submit or put
// that follows holds them: the borrower protocol's "no free window").
// Decoding: refs are created at once, and counted in one native call when
// the whole value is decoded (`flushAdds`), not one call per ref; there they
// are also registered for collection, many as one batch (ref_batches.ts).
import { actorHandleToken, decodeActorHandle, encodeActorHandle, isActorHandle } from '../api/actor.js';
import { ObjectRef, type RefRuntime } from '../api/object_ref.js';
import type { NativeCoreWorker } from '../runtime/native.js';
import type { RefHooks } from './serialization.js';
import type { Runtime } from '../runtime/runtime.js';
import { copyIdHandle } from '../runtime/id_slab.js';

/** The pending-add buffer's usual size: 1,024 ids. */
const ADD_BATCH_BYTES = 20 * 1024;

/** a equals b[from, b.length). */
function sameTail(a: Uint8Array, b: Uint8Array, from: number): boolean {
  if (a.length !== b.length - from) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[from + i]) return false;
  return true;
}

export class RefCodec {
  readonly hooks: RefHooks;
  readonly #core: NativeCoreWorker;
  readonly #rt: RefRuntime;
  /** Ids decoded since the last flushAdds, packed (20 bytes each), and their owners. */
  #addBytes = new Uint8Array(ADD_BATCH_BYTES);
  #pendingAddOwners: string[] = [];
  /** Refs decoded since the last flushAdds that settleDecoded registers (not those of running tasks). */
  #pendingRefs: ObjectRef<unknown>[] = [];
  #lastOwnerBytes: Uint8Array | undefined;
  #lastOwner = '';
  /** While set, every ObjectRef serialized is recorded here (nested refs). */
  #nested: ObjectRef<unknown>[] | undefined;

  constructor(rt: Runtime & RefRuntime, core: NativeCoreWorker) {
    this.#core = core;
    this.#rt = rt;
    const address = rt.address;
    // `src[at, at + 20)` is the id: counted in one native call when the
    // decode finishes (flushAdds) and copied into an id slab (the input may
    // be plasma memory, released after), with no typed array per ref.
    const newRef = (src: Uint8Array, at: number, owner: string, now = false): ObjectRef<unknown> => {
      const n = this.#pendingAddOwners.length;
      let bytes = this.#addBytes;
      if ((n + 1) * 20 > bytes.length) {
        bytes = new Uint8Array(bytes.length * 2);
        bytes.set(this.#addBytes.subarray(0, n * 20));
        this.#addBytes = bytes;
      }
      for (let i = 0; i < 20; i++) bytes[n * 20 + i] = src[at + i]!;
      this.#pendingAddOwners.push(owner);
      // Decoded inside a running task (its arguments, values it got): tracked
      // weakly, so the sweep after the task frees those it did not keep.
      const weak = rt.executing > 0 && rt.noteTaskRef();
      if (weak || now) return new ObjectRef(copyIdHandle(src, at), owner, rt, 0, weak);
      // Else its id stays in the pending-add buffer until flushAdds registers it.
      const ref = new ObjectRef(-2 - n, owner, rt);
      this.#pendingRefs.push(ref);
      return ref;
    };
    this.hooks = {
      isRef: (v: unknown): boolean => v instanceof ObjectRef || isActorHandle(v),
      encodeRef: (v: object): Uint8Array => {
        if (!(v instanceof ObjectRef)) {
          // The handle's token travels as a nested ref: the receiver borrows it.
          this.#nested?.push(actorHandleToken(v));
          const h = encodeActorHandle(v);
          const out = Buffer.allocUnsafe(1 + h.length);
          out[0] = 2;
          out.set(h, 1);
          return out;
        }
        const ref = v as ObjectRef<unknown>;
        this.#nested?.push(ref);
        const owner = this.#ownerBytes(ref.ownerAddress === '' ? address : ref.ownerAddress);
        // A Buffer, not a plain Uint8Array: msgpackr writes it as bin, which
        // decodes as a view. A Uint8Array would be its typed-array extension,
        // which decodes through a slice and a new ArrayBuffer per ref.
        const out = Buffer.allocUnsafe(21 + owner.length);
        out[0] = 1;
        out.set(ref.binary, 1);
        out.set(owner, 21);
        return out;
      },
      decodeRef: (tagged: Uint8Array): object => {
        if (tagged[0] === 2) return decodeActorHandle(rt, tagged.subarray(1), (id, owner) => newRef(id, 0, owner, true));
        // tagged: 0x01 | id (20) | owner address (utf8).
        // Refs in one value mostly share an owner: reuse the decoded string.
        let owner: string;
        const last = this.#lastOwnerBytes;
        if (last !== undefined && sameTail(last, tagged, 21)) {
          owner = this.#lastOwner;
        } else {
          owner = Buffer.from(tagged.buffer, tagged.byteOffset + 21, tagged.byteLength - 21).toString('utf8');
          if (owner === address) owner = '';
          this.#lastOwnerBytes = tagged.slice(21);
          this.#lastOwner = owner;
        }
        return newRef(tagged, 1, owner);
      },
    };
  }

  #ownerBytesOf = new Map<string, Buffer>();

  /** The utf8 bytes of an owner address (few distinct ones: cached). */
  #ownerBytes(owner: string): Buffer {
    let b = this.#ownerBytesOf.get(owner);
    if (b === undefined) {
      b = Buffer.from(owner, 'utf8');
      if (this.#ownerBytesOf.size >= 1024) this.#ownerBytesOf.clear();
      this.#ownerBytesOf.set(owner, b);
    }
    return b;
  }

  /** Runs a serialization, recording into `out` every ObjectRef it encodes. */
  collecting<R>(out: ObjectRef<unknown>[], f: () => R): R {
    const prev = this.#nested;
    this.#nested = out;
    try {
      return f();
    } finally {
      this.#nested = prev;
    }
  }

  /** Counts the refs decoded since the last call, in one native call. */
  flushAdds(): void {
    const owners = this.#pendingAddOwners;
    const n = owners.length;
    if (n === 0) return;
    this.#pendingAddOwners = [];
    const concat = this.#addBytes.subarray(0, n * 20);
    const refs = this.#pendingRefs;
    if (refs.length > 0) {
      this.#pendingRefs = [];
      ObjectRef.settleDecoded(refs, concat, this.#rt);
    }
    // A burst grew the buffer: back to the usual size (the core copies the ids).
    if (this.#addBytes.length > ADD_BATCH_BYTES * 64) this.#addBytes = new Uint8Array(ADD_BATCH_BYTES);
    const index = new Uint32Array(n);
    const distinct: string[] = [];
    const slot = new Map<string, number>();
    let lastOwner: string | undefined;
    let lastSlot = 0;
    for (let i = 0; i < n; i++) {
      const o = owners[i]!;
      if (o !== lastOwner) { // refs of one value mostly share an owner
        let k = slot.get(o);
        if (k === undefined) {
          k = distinct.length;
          distinct.push(o);
          slot.set(o, k);
        }
        lastOwner = o;
        lastSlot = k;
      }
      index[i] = lastSlot;
    }
    this.#core.addLocalRefsPacked(concat, index, distinct);
  }
}
