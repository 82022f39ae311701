// Waiting: readiness of objects in this process. Callbacks per object
// (ray.get), listeners told every object that becomes ready (ray.wait), and
// the core subscriptions behind them. Fed by the Ready events (events.ts).
import type { ObjectRef } from '../api/object_ref.js';
import type { NativeCoreWorker } from './native.js';
import type { Runtime } from './runtime.js';

/** An object id as a compact map key (latin1 string of the bytes). */
export const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

type Waiter = (ready: boolean) => void;

export class Waiting {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;
  #waiters = new Map<string, Waiter[]>();
  /** Keys the core was asked to report (subscribe) and has not reported yet. */
  #subscribed = new Set<string>();
  /** ray.wait calls in progress: told the key of every object that becomes ready. */
  #anyReady = new Set<(key: string) => void>();
  #shutdownHooks = new Set<() => void>();

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
    for (const h of this.#shutdownHooks) h();
    this.#shutdownHooks.clear();
  }

  /** A Ready event: the object with this id is ready here. */
  /** `k`: the ready object's key (keyOf of its id). */
  ready(k: string): void {
    this.#subscribed.delete(k);
    const list = this.#waiters.get(k);
    if (list) {
      this.#waiters.delete(k);
      this.#hold(-1);
      for (const w of list) w(true);
    }
    for (const l of this.#anyReady) l(k);
  }

  /**
   * Calls `cb(true)` once `ref` is ready here (`cb(false)` at shutdown).
   * Returns an unwatch function that removes the callback without calling it.
   */
  #watch(ref: ObjectRef<unknown>, cb: Waiter): () => void {
    const k = ref.key;
    let list = this.#waiters.get(k);
    const first = !list;
    if (!list) {
      list = [];
      this.#waiters.set(k, list);
      this.#hold(1);
    }
    list.push(cb);
    if (first) this.#subscribe(ref);
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

  #subscribe(ref: ObjectRef<unknown>): void {
    const k = ref.key;
    if (this.#subscribed.has(k)) return;
    this.#subscribed.add(k);
    this.core.subscribe(ref.binary, ref.ownerAddress);
  }

  /** Resolves true when `ref` is ready here, false on timeout or shutdown. */
  waitReady(ref: ObjectRef<unknown>, timeoutMs?: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      // A worker waiting inside a task gives its CPU back meanwhile.
      const blocked = !this.#rt.isDriver && this.#rt.executing > 0;
      if (blocked) this.core.setBlocked(true);
      const done: Waiter = (ok) => {
        if (timer) clearTimeout(timer);
        if (blocked) this.core.setBlocked(false);
        resolve(ok);
      };
      const unwatch = this.#watch(ref, done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          unwatch();
          done(false);
        }, timeoutMs);
      }
    });
  }

  async wait(refs: ObjectRef<unknown>[], numReturns: number, timeoutMs?: number): Promise<[ObjectRef<unknown>[], ObjectRef<unknown>[]]> {
    this.#checkOpen('ray.wait()');
    // One native call for the readiness of every ref. Borrowed refs not yet
    // fetched read as not ready and are subscribed below.
    const ids = new Uint8Array(refs.length * 20);
    for (let i = 0; i < refs.length; i++) ids.set(refs[i]!.binary, i * 20);
    const mask = this.core.readyMask(ids);
    const readySet = new Set<ObjectRef<unknown>>();
    for (let i = 0; i < refs.length && readySet.size < numReturns; i++) if (mask[i]) readySet.add(refs[i]!);
    if (readySet.size < numReturns && timeoutMs !== 0) {
      const pending = new Map<string, ObjectRef<unknown>>();
      for (let i = 0; i < refs.length; i++) {
        const r = refs[i]!;
        if (mask[i] || readySet.has(r)) continue;
        pending.set(r.key, r);
        this.#subscribe(r); // one core subscription per object, kept across waits
      }
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        const blocked = !this.#rt.isDriver && this.#rt.executing > 0;
        if (blocked) this.core.setBlocked(true);
        this.#hold(1);
        const finish = (): void => {
          if (!this.#anyReady.delete(listener)) return;
          this.#shutdownHooks.delete(finish);
          if (timer) clearTimeout(timer);
          if (blocked) this.core.setBlocked(false);
          this.#hold(-1);
          resolve();
        };
        const listener = (key: string): void => {
          const r = pending.get(key);
          if (r !== undefined) readySet.add(r);
          if (readySet.size >= numReturns) finish();
        };
        this.#anyReady.add(listener);
        this.#shutdownHooks.add(finish);
        if (timeoutMs !== undefined) timer = setTimeout(finish, timeoutMs);
      });
    }
    // Ray's contract: at most numReturns ready, in input order; the rest
    // (even if ready by now) are returned as not ready.
    const ready: ObjectRef<unknown>[] = [];
    const notReady: ObjectRef<unknown>[] = [];
    for (const r of refs) {
      if (ready.length < numReturns && readySet.has(r)) ready.push(r);
      else notReady.push(r);
    }
    return [ready, notReady];
  }
}
