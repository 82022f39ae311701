// RefBatches: the refs decoded out of one value (the 10,000 refs of a list
// of refs) are registered with one FinalizationRegistry cell, not one each.
//
// Why: a registered object survives every scavenge (V8 keeps the targets of
// FinalizationRegistry cells alive until a mark-compact), each cell is an
// old-space object of its own, and the callback runs once per collected
// target (then an id copy, a slab lookup and a Set lookup per ref). Measured
// on Node 20 (V8 11.3), 10,000 small objects made and dropped per turn:
// 0.24 ms of CPU unregistered, 4.1 ms registered one by one, 2.3 ms with
// one registered holder for all of them.
//
// How: the refs of a batch point at one holder; the holder points at them
// and keeps their ids packed (20 bytes each); only the holder is
// registered, with the packed ids (and a mask of those released by hand)
// as its holdings. The holder is unreachable exactly when every ref of the
// batch is: its finalizer then counts them all down in one native call,
// once.
//
// Each ref is still released on its own: a batch that outlives two major
// collections (so one of its refs is still reachable) is split. Its refs
// are then registered one by one (as other refs are) and the holder lets go
// of them, so those already dropped are collected and counted down at the
// next major collection, and the holder's finalizer does nothing. The
// collections are seen by a canary: an unreachable object registered in a
// registry of its own, whose callback runs after each collection that freed
// it and arms the next one while batches wait.

/** Below this many refs in one value, each is registered alone. */
export const BATCH_MIN = 16;
/** A batch still alive after this many canary rounds is split. */
const SPLIT_AFTER_ROUNDS = 2;

/** The holder's holdings: the ids, those released by hand, and whether the batch was split. */
export interface BatchHeld {
  /** Packed ids, 20 bytes each, in the order of `RefBatch.refs`. */
  ids: Uint8Array;
  /** 1 at the index of a ref released by hand (its count already dropped). */
  released: Uint8Array | undefined;
  /** Split: the refs are registered alone and the finalizer of the holder does nothing. */
  split: boolean;
}

/** The holder the refs of a batch point at; it points at them until split. */
export interface RefBatch {
  refs: object[] | undefined;
  held: BatchHeld;
}

interface Waiting {
  batch: WeakRef<RefBatch>;
  round: number;
  /** Registers one ref of the batch alone (ObjectRef's side of a split). */
  unbatch: (ref: object, b: RefBatch, index: number) => void;
}

/** Batches not collected or split yet, oldest first. */
let waiting: Waiting[] = [];
let round = 0;
let canaryArmed = false;

const canary = new FinalizationRegistry<number>(() => {
  canaryArmed = false;
  round++;
  const keep: Waiting[] = [];
  for (const w of waiting) {
    const b = w.batch.deref();
    if (b === undefined) continue; // collected: its finalizer counts it down
    if (round - w.round < SPLIT_AFTER_ROUNDS) keep.push(w);
    else splitBatch(b, w.unbatch);
  }
  waiting = keep;
  if (waiting.length > 0) armCanary();
});

function armCanary(): void {
  if (canaryArmed) return;
  canaryArmed = true;
  canary.register({}, 0);
}

function splitBatch(b: RefBatch, unbatch: Waiting['unbatch']): void {
  const refs = b.refs;
  if (refs === undefined) return;
  b.held.split = true;
  b.refs = undefined;
  for (let i = 0; i < refs.length; i++) unbatch(refs[i]!, b, i);
}

/**
 * Makes `refs` one batch over the packed `ids` (copied by the caller), and
 * registers its holder in `registry`; the caller points each ref at it.
 */
export function newBatch(refs: object[], ids: Uint8Array, registry: FinalizationRegistry<BatchHeld>, unbatch: Waiting['unbatch']): RefBatch {
  const held: BatchHeld = { ids, released: undefined, split: false };
  const batch: RefBatch = { refs, held };
  registry.register(batch, held);
  waiting.push({ batch: new WeakRef(batch), round, unbatch });
  armCanary();
  return batch;
}

/** The packed ids of a collected batch not released by hand (all of them: the same array). */
export function idsToDrop(held: BatchHeld): Uint8Array {
  const released = held.released;
  if (released === undefined) return held.ids;
  const n = released.length;
  const out = new Uint8Array(held.ids.length);
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (released[i] === 1) continue;
    out.set(held.ids.subarray(i * 20, i * 20 + 20), k * 20);
    k++;
  }
  return out.subarray(0, k * 20);
}

/** Splits every batch alive now: its refs are then released one by one as they are collected. */
export function splitAllBatches(): void {
  for (const w of waiting) {
    const b = w.batch.deref();
    if (b !== undefined) splitBatch(b, w.unbatch);
  }
  waiting = [];
}
