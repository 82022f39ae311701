// ListGet: ray.get of a list whose values are not all ready yet, in bounded
// slices so that a get of 10,000 refs never holds the event loop for long.
//
// The values ready when get is called are read at once (ObjectIO.get). The
// rest are looked at in slices of at most SLICE_MS: each is read if it is
// ready by now, or subscribed (one core subscription per object, shared
// with every other get and wait of it), or, when it needs the slow path (a
// plasma copy, a lost object), handed to the single-ref get. Ready events
// only queue their positions here; the values are read in slices too, the
// first in a microtask after the batch of events that made them ready, the
// next ones on later turns (setImmediate), so other work runs in between.
// An error value rejects the get as soon as its slice reaches it (Ray's
// get returns early on an error too); a timeout or shutdown rejects it
// and drops its subscriptions.
import type { ObjectRef } from '../api/object_ref.js';

/** Slices of reads and subscriptions take at most about this long. */
export const SLICE_MS = 4;
/** The clock is read once per this many refs. */
const CHECK_EVERY = 32;

/** What ObjectIO's ready-read says: a value, or which path the ref takes. */
export const PENDING: unique symbol = Symbol('pending');
export const SLOW: unique symbol = Symbol('slow path');

/** What a ListGet needs of its runtime. */
export interface ListGetSource {
  /** The value if ready here (throws a ready error); PENDING: wait for it; SLOW: the single-ref get. */
  readNow(ref: ObjectRef<unknown>): unknown;
  /** The single-ref get (plasma reads, recovery, borrowed refs). */
  getValue(ref: ObjectRef<unknown>, deadline?: number): Promise<unknown>;
  /** Calls `cb(true)` once `ref` is ready here (false at shutdown); returns the unwatch. */
  watch(ref: ObjectRef<unknown>, cb: (ready: boolean) => void): () => void;
  /** A worker inside a task gives its CPU back while it waits. */
  setBlocked(blocked: boolean): void;
  timeoutError(timeoutMs: number, ref: ObjectRef<unknown>): Error;
  shutdownError(): Error;
}

export class ListGet {
  readonly promise: Promise<unknown[]>;
  readonly #src: ListGetSource;
  readonly #refs: ObjectRef<unknown>[];
  readonly #values: unknown[];
  readonly #deadline: number | undefined;
  /** The next ref not looked at yet. */
  #next: number;
  /** Refs without a value yet (looked at or not). */
  #left: number;
  /** Positions whose Ready event came, to read. */
  #ready: number[] = [];
  #readyAt = 0;
  /** The unwatch of each subscribed position, until it is read. */
  #unwatch: Array<(() => void) | undefined> = [];
  #scheduled = false;
  #done = false;
  #blocked: boolean;
  #timer: NodeJS.Timeout | undefined;
  #resolve!: (v: unknown[]) => void;
  #reject!: (e: unknown) => void;

  /** `values[0..from)` are read; `start` is when the caller's slice began (performance.now()). */
  constructor(src: ListGetSource, refs: ObjectRef<unknown>[], values: unknown[], from: number,
    deadline: number | undefined, blocked: boolean, start: number) {
    this.#src = src;
    this.#refs = refs;
    this.#values = values;
    this.#next = from;
    this.#left = refs.length - from;
    this.#deadline = deadline;
    this.#blocked = blocked;
    this.promise = new Promise<unknown[]>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (blocked) src.setBlocked(true);
    if (deadline !== undefined) {
      const ms = Math.max(0, deadline - Date.now());
      this.#timer = setTimeout(() => this.#timeout(ms), ms);
    }
    this.#step(start);
  }

  /** One slice: read the positions made ready, then look at new refs; again on a later turn if time ran out. */
  #step(start = performance.now()): void {
    this.#scheduled = false;
    if (this.#done) return;
    try {
      let n = 0;
      while (this.#readyAt < this.#ready.length) {
        if (++n % CHECK_EVERY === 0 && performance.now() - start > SLICE_MS) return this.#later();
        const i = this.#ready[this.#readyAt++]!;
        this.#unwatch[i] = undefined;
        this.#take(i);
        if (this.#done) return;
      }
      this.#ready.length = 0;
      this.#readyAt = 0;
      const refs = this.#refs;
      while (this.#next < refs.length) {
        if (++n % CHECK_EVERY === 0 && performance.now() - start > SLICE_MS) return this.#later();
        this.#take(this.#next++);
        if (this.#done) return;
      }
    } catch (e) {
      this.#fail(e);
      return;
    }
    if (this.#left === 0) this.#finish();
  }

  /** Reads position `i`, or subscribes it, or hands it to the single-ref get. */
  #take(i: number): void {
    const ref = this.#refs[i]!;
    const v = this.#src.readNow(ref);
    if (v === PENDING) {
      this.#unwatch[i] = this.#src.watch(ref, (ok) => {
        if (!ok) return this.#fail(this.#src.shutdownError());
        this.#ready.push(i);
        if (!this.#scheduled) {
          this.#scheduled = true;
          queueMicrotask(() => this.#step());
        }
      });
      return;
    }
    if (v === SLOW) {
      this.#src.getValue(ref, this.#deadline).then((value) => {
        if (this.#done) return;
        this.#values[i] = value;
        if (--this.#left === 0 && this.#next === this.#refs.length) this.#finish();
      }, (e: unknown) => this.#fail(e));
      return;
    }
    this.#values[i] = v;
    this.#left--;
  }

  #later(): void {
    this.#scheduled = true;
    setImmediate(() => this.#step());
  }

  #timeout(ms: number): void {
    if (this.#done) return;
    const i = this.#unwatch.findIndex((u) => u !== undefined);
    this.#fail(this.#src.timeoutError(ms, this.#refs[i >= 0 ? i : this.#next]!));
  }

  #end(): void {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#blocked) this.#src.setBlocked(false);
    for (const u of this.#unwatch) u?.();
    this.#unwatch.length = 0;
  }

  #finish(): void {
    this.#end();
    this.#resolve(this.#values);
  }

  #fail(e: unknown): void {
    if (this.#done) return;
    this.#end();
    this.#reject(e);
  }
}
