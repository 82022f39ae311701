// Ownership helpers for the Runtime: telling the core which refs a value
// being stored holds (the borrower protocol), and recovering an object whose
// plasma copy was lost (lineage reconstruction). See "Borrowing" and
// "Lineage reconstruction" in docs/walkthrough-object.md.
import type { ObjectRef } from '../api/object_ref.js';
import type { NativeCoreWorker } from './native.js';

/**
 * Tells the core the refs inside the value it stores next: a put (the put
 * object holds them), a task submission (the task holds them until done) or
 * a task's return values (`slots[i]`: the return index of refs[i]; the
 * caller is registered as their borrower before the reply goes out).
 */
export function stageNested(core: NativeCoreWorker, refs: ObjectRef<unknown>[], slots?: number[]): void {
  const n = refs.length;
  if (n === 0) return;
  const ids = new Uint8Array(n * 20);
  const index = new Uint32Array(n);
  const owners: string[] = [];
  const slot = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = refs[i]!;
    ids.set(r.binary, i * 20);
    let k = slot.get(r.ownerAddress);
    if (k === undefined) {
      k = owners.length;
      owners.push(r.ownerAddress);
      slot.set(r.ownerAddress, k);
    }
    index[i] = k;
  }
  core.stageNested(ids, index, owners, slots === undefined ? undefined : Uint32Array.from(slots));
}

/** How many times one get asks for a lost object to be recovered before giving up. */
export const MAX_RECOVERIES = 3;

/**
 * The plasma copy of `ref` is missing. The owner resubmits the task that
 * created it (throws ObjectLostError when it cannot: a `ray.put` object, or
 * lineage not kept); a borrower asks the owner to do so. Either way the
 * object becomes pending here, and ready when recovered.
 */
export function requestRecovery(core: NativeCoreWorker, ref: ObjectRef<unknown>): void {
  if (ref.ownerAddress === '') core.reconstruct(ref.binary);
  else core.reportLost(ref.binary, ref.ownerAddress);
}

/** Object record as reported by the core (one process's view). */
export interface CoreObjectRecord {
  id: string;
  owned: boolean;
  owner: string;
  status: 'pending' | 'ready' | 'error' | 'unknown';
  location: 'memory' | 'plasma' | 'none';
  size: number;
  local: number;
  submitted: number;
  contained: number;
  borrowers: number;
  contains: number;
  lineage: boolean;
  node: string;
  copies: string[];
}

export interface CoreMemorySummary {
  address: string;
  pid: number;
  isDriver: boolean;
  lineageBytes: number;
  lineageMaxBytes: number;
  lineageEntries: number;
  lineageEvicted: number;
  reconstructions: number;
  objects: CoreObjectRecord[];
}

/** Owner: a borrower found our object's plasma copy missing; recompute it. */
export function recoverForBorrower(core: NativeCoreWorker, id: Uint8Array): void {
  try {
    core.reconstruct(id);
  } catch {
    // not recomputable: the core already answered the waiting borrowers with the error
  }
}
