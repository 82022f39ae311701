// Runtime: one per process. Binds the API to this process's CoreWorker:
// object get/put/wait, task submission, event dispatch from the core, and
// reference bookkeeping for ObjectRefs. The driver's runtime also hosts the
// embedded node server (raylet + plasma + GCS on C++ threads).
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { TaskContext } from './task_context.js';
import { ObjectRef, toHex, type HeldRef, type RefRuntime } from './object_ref.js';
import { RefCodec } from './ref_codec.js';
import {
  EventType, loadAddon,
  type NativeArg, type NativeCoreWorker, type NativeEvent, type NativeNodeServer,
} from './native.js';
import { deserialize, serialize, serializeToBytes, writeTo, type RefHooks } from './serialization.js';
import { MAX_RECOVERIES, recoverForBorrower, requestRecovery, stageNested } from './ownership.js';
import { fullGc } from './gc.js';
import { errorFromRecord, GetTimeoutError, ObjectLostError, ObjectStoreFullError, RaySystemError, type ErrorRecord } from './errors.js';


/** Values up to this size live in the owner's memory store and travel inline. */
export const MAX_INLINE_BYTES = 100 * 1024;

export interface FunctionDescriptor {
  hash: string;
  source?: string;
  moduleUrl?: string;
  exportName?: string;
  name: string;
}

const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

type Waiter = (ready: boolean) => void;

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

/** How long a put waits for other processes to free room in a full store. */
const PUT_FULL_WAIT_MS = 2000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Binary data too large to inline: skip the all-inline fast path. */
function isLargeBinary(v: unknown): boolean {
  return (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) && v.byteLength > MAX_INLINE_BYTES;
}

interface GeneratorState {
  items: ObjectRef<unknown>[];
  ended: boolean;
  wake: (() => void) | undefined;
}

export class Runtime implements RefRuntime {
  readonly core: NativeCoreWorker;
  readonly isDriver: boolean;
  readonly address: string;
  readonly workerId: string;
  readonly nodeId: string;
  readonly jobId: number;
  readonly sessionDir: string;
  readonly namespace: string;
  readonly storeCapacity: number;
  node: NativeNodeServer | undefined;
  closed = false;
  /** Worker side: receives execute/cancel events. */
  onExecute: ((ev: NativeEvent) => void) | undefined;
  onCancel: ((ev: NativeEvent) => void) | undefined;
  /** Worker side: this worker hosts an actor. */
  hostsActor = false;
  /** Worker side: true while a task runs (gets then tell the raylet we block). */
  executing = 0;
  /** Worker side: the task running now (tasks run one at a time; see taskContext()). */
  currentTask: TaskContext | undefined;
  /** Worker side: set by the executor for actors that run calls concurrently. */
  taskStore: AsyncLocalStorage<TaskContext> | undefined;

  readonly hooks: RefHooks;
  /** Nested-ref encoding/decoding and their batched counting. */
  readonly refs: RefCodec;
  #store: Uint8Array;
  #waiters = new Map<string, Waiter[]>();
  /** Keys the core was asked to report (subscribe) and has not reported yet. */
  #subscribed = new Set<string>();
  /** ray.wait calls in progress: told the key of every object that becomes ready. */
  #anyReady = new Set<(key: string) => void>();
  #shutdownHooks = new Set<() => void>();
  #gcs = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  #generators = new Map<string, GeneratorState>();
  #drops: Uint8Array[] = [];
  /** Until then, creates may spill without a sweep first (the last sweep found nothing dead). */
  #spillFirstUntil = 0;
  #dropScheduled = false;
  #holds = 0;
  #plasmaHolds = new FinalizationRegistry<ViewEntry>((e) => this.#viewGone(e));
  /** Large refs and zero-copy views by weak token: a sweep under store pressure frees the dead ones at once. */
  #weak = new Map<number, HeldRef | ViewEntry>();
  /** The addon writes new ids here (no Buffer allocated per call). */
  #scratch = new Uint8Array(16 + 20 * 64);

