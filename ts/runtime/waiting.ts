// Waiting: readiness of objects in this process. Callbacks per object
// (ray.get), ray.wait calls in progress, and the core subscriptions behind
// them. Fed by the Ready events (events.ts).
//
// ray.wait is called again and again on a shrinking list (ray_perf's "wait
// 1k refs" calls it 1,000 times on 1,000..1 refs), so its per-ref work is a
// few field reads: each handle points to a ReadyCell shared by the handles
// of its id. The core is asked (one readyMask call) only about handles
// without a cell; a pending one is subscribed once and its cell is marked
// ready by its Ready event. A wait that must block is woken (once per turn)
// when a Ready event lands on a cell some wait looked at, and scans again.
//
// fetchLocal (Ray's default): a ready object whose value is in plasma on
// another node (readyMask 2) counts only once it is on this node: the wait
// asks the core to fetch it (one fetchLocal call per scan for all of them;
// this node's server pulls it) and its Local event marks the cell local.
import type { ObjectRef, ReadyCell } from '../api/object_ref.js';
import type { NativeCoreWorker } from './native.js';
import type { Runtime } from './runtime.js';
import { onTaskCancelled } from '../worker/task_context.js';

/** An object id as a compact map key (latin1 string of the bytes). */
export const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** The cell of every handle whose object the core reported ready (it stays ready). */
const READY: ReadyCell = { ready: true, watched: false, where: 1 };

type Waiter = (ready: boolean) => void;

