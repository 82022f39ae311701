// StorePressure: what this process does when the node's object store is
// full or nearly so. A put that finds no room sweeps (frees the refs and
// views this process can no longer reach), lets the node server spill, and
// waits a bounded time for other processes to free theirs; the node
// server's TriggerGc asks for a full collection.
import { ObjectStoreFullError } from '../api/errors.js';
import { fullGc } from './gc.js';
import type { NativeCoreWorker } from './native.js';
import type { Runtime } from './runtime.js';

/** How long a put waits for other processes to free room in a full store. */
export const PUT_FULL_WAIT_MS = 2000;
/**
 * How long a get waits for room to restore a spilled object. It waits
 * asynchronously: the event loop keeps running, so this process's own
 * finalizers, the node's TriggerGc and other processes' releases land.
 */
export const RESTORE_FULL_WAIT_MS = 10_000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export class StorePressure {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;
  /** Until then, creates may spill without a sweep first (the last sweep found nothing dead). */
  #spillFirstUntil = 0;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.core = rt.core;
  }

  /** A create may spill at once: the last sweep (within 1 s) found nothing dead. */
  spillFirst(): boolean {
    return Date.now() < this.#spillFirstUntil;
  }

  /**
   * The node's store is under pressure: collect now so handles and
   * zero-copy views nobody can reach give their objects back (as Ray's
   * raylet-triggered global GC). Finalizers run on the next turn; the
   * resulting decrements are flushed right after them.
   */
  collectGarbage(): void {
    const gc = fullGc();
    if (gc) gc();
    setImmediate(() => setImmediate(() => this.#rt.flushDrops()));
  }

  /**
   * The store is full. Free what this process holds but can no longer reach
   * (sweep), then ask again, now letting the node server spill to disk. If
   * even that fails (what is left is mapped by live views or being written,
   * or the spill disk is full), give other processes (asked by the node
   * server to collect too) a bounded time to release theirs; put is
   * synchronous, so this waits in place. `op` is the create (or a get whose
   * spilled object found no room to be restored). `waitMs`: how long to
   * wait in place (0: sweep and try once more; the caller waits, without
   * blocking, with waitForRoom or a loop of its own).
   */
  underPressure<T>(op: () => T, first: ObjectStoreFullError, waitMs = PUT_FULL_WAIT_MS): T {
    if (this.#rt.sweep() === 0) this.#spillFirstUntil = Date.now() + 1000;
    // Frees (plasma deletes) wait in the outbox until the turn ends: this is
    // a synchronous loop, so send them now.
    this.core.flush();
    const deadline = Date.now() + waitMs;
    let last: unknown = first;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        return op();
      } catch (e) {
        if (!(e instanceof ObjectStoreFullError)) throw e;
        last = e;
      }
      if (Date.now() + delay > deadline) throw last;
      Atomics.wait(sleepCell, 0, 0, delay);
    }
  }

  /**
   * The asynchronous form, for callers that may yield (a get restoring a
   * spilled object): retries `op` with backoff for up to `boundMs`, sweeping
   * again now and then, while releases already on their way arrive (a view
   * dropped here, whose finalizer runs on a later turn; another process
   * collecting after the node's TriggerGc). Rethrows the last
   * ObjectStoreFullError past the bound.
   */
  async waitForRoom<T>(op: () => T, first: ObjectStoreFullError, boundMs: number): Promise<T> {
    const deadline = Date.now() + boundMs;
    let last: ObjectStoreFullError = first;
    let sweptAt = 0;
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
      const now = Date.now();
      if (now - sweptAt >= 250) {
        sweptAt = now;
        this.#rt.sweep();
        this.core.flush();
      }
      try {
        return op();
      } catch (e) {
        if (!(e instanceof ObjectStoreFullError) || (e as { permanent?: boolean }).permanent) throw e;
        last = e;
      }
      if (this.#rt.closed || Date.now() + delay > deadline) throw last;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