  constructor(opts: { nodeSocket: string; listenPath: string; isDriver: boolean; workerId?: string; namespace?: string; lineageMaxBytes?: number }) {
    const addon = loadAddon();
    const init: { nodeSocket: string; listenPath: string; isDriver: boolean; workerId?: string; lineageMaxBytes?: number } = {
      nodeSocket: opts.nodeSocket, listenPath: opts.listenPath, isDriver: opts.isDriver,
    };
    if (opts.workerId) init.workerId = opts.workerId;
    if (opts.lineageMaxBytes !== undefined) init.lineageMaxBytes = opts.lineageMaxBytes;
    // kick: the addon queued frames this turn; one flush at the turn's end
    // sends them all (one sendmsg per connection, from this thread).
    let flushQueued = false;
    const flush = (): void => {
      flushQueued = false;
      if (!this.closed) this.core.flush();
    };
    const kick = (): void => {
      if (flushQueued) return;
      flushQueued = true;
      queueMicrotask(flush);
    };
    this.core = new addon.NativeCoreWorker(init, () => this.#onEvents(), kick);
    const info = this.core.info();
    this.isDriver = opts.isDriver;
    this.address = info.address;
    this.workerId = info.workerId;
    this.nodeId = info.nodeId;
    this.jobId = info.jobId;
    this.sessionDir = info.sessionDir;
    this.storeCapacity = info.storeSize;
    this.namespace = opts.namespace ?? '';
    this.#store = new Uint8Array(this.core.storeBuffer());
    this.core.setScratch(this.#scratch);
    this.refs = new RefCodec(this, this.core);
    this.hooks = this.refs.hooks;
  }

  // ------------------------------------------------------------ lifecycle --

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, list] of this.#waiters) for (const w of list) w(false);
    this.#waiters.clear();
    for (const h of this.#shutdownHooks) h();
    this.#shutdownHooks.clear();
    for (const [, p] of this.#gcs) p.reject(new RaySystemError('rayts was shut down while a cluster call was pending'));
    this.#gcs.clear();
    this.core.shutdown();
    if (this.node) {
      this.node.stop();
      this.node = undefined;
    }
  }

  #hold(delta: number): void {
    const before = this.#holds;
    this.#holds += delta;
    if (this.closed) return;
    if (before === 0 && this.#holds > 0) this.core.setRef(true);
    else if (before > 0 && this.#holds === 0) this.core.setRef(false);
  }

  /** Keeps the process alive (workers). */
  keepAlive(): void {
    this.#hold(1);
  }

  // ---------------------------------------------------------------- events --

  #onEvents(): void {
    if (this.closed) return;
    const events = this.core.drainEvents();
    for (const ev of events) {
      if (ev instanceof Uint8Array) {
        const k = keyOf(ev);
        this.#subscribed.delete(k);
        const list = this.#waiters.get(k);
        if (list) {
          this.#waiters.delete(k);
          this.#hold(-1);
          for (const w of list) w(true);
        }
        for (const l of this.#anyReady) l(k);
        continue;
      }
      switch (ev.t) {
        case EventType.Execute:
          this.onExecute?.(ev);
          break;
        case EventType.GenItem: {
          const st = this.#generators.get(keyOf(ev.taskId!));
          const ref = new ObjectRef<unknown>(ev.id as Uint8Array, '', this);
          if (!st) {
            ref.release();
            break;
          }
          st.items.push(ref);
          st.wake?.();
          break;
        }
        case EventType.GenEnd: {
          const st = this.#generators.get(keyOf(ev.taskId!));
          if (st) {
            st.ended = true;
            st.wake?.();
          }
          break;
        }
        case EventType.Gcs: {
          const p = this.#gcs.get(ev.id as number);
          if (p) {
            this.#gcs.delete(ev.id as number);
            this.#hold(-1);
            if (ev.code === 0) p.resolve(ev.text ?? '');
            else p.reject(new RaySystemError(ev.text ?? 'cluster call failed'));
          }
          break;
        }
        case EventType.Cancel:
          this.onCancel?.(ev);
          break;
        case EventType.TriggerGc:
          this.#collectGarbage();
          break;
        case EventType.RecoverObject: // a borrower lost the plasma copy of an object we own
          recoverForBorrower(this.core, ev.id as Uint8Array);
          break;
      }
    }
  }

  /**
   * The node's store is under pressure: collect now so handles and
   * zero-copy views nobody can reach give their objects back (as Ray's
   * raylet-triggered global GC). Finalizers run on the next turn; the
   * resulting decrements are flushed right after them.
   */
  #collectGarbage(): void {
    const gc = fullGc();
    if (gc) gc();
    setImmediate(() => setImmediate(() => this.flushDrops()));
  }

  // ------------------------------------------------------------------ refs --

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
    if (this.closed) return;
    this.core.adjustExternalMemory(-hold.size);
    this.core.plasmaRelease(hold.id);
  }

  trackLarge(held: HeldRef, ref: ObjectRef<unknown>): void {
    held.token = this.core.trackWeak(ref);
    this.#weak.set(held.token, held);
  }

  #untrackHeld(held: HeldRef): void {
    if (held.token === undefined) return;
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
  sweep(): number {
    if (this.closed) return 0;
    const gc = fullGc();
    if (gc) gc();
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
        e.token = undefined;
        if (e.externalBytes > 0) this.core.adjustExternalMemory(-e.externalBytes);
        this.#drops.push(e.binary);
      }
    }
    this.flushDrops();
    return dead.length;
  }

  /** A handle was garbage-collected: batch the decrements. */
  dropRef(binary: Uint8Array, externalBytes = 0, held?: HeldRef): void {
    if (held) this.#untrackHeld(held);
    if (this.closed) return;
    if (externalBytes > 0) this.core.adjustExternalMemory(-externalBytes);
    this.#drops.push(binary);
    if (!this.#dropScheduled) {
      this.#dropScheduled = true;
      setImmediate(() => this.flushDrops());
    }
  }

  /** ref.release(): the count drops now, so a loop that releases frees as it goes. */
  releaseRef(binary: Uint8Array, externalBytes = 0, held?: HeldRef): void {
    if (held) this.#untrackHeld(held);
    if (this.closed) return;
    if (externalBytes > 0) this.core.adjustExternalMemory(-externalBytes);
    this.core.removeLocalRefs([binary]);
  }

  flushDrops(): void {
    this.#dropScheduled = false;
    const drops = this.#drops;
    if (drops.length === 0) return;
    this.#drops = [];
    if (!this.closed) this.core.removeLocalRefs(drops);
  }

  /** A ref this process already counts (returned by the core with count 1). */
  adoptRef<T>(binary: Uint8Array, externalBytes = 0): ObjectRef<T> {
    if (externalBytes > 0) this.core.adjustExternalMemory(externalBytes);
    return new ObjectRef<T>(binary, '', this, externalBytes);
  }

  // --------------------------------------------------------------- objects --

  #checkOpen(what: string): void {
    if (this.closed) throw new RaySystemError(`rayts is shut down: ${what} after ray.shutdown()`);
  }

  put<T>(value: T): ObjectRef<T> {
    this.#checkOpen('ray.put()');
    const nested: ObjectRef<unknown>[] = []; // refs inside the value: the put object holds them
    if (!isLargeBinary(value)) {
      const small = this.refs.collecting(nested, () => serializeToBytes(value, this.hooks, 'ray.put value'));
      if (small.byteLength <= MAX_INLINE_BYTES) {
        stageNested(this.core, nested);
        return this.adoptRef<T>((this.core.putInline(small) ?? this.#scratch).slice(0, 20));
      }
      nested.length = 0;
    }
    const s = this.refs.collecting(nested, () => serialize(value, this.hooks, 'ray.put value'));
    if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
      const bytes = new Uint8Array(s.totalSize);
      writeTo(s, bytes);
      stageNested(this.core, nested);
      return this.adoptRef<T>((this.core.putInline(bytes) ?? this.#scratch).slice(0, 20));
    }
    const id = this.core.nextPutId();
    this.#writePlasma(id, s);
    stageNested(this.core, nested);
    this.core.plasmaSeal(id, true);
    return this.adoptRef<T>(id, s.totalSize);
  }

  #writePlasma(id: Uint8Array, s: ReturnType<typeof serialize>): void {
    if (s.totalSize > this.storeCapacity) {
      // Can never fit: fail at once, no waiting for room.
      const e = new ObjectStoreFullError(`cannot store an object of ${s.totalSize} bytes: larger than the whole object store (${this.storeCapacity} bytes); start rayts with a larger objectStoreMemory`);
      (e as { permanent?: boolean }).permanent = true;
      throw e;
    }
    let offset: number;
    try {
      // First without spilling: garbage this process can free at once (a
      // sweep) is cheaper to drop than to write to disk. But not a full GC
      // per put: after a sweep that found nothing, spill at once for 1 s.
      offset = this.core.plasmaCreate(id, s.totalSize, Date.now() < this.#spillFirstUntil);
    } catch (e) {
      if (!(e instanceof ObjectStoreFullError)) throw e;
      offset = this.#underPressure(() => this.core.plasmaCreate(id, s.totalSize), e);
    }
    writeTo(s, this.#store.subarray(offset, offset + s.totalSize));
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
  #underPressure<T>(op: () => T, first: ObjectStoreFullError): T {
    if (this.sweep() === 0) this.#spillFirstUntil = Date.now() + 1000;
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

  /** Worker side: encodes a task's return value for the reply. */
  encodeReturn(value: unknown, returnId: Uint8Array, label: string, nested: ObjectRef<unknown>[] = []): [Uint8Array | null, boolean, boolean, number] {
    nested.length = 0;
    if (!isLargeBinary(value)) {
      const small = this.refs.collecting(nested, () => serializeToBytes(value, this.hooks, label));
      if (small.byteLength <= MAX_INLINE_BYTES) return [small, false, false, small.byteLength];
      nested.length = 0;
    }
    const s = this.refs.collecting(nested, () => serialize(value, this.hooks, label));
    if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
      const bytes = new Uint8Array(s.totalSize);
      writeTo(s, bytes);
      return [bytes, false, false, s.totalSize];
    }
    try {
      this.#writePlasma(returnId, s);
    } catch (e) {
      // Another attempt of this task (one a crash cut off) already sealed
      // this return: keep that copy, as Ray does. A copy still being
      // written is retried by the executor (see Executor.#encode).
      if ((e as { code?: string }).code === 'AlreadyExists' && /\(sealed by/.test((e as Error).message)) {
        return [null, true, false, s.totalSize];
      }
      throw e;
    }
    this.core.plasmaSeal(returnId, false);
    return [null, true, false, s.totalSize];
  }

  /** Deserializes with nested refs counted in one native call. */
  deserialize(data: Uint8Array, views?: ArrayBufferView[]): unknown {
    try {
      return deserialize(data, this.hooks, views);
    } finally {
      this.refs.flushAdds();
    }
  }

  #decode(ref: ObjectRef<unknown>, r: ReturnType<NativeCoreWorker['tryGet']>): unknown {
    if (r instanceof Uint8Array) return this.deserialize(r);
    if (r === true) return this.#readPlasma(ref.binary);
    if (r === null || r === false) {
      throw new ObjectLostError(ref.id, `object ${ref.id} is not known to this process (it was freed or never existed)`);
    }
    throw errorFromRecord(JSON.parse(r.error) as ErrorRecord);
  }

  #readPlasma(id: Uint8Array): unknown {
    let offset: number, size: number;
    try {
      [offset, size] = this.core.plasmaGet(id);
    } catch (e) {
      if (!(e instanceof ObjectStoreFullError)) throw e; // else: spilled, no room to restore yet
      [offset, size] = this.#underPressure(() => this.core.plasmaGet(id), e);
    }
    const view = this.#store.subarray(offset, offset + size);
    const views: ArrayBufferView[] = [];
    let value: unknown;
    try {
      value = this.deserialize(view, views);
    } catch (e) {
      this.core.plasmaRelease(id);
      throw e;
    }
    // Out-of-band buffers are views over shared memory: the store copy stays
    // pinned (one plasma ref) until the last of those views is collected.
    if (views.length === 0) {
      this.core.plasmaRelease(id);
    } else {
      // Tell V8 what these views pin, so collection keeps pace with the store.
      this.core.adjustExternalMemory(size);
      const hold: ViewHold = { id, remaining: views.length, size, released: false };
      for (const v of views) {
        const e: ViewEntry = { hold, token: this.core.trackWeak(v), counted: false };
        this.#weak.set(e.token, e);
        this.#plasmaHolds.register(v, e);
      }
    }
    return value;
  }

  /** Worker side: reads an argument the owner reported as being in plasma. */
  readPlasmaArg(id: Uint8Array): unknown {
    return this.#readPlasma(id);
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
      const blocked = !this.isDriver && this.executing > 0;
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

  async getValue(ref: ObjectRef<unknown>, deadline?: number): Promise<unknown> {
    this.#checkOpen('ray.get()');
    let r = this.core.tryGet(ref.binary);
    if (r === false || (r === null && ref.ownerAddress !== '')) {
      const timeout = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const ok = await this.waitReady(ref, timeout);
      if (!ok) {
        if (this.closed) throw new RaySystemError('rayts was shut down while ray.get() was waiting');
        throw new GetTimeoutError(`ray.get() timed out after ${deadline === undefined ? 0 : timeout} ms waiting for ${ref.id}`);
      }
      r = this.core.tryGet(ref.binary);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return this.#decode(ref, r);
      } catch (e) { // the plasma copy is gone: recover it (lineage), then read again
        if (!(e instanceof ObjectLostError) || r !== true || attempt >= MAX_RECOVERIES) throw e;
      }
      requestRecovery(this.core, ref);
      if (!(await this.waitReady(ref))) throw new RaySystemError('rayts was shut down while ray.get() was waiting');
      r = this.core.tryGet(ref.binary);
    }
  }

  async get(refs: ObjectRef<unknown> | ObjectRef<unknown>[], timeoutMs?: number): Promise<unknown> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (Array.isArray(refs)) return Promise.all(refs.map((r) => this.getValue(r, deadline)));
    return this.getValue(refs, deadline);
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
        const blocked = !this.isDriver && this.executing > 0;
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

  // ----------------------------------------------------------------- tasks --

  /** Encodes task arguments: top-level refs by reference, large values via plasma. */
  encodeArgs(args: unknown[], fnName: string): { wire: NativeArg[]; temps: ObjectRef<unknown>[] } {
    const nested: ObjectRef<unknown>[] = [];
    const out = this.refs.collecting(nested, () => this.#encodeArgs(args, fnName));
    stageNested(this.core, nested); // the task holds them until done (consumed by the submit that follows)
    return out;
  }

  #encodeArgs(args: unknown[], fnName: string): { wire: NativeArg[]; temps: ObjectRef<unknown>[] } {
    const wire: NativeArg[] = new Array(args.length);
    const temps: ObjectRef<unknown>[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a instanceof ObjectRef) {
        if (a.released) throw new TypeError(`argument ${i + 1} of ${fnName}: ObjectRef ${a.id} was already released`);
        wire[i] = [a.binary, a.ownerAddress];
        continue;
      }
      const label = `argument ${i + 1} of ${fnName}`;
      if (!isLargeBinary(a)) {
        const small = serializeToBytes(a, this.hooks, label);
        if (small.byteLength <= MAX_INLINE_BYTES) {
          wire[i] = small; // copied by the addon at once
          continue;
        }
      }
      const s = serialize(a, this.hooks, label);
      if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
        const bytes = new Uint8Array(s.totalSize);
        writeTo(s, bytes);
        wire[i] = bytes;
      } else {
        // Large arguments go through the object store once, as in Ray.
        const id = this.core.nextPutId();
        this.#writePlasma(id, s);
        this.core.plasmaSeal(id, true);
        const ref = this.adoptRef(id);
        temps.push(ref);
        wire[i] = [ref.binary, ''];
      }
    }
    return { wire, temps };
  }

  /** Registers what all tasks of one remote function share; returns its class id. */
  registerTaskClass(fn: FunctionDescriptor, resources: Array<string | number>, retryExceptions = ''): number {
    this.#checkOpen(`${fn.name}.remote()`);
    return this.core.registerTaskClass(fn.hash, fn.source, fn.moduleUrl, fn.exportName, fn.name, resources, retryExceptions);
  }

  /** Worker side: the task whose code runs now, if any. */
  taskContext(): TaskContext | undefined {
    return this.taskStore?.getStore() ?? this.currentTask;
  }

  submit(classId: number, fnName: string, args: unknown[], numReturns: number, maxRetries: number): Uint8Array {
    this.#checkOpen(`${fnName}.remote()`);
    const { wire, temps } = this.encodeArgs(args, fnName);
    // Inside a task: the submitted task is its child (recursive ray.cancel).
    const parent = this.executing > 0 ? this.taskContext()?.taskId : undefined;
    const out = this.core.submitTask(classId, wire, numReturns, maxRetries, parent);
    for (let i = 0; i < temps.length; i++) temps[i]!.release(); // the submitted task holds them now
    // Copy out of the scratch buffer: the next call overwrites it.
    return out ?? this.#scratch.slice(0, 16 + 20 * Math.max(0, numReturns));
  }

  /** Creates an actor; returns its id (16 bytes). */
  createActor(classId: number, className: string, args: unknown[], maxConcurrency = 0, actorId?: Uint8Array,
    maxRestarts = 0, maxTaskRetries = 0, concurrencyGroups = '', detached = false, releaseCpu = false): Uint8Array {
    this.#checkOpen(`${className}.remote()`);
    const { wire, temps } = this.encodeArgs(args, `${className} constructor`);
    const out = (this.core.createActor(classId, wire, maxConcurrency, actorId === undefined ? undefined : Buffer.from(actorId),
      maxRestarts, maxTaskRetries, concurrencyGroups, detached, releaseCpu) ?? this.#scratch).slice(0, 36);
    for (let i = 0; i < temps.length; i++) temps[i]!.release();
    // The constructor call's result only reports success or the error that
    // kills the actor (which every later call then reports): not kept.
    this.releaseRef(out.subarray(16, 36));
    return out.slice(0, 16);
  }

  submitActorTask(classId: number, actorId: Uint8Array, method: string, args: unknown[], numReturns: number, maxPending = 0): Uint8Array {
    this.#checkOpen(`${method}.remote()`);
    const { wire, temps } = this.encodeArgs(args, method);
    let out: Uint8Array | undefined;
    try {
      out = this.core.submitActorTask(classId, actorId, method, wire, numReturns, maxPending);
    } finally {
      for (let i = 0; i < temps.length; i++) temps[i]!.release();
    }
    return out ?? this.#scratch.slice(0, 16 + 20 * numReturns);
  }

  killActor(actorId: Uint8Array, noRestart = true, cause = 'killed by ray.kill()'): void {
    this.#checkOpen('ray.kill()');
    this.core.killActor(actorId, cause, noRestart);
    // Record the death before returning, so the name is free at once (the
    // core's own report travels on another connection).
    if (noRestart) this.core.gcsCallSync('actor_dead', `${toHex(actorId)}\0${cause}`);
  }


  cancel(taskId: Uint8Array, force: boolean, recursive: boolean): void {
    this.#checkOpen('ray.cancel()');
    this.core.cancelTask(taskId, force, recursive);
  }

  // ------------------------------------------------------------ generators --

  openGenerator(taskId: Uint8Array): GeneratorState {
    const st: GeneratorState = { items: [], ended: false, wake: undefined };
    this.#generators.set(keyOf(taskId), st);
    return st;
  }

  /**
   * Next ref of a streaming generator, or undefined at the end. The ref is
   * wrapped: an ObjectRef is thenable, so an async function returning it
   * bare would resolve to the object's value instead.
   */
  async nextGeneratorItem(taskId: Uint8Array, st: GeneratorState): Promise<{ ref: ObjectRef<unknown> } | undefined> {
    while (st.items.length === 0 && !st.ended) {
      if (this.closed) throw new RaySystemError('rayts was shut down while iterating a generator');
      this.#hold(1);
      try {
        await new Promise<void>((resolve) => { st.wake = resolve; });
      } finally {
        st.wake = undefined;
        this.#hold(-1);
      }
    }
    const item = st.items.shift();
    if (item === undefined) {
      this.#generators.delete(keyOf(taskId));
      return undefined;
    }
    return { ref: item };
  }

  // ---------------------------------------------------------- control plane --

  gcs(method: string, body = ''): Promise<string> {
    this.#checkOpen(`cluster call '${method}'`);
    return new Promise<string>((resolve, reject) => {
      const id = this.core.gcsCall(method, body);
      this.#gcs.set(id, { resolve, reject });
      this.#hold(1);
    });
  }

  idHex(b: Uint8Array): string {
    return toHex(b);
  }
}

// ---------------------------------------------------------------- current --

let current: Runtime | undefined;

export function setCurrentRuntime(rt: Runtime | undefined): void {
  current = rt;
}

export function currentRuntime(): Runtime | undefined {
  return current;
}

export function requireRuntime(what: string): Runtime {
  if (!current || current.closed) {
    throw new RaySystemError(`rayts is not initialized: call 'await ray.init()' before ${what}`);
  }
  return current;
}

export { serializeToBytes };