export class Waiting {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;
  #waiters = new Map<string, Waiter[]>();
  /** Cells of the keys the core was asked to report (subscribe) and has not reported yet. */
  #cells = new Map<string, ReadyCell>();
  /** Blocked ray.wait calls: each scans its refs again when woken (false: shutdown). */
  #blocked = new Set<(open: boolean) => void>();
  /** Cells of ready objects whose value is on another node (where 2), by key, until local. */
  #remote = new Map<string, ReadyCell>();
  /** Keys whose fetch to this node was asked for, until their Local event. */
  #fetching = new Set<string>();
  #wakeScheduled = false;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.core = rt.core;
  }

  #hold(delta: number): void {
    this.#rt.hold(delta);
  }

  #checkOpen(what: string): void {
    this.#rt.checkOpen(what);
  }

  /** Shutdown: every waiter is told false, every ray.wait returns. */
  shutdown(): void {
    for (const [, list] of this.#waiters) for (const w of list) w(false);
    this.#waiters.clear();
    for (const w of [...this.#blocked]) w(false);
    this.#blocked.clear();
    this.#remote.clear();
    this.#fetching.clear();
  }

  /** A Local event: the object with key `k`, fetched for a wait, is on this node now (or failed to come: its get says why). */
  local(k: string): void {
    this.#fetching.delete(k);
    const cell = this.#remote.get(k);
    if (cell === undefined) return;
    this.#remote.delete(k);
    cell.where = 1;
    if (cell.watched) this.#scheduleWake();
  }

  #scheduleWake(): void {
    if (this.#blocked.size > 0 && !this.#wakeScheduled) {
      // Once per turn: a batch of events costs each blocked wait one scan.
      this.#wakeScheduled = true;
      queueMicrotask(() => this.#wake());
    }
  }

  /** A Ready event: the object with this id is ready here. */
  /** `k`: the ready object's key (keyOf of its id). */
  ready(k: string): void {
    const cell = this.#cells.get(k);
    if (cell !== undefined) {
      this.#cells.delete(k);
      cell.ready = true;
      if (cell.watched) this.#scheduleWake();
    }
    const list = this.#waiters.get(k);
    if (list) {
      this.#waiters.delete(k);
      this.#hold(-1);
      for (const w of list) w(true);
    }
  }

  #wake(): void {
    this.#wakeScheduled = false;
    for (const w of [...this.#blocked]) w(true);
  }

  /**
   * Calls `cb(true)` once `ref` is ready here (`cb(false)` at shutdown).
   * Returns an unwatch function that removes the callback without calling it.
   */
  watch(ref: ObjectRef<unknown>, cb: Waiter): () => void {
    const k = ref.key;
    let list = this.#waiters.get(k);
    if (!list) {
      list = [];
      this.#waiters.set(k, list);
      this.#hold(1);
    }
    list.push(cb);
    this.#subscribe(ref); // once per key; gives this handle the pending cell
    return () => {
      const l = this.#waiters.get(k);
      if (!l) return;
      const i = l.indexOf(cb);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) {
        this.#waiters.delete(k);
        this.#hold(-1);
      }
    };
  }

  /**
   * The core said `ref` is not ready: its cell is the pending one of its key,
   * subscribed once (kept across waits until the Ready event).
   */
  #subscribe(ref: ObjectRef<unknown>): ReadyCell {
    const k = ref.key;
    let cell = this.#cells.get(k);
    if (cell === undefined) {
      cell = { ready: false, watched: false, where: 0 };
      this.#cells.set(k, cell);
      this.core.subscribe(ref.binary, ref.ownerAddress);
    }
    ref.readyCell = cell;
    return cell;
  }

  /**
   * Resolves true when `ref` is ready here, false on timeout or shutdown.
   * Inside a task: rejects with TaskCancelledError once the task is cancelled.
   */
  waitReady(ref: ObjectRef<unknown>, timeoutMs?: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      // A worker waiting inside a task gives its CPU back meanwhile.
      const blocked = !this.#rt.isDriver && this.#rt.executing > 0;
      if (blocked) this.core.setBlocked(true);
      let endCancel: (() => void) | undefined;
      const done: Waiter = (ok) => {
        if (timer) clearTimeout(timer);
        if (blocked) this.core.setBlocked(false);
        endCancel?.();
        resolve(ok);
      };
      const unwatch = this.watch(ref, done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          unwatch();
          done(false);
        }, timeoutMs);
      }
      if (blocked) {
        const task = this.#rt.taskContext();
        if (task !== undefined) {
          endCancel = onTaskCancelled(task, (reason) => {
            reject(reason); // settles first: done's resolve is then a no-op
            unwatch();
            done(false);
          });
        }
      }
    });
  }

  /**
   * `refs[at[j]]` are not known here (or ready, and where unknown): one
   * readyMask call, a subscription for each pending one.
   */
  #ask(refs: ObjectRef<unknown>[], at: number[]): void {
    const ids = new Uint8Array(at.length * 20);
    for (let j = 0; j < at.length; j++) ids.set(refs[at[j]!]!.binary, j * 20);
    const mask = this.core.readyMask(ids);
    for (let j = 0; j < at.length; j++) {
      const r = refs[at[j]!]!;
      const m = mask[j];
      const cell = r.readyCell;
      if (m === 0) this.#subscribe(r); // borrowed refs not fetched yet read as not ready: the subscription fetches them
      else if (m === 1) {
        if (cell !== undefined && cell !== READY && cell.ready) cell.where = 1; // shared by the handles of its id
        else r.readyCell = READY;
      } else { // ready, its value on another node
        const k = r.key;
        let remote = this.#remote.get(k);
        if (remote === undefined) {
          remote = cell !== undefined && cell !== READY && cell.ready ? cell : { ready: true, watched: false, where: 2 };
          remote.where = 2;
          this.#remote.set(k, remote);
        }
        r.readyCell = remote;
      }
    }
  }

  /** fetchLocal: the refs at `at` are ready on another node: one fetchLocal call for those not asked yet. */
  #fetch(refs: ObjectRef<unknown>[], at: number[]): void {
    const ask: number[] = [];
    for (const i of at) {
      const k = refs[i]!.key;
      if (this.#fetching.has(k)) continue;
      this.#fetching.add(k);
      ask.push(i);
    }
    if (ask.length === 0) return;
    const ids = new Uint8Array(ask.length * 20);
    for (let j = 0; j < ask.length; j++) ids.set(refs[ask[j]!]!.binary, j * 20);
    this.core.fetchLocal(ids);
  }

  /**
   * Splits `refs` into the first `numReturns` ready ones and the rest, input
   * order kept; null when fewer than `numReturns` are ready (`all`: split
   * anyway). It reads refs only up to the last ready one it returns (a
   * list whose first ref is ready costs one read and two copies), and marks
   * the pending cells it passes as watched.
   */
  #scan(refs: ObjectRef<unknown>[], numReturns: number, all: boolean, fetchLocal: boolean): [ObjectRef<unknown>[], ObjectRef<unknown>[]] | null {
    const n = refs.length;
    let at: number[];
    let remote: number[] | undefined;
    for (;;) {
      at = [];
      remote = undefined;
      let unknown: number[] | undefined;
      for (let i = 0; i < n && at.length < numReturns; i++) {
        const cell = refs[i]!.readyCell;
        if (cell === undefined) (unknown ??= []).push(i);
        else if (cell.ready) {
          if (!fetchLocal || cell.where === 1) at.push(i);
          else if (cell.where === 0) (unknown ??= []).push(i);
          else {
            cell.watched = true;
            (remote ??= []).push(i);
          }
        } else cell.watched = true;
      }
      if (unknown === undefined) break;
      this.#ask(refs, unknown); // then again: an earlier ref may be ready
    }
    if (remote !== undefined) this.#fetch(refs, remote);
    if (at.length < numReturns && !all) return null;
    const ready = at.map((i) => refs[i]!);
    return [ready, without(refs, at)];
  }

  /**
   * Ray's contract: at most numReturns ready, in input order; the rest (even
   * if ready by now) are returned as not ready. A ready object stays ready
   * here (a copy lost later is recovered by the get that finds it missing).
   */
  async wait(refs: ObjectRef<unknown>[], numReturns: number, timeoutMs?: number, fetchLocal = true): Promise<[ObjectRef<unknown>[], ObjectRef<unknown>[]]> {
    this.#checkOpen('ray.wait()');
    const now = this.#scan(refs, numReturns, timeoutMs === 0, fetchLocal);
    if (now !== null) return now;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      // A worker waiting inside a task gives its CPU back meanwhile.
      const blocked = !this.#rt.isDriver && this.#rt.executing > 0;
      if (blocked) this.core.setBlocked(true);
      this.#hold(1);
      let endCancel: (() => void) | undefined;
      const finish = (split: [ObjectRef<unknown>[], ObjectRef<unknown>[]]): void => {
        this.#blocked.delete(scan);
        if (timer) clearTimeout(timer);
        if (blocked) this.core.setBlocked(false);
        this.#hold(-1);
        endCancel?.();
        resolve(split);
      };

      // Woken: scan again. At shutdown or timeout: return what is ready now.
      const scan = (open: boolean): void => {
        const split = open || !this.#rt.closed ? this.#scan(refs, numReturns, !open, fetchLocal) : Waiting.#known(refs, numReturns);
        if (split !== null) finish(split);
      };
      this.#blocked.add(scan);
      if (timeoutMs !== undefined) timer = setTimeout(() => scan(false), timeoutMs);
      // Inside a task: its cancellation ends the wait with TaskCancelledError.
      const task = blocked ? this.#rt.taskContext() : undefined;
      if (task !== undefined) {
        endCancel = onTaskCancelled(task, (reason) => {
          reject(reason); // settles first: finish's resolve is then a no-op
          finish([[], refs.slice()]);
        });
      }
    });
  }

  /** After shutdown (no core to ask): the first `numReturns` refs known ready. */
  static #known(refs: ObjectRef<unknown>[], numReturns: number): [ObjectRef<unknown>[], ObjectRef<unknown>[]] {
    const at: number[] = [];
    for (let i = 0; i < refs.length && at.length < numReturns; i++) if (refs[i]!.readyCell?.ready) at.push(i);
    return [at.map((i) => refs[i]!), without(refs, at)];
  }
}

/** `refs` without the positions `at` (ascending): copied in runs, not one push per ref. */
function without<T>(refs: T[], at: number[]): T[] {
  if (at.length === 0) return refs.slice();
  if (at.length > 16) {
    const out: T[] = [];
    let k = 0;
    for (let i = 0; i < refs.length; i++) {
      if (i === at[k]) k++;
      else out.push(refs[i]!);
    }
    return out;
  }
  const runs: T[][] = [];
  let from = 0;
  for (const i of at) {
    if (i > from) runs.push(refs.slice(from, i));
    from = i + 1;
  }
  const head = refs.slice(from); // the tail run; concat keeps the order below
  return runs.length === 0 ? head : runs[0]!.concat(...runs.slice(1), head);
}
