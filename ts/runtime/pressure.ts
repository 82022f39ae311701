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
const PUT_FULL_WAIT_MS = 2000;
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
   * spilled object found no room to be restored).
   */
  underPressure<T>(op: () => T, first: ObjectStoreFullError): T {
    if (this.#rt.sweep() === 0) this.#spillFirstUntil = Date.now() + 1000;
    // Frees (plasma deletes) wait in the outbox until the turn ends: this is
    // a synchronous loop, so send them now.
    this.core.flush();
    const deadline = Date.now() + PUT_FULL_WAIT_MS;
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
}
