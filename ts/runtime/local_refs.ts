// LocalRefs: this process's count of its ObjectRef handles and of the
// zero-copy views over plasma memory. Decrements of collected handles are
// batched per turn (dropRef, flushDrops); large refs and views are also
// tracked weakly by the core, so a sweep under store pressure frees the dead
// ones at once instead of on a later turn (their finalizers).
import { ObjectRef, type HeldRef } from '../api/object_ref.js';
import { fullGc } from './gc.js';
import type { NativeCoreWorker } from './native.js';
import type { Runtime } from './runtime.js';
import { writeHandleId } from './id_slab.js';
import { splitAllBatches } from '../api/ref_batches.js';

/** The drop buffer's usual size: 1,024 ids. */
const DROP_BATCH_BYTES = 20 * 1024;

/** One plasma get whose zero-copy views keep the store copy pinned. */
interface ViewHold {
  id: Uint8Array;
  remaining: number;
  size: number;
  released: boolean;
}
/** One view of a ViewHold; counted down once (finalizer or sweep). */
interface ViewEntry {
  hold: ViewHold;
  token: number;
  counted: boolean;
}

export class LocalRefs {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;
  /** Ids to count down at the next flushDrops, packed (20 bytes each): no array of views. */
  #dropBytes = new Uint8Array(DROP_BATCH_BYTES);
  #dropCount = 0;
  #dropScheduled = false;
  #plasmaHolds = new FinalizationRegistry<ViewEntry>((e) => this.#viewGone(e));
  /** Large refs and zero-copy views by weak token: a sweep under store pressure frees the dead ones at once. */
  #weak = new Map<number, HeldRef | ViewEntry>();
  /** View holds not released yet (their store copies are pinned). */
  #liveHolds = 0;
  /** Weakly tracked refs with no external bytes: refs running tasks decoded (ObjectRef `weak`), still alive. */
  #taskTracked = 0;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.core = rt.core;
  }

  get closed(): boolean {
    return this.#rt.closed;
  }

  #viewGone(e: ViewEntry): void {
    if (e.counted) return;
    e.counted = true;
    this.#weak.delete(e.token);
    if (!this.closed) this.core.untrackWeak(e.token);
    if (--e.hold.remaining === 0) this.#releaseHold(e.hold);
  }

  #releaseHold(hold: ViewHold): void {
    if (hold.released) return;
    hold.released = true;
    this.#liveHolds--;
    if (this.closed) return;
    this.core.adjustExternalMemory(-hold.size);
    this.core.plasmaRelease(hold.id);
  }

  trackLarge(held: HeldRef, ref: ObjectRef<unknown>): void {
    held.token = this.core.trackWeak(ref);
    this.#weak.set(held.token, held);
    if (held.externalBytes === 0) this.#taskTracked++;
  }

  /** Refs decoded by tasks that are still alive (kept by the code, or not collected yet). */
  get taskTracked(): number {
    return this.#taskTracked;
  }

  #untrackHeld(held: HeldRef): void {
    if (held.token === undefined) return;
    if (held.externalBytes === 0) this.#taskTracked--;
    this.#weak.delete(held.token);
    if (!this.closed) this.core.untrackWeak(held.token);
    held.token = undefined;
  }

  /**
   * Store pressure: run a full collection, then drop at once every large ref
   * and zero-copy view it found dead. Their finalizers would only run on a
   * later turn, too late for a synchronous put in a loop. Returns how many
   * refs and views it found dead.
   */
  sweep(minor = false): number {
    if (this.closed) return 0;
    // minor: a young-generation collection only (a task's refs die young,
    // and it clears N-API weak references), for the sweep after a task.
    // A major sweep also splits the batches of decoded refs still alive, so
    // the dropped refs among them are collected by this collection (and
    // counted down by their finalizers on the next turn), not two later.
    if (!minor) splitAllBatches();
    const gc = fullGc() as ((o?: { type: 'minor' | 'major' }) => void) | null;
    if (gc) gc(minor ? { type: 'minor' } : undefined);
    const dead = this.core.sweepWeak();
    for (const token of dead) {
      const e = this.#weak.get(token);
      this.#weak.delete(token);
      if (e === undefined) continue;
      if ('hold' in e) {
        e.token = 0;
        this.#viewGone(e);
      } else if (!e.dropped) {
        e.dropped = true;
        if (e.externalBytes === 0 && e.token !== undefined) this.#taskTracked--;
        e.token = undefined;
        if (e.externalBytes > 0) this.core.adjustExternalMemory(-e.externalBytes);
        this.#pushDrop(e.binary);
      }
    }
    this.flushDrops();
    return dead.length;
  }

  /**
   * Before shutdown: release the pins of views that are already garbage, so
   * the core keeps private copies only of the views still reachable (see
   * PlasmaClient::Close). One full collection, only if a view is held.
   */
  get heldViews(): number {
    return this.#liveHolds;
  }

  sweepBeforeShutdown(): void {
    if (this.#liveHolds > 0) this.sweep();
  }

  /** A handle was garbage-collected: batch the decrements. */
  dropRef(binary: Uint8Array, externalBytes = 0, held?: HeldRef): void {
    if (held) this.#untrackHeld(held);
    if (this.closed) return;
    if (externalBytes > 0) this.core.adjustExternalMemory(-externalBytes);
    this.#pushDrop(binary);
    this.#scheduleDrops();
  }

  /** A handle whose id is held as an id-slab handle was garbage-collected (no view of the id is made). */
  dropRefHandle(h: number): void {
    if (this.closed) return;
    writeHandleId(h, this.#dropRoom(), this.#dropCount++ * 20);
    this.#scheduleDrops();
  }

  /**
   * A batch of decoded refs was garbage-collected (ref_batches.ts): counted
   * down now, in one native call (the ids came in one finalizer callback).
   */
  dropRefsPacked(ids: Uint8Array): void {
    if (this.closed) return;
    this.core.removeLocalRefsPacked(ids);
  }

  #scheduleDrops(): void {
    if (!this.#dropScheduled) {
      this.#dropScheduled = true;
      setImmediate(() => this.flushDrops());
    }
  }

  /** The drop buffer, with room for one more id. */
  #dropRoom(): Uint8Array {
    if ((this.#dropCount + 1) * 20 > this.#dropBytes.length) {
      const grown = new Uint8Array(this.#dropBytes.length * 2);
      grown.set(this.#dropBytes.subarray(0, this.#dropCount * 20));
      this.#dropBytes = grown;
    }
    return this.#dropBytes;
  }

  #pushDrop(id: Uint8Array): void {
    this.#dropRoom().set(id, this.#dropCount++ * 20);
  }

  /** ref.release(): the count drops now, so a loop that releases frees as it goes. */
  releaseRef(binary: Uint8Array, externalBytes = 0, held?: HeldRef): void {
    if (held) this.#untrackHeld(held);
    if (this.closed) return;
    if (externalBytes > 0) this.core.adjustExternalMemory(-externalBytes);
    this.core.removeLocalRefsPacked(binary);
  }

  flushDrops(): void {
    this.#dropScheduled = false;
    const n = this.#dropCount;
    if (n === 0) return;
    this.#dropCount = 0;
    const packed = this.#dropBytes.subarray(0, n * 20);
    // A burst grew the buffer: back to the usual size (the core copies the ids).
    if (this.#dropBytes.length > DROP_BATCH_BYTES * 64) this.#dropBytes = new Uint8Array(DROP_BATCH_BYTES);
    if (this.closed) return;
    // One Uint8Array of the ids: no N-API read per id on the native side.
    this.core.removeLocalRefsPacked(packed);
  }

  /** A ref this process already counts (returned by the core with count 1). */
  adoptRef<T>(binary: Uint8Array, externalBytes = 0): ObjectRef<T> {
    if (externalBytes > 0) this.core.adjustExternalMemory(externalBytes);
    return new ObjectRef<T>(binary, '', this.#rt, externalBytes);
  }

  /**
   * Out-of-band buffers of one plasma get (`views`, over `size` bytes of
   * object `id`) are views over shared memory: the store copy stays pinned
   * (one plasma ref) until the last of those views is collected.
   */
  holdViews(id: Uint8Array, size: number, views: ArrayBufferView[]): void {
    // Tell V8 what these views pin, so collection keeps pace with the store.
    this.core.adjustExternalMemory(size);
    const hold: ViewHold = { id, remaining: views.length, size, released: false };
    this.#liveHolds++;
    for (const v of views) {
      const e: ViewEntry = { hold, token: this.core.trackWeak(v), counted: false };
      this.#weak.set(e.token, e);
      this.#plasmaHolds.register(v, e);
    }
  }
}
