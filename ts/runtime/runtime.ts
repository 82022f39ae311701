// Runtime: one per process. Binds the API to this process's CoreWorker and
// composes the parts that do the work: object I/O (object_io.ts), waiting
// for objects (waiting.ts), task and actor submission (submission.ts),
// streaming generators (generators.ts), local reference counting
// (local_refs.ts) and store pressure (pressure.ts); events from the core
// are routed to them by events.ts. The driver's runtime also hosts the
// embedded node server (raylet + plasma + GCS on C++ threads).
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { TaskContext } from '../worker/task_context.js';
import { toHex, type HeldRef, type ObjectRef, type RefRuntime } from '../api/object_ref.js';
import { RefCodec } from '../codec/ref_codec.js';
import { clusterQuery, loadAddon, type ClusterQueryName, type NativeArg, type NativeCoreWorker, type NativeEvent, type NativeNodeServer } from './native.js';
import { serializeToBytes, type RefHooks } from '../codec/serialization.js';
import { RaySystemError } from '../api/errors.js';
import { dispatchEvents } from './events.js';
import { Generators, type GeneratorState } from './generators.js';
import { LocalRefs } from './local_refs.js';
import { ObjectIO } from './object_io.js';
import { StorePressure } from './pressure.js';
import { Submission, type FunctionDescriptor } from './submission.js';
import { Waiting } from './waiting.js';

/** After a task that decoded refs ends: collect after this long (coalescing a burst of tasks)... */
const TASK_SWEEP_DELAY_MS = 20;
/** ...and at most once per this long (a full collection of a worker heap costs a few ms). */
const TASK_SWEEP_GAP_MS = 200;
/** The longest gap while the refs left are ones tasks kept. */
const TASK_SWEEP_MAX_GAP_MS = 6_400;

export { MAX_INLINE_BYTES } from './object_io.js';
export type { FunctionDescriptor } from './submission.js';

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
  /** Worker side: the hex id of the actor this worker hosts (set as its constructor runs). */
  actorId: string | undefined;
  /** Worker side: the actor hosted here was restarted (its constructor ran again). */
  actorRestarted = false;
  /** Worker side: the wire form of a handle to the hosted actor (getRuntimeContext().currentActor). */
  actorInfo: string | undefined;
  /** Worker side: ray.exitActor() was called; the actor ends after the current call. */
  exitRequested = false;
  /** Worker side: true while a task runs (gets then tell the raylet we block). */
  executing = 0;
  /** Worker side: the task running now (tasks run one at a time; see taskContext()). */
  currentTask: TaskContext | undefined;
  /** Worker side: set by the executor for actors that run calls concurrently. */
  taskStore: AsyncLocalStorage<TaskContext> | undefined;

  readonly hooks: RefHooks;
  /** Nested-ref encoding/decoding and their batched counting. */
  readonly refs: RefCodec;
  /** @internal The process's store mapping (plasma offsets index it). */
  readonly store: Uint8Array;
  /** @internal The addon writes new ids here (no Buffer allocated per call). */
  readonly scratch = new Uint8Array(16 + 20 * 64);
  /** @internal The parts (see the file comment). */
  readonly localRefs: LocalRefs;
  readonly pressure: StorePressure;
  readonly objects: ObjectIO;
  readonly waiting: Waiting;
  readonly submission: Submission;
  readonly generators: Generators;
  #gcs = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  #holds = 0;

  /** nodeIp: cluster mode, the node's IP (this process listens on TCP there too, for other nodes). */
  constructor(opts: { nodeSocket: string; listenPath: string; isDriver: boolean; workerId?: string; namespace?: string;
    lineageMaxBytes?: number; nodeIp?: string }) {
    const addon = loadAddon();
    const init: { nodeSocket: string; listenPath: string; isDriver: boolean; workerId?: string; lineageMaxBytes?: number;
      nodeIp?: string } = {
      nodeSocket: opts.nodeSocket, listenPath: opts.listenPath, isDriver: opts.isDriver,
    };
    if (opts.workerId) init.workerId = opts.workerId;
    if (opts.nodeIp) init.nodeIp = opts.nodeIp;
    if (opts.lineageMaxBytes !== undefined) init.lineageMaxBytes = opts.lineageMaxBytes;
    // kick: the addon queued frames this turn; one flush at the turn's end
    // sends them all (one sendmsg per connection, from this thread). A
    // driver flushes at the end of the current microtask queue (its
    // submissions leave before it awaits anything). A worker flushes once
    // per macrotask: the replies of every task its executor ran on one batch
    // of events go out together, instead of one sendmsg per reply as the
    // executor's awaits interleave with microtask flushes.
    let flushQueued = false;
    const flush = (): void => {
      flushQueued = false;
      if (!this.closed) this.core.flush();
    };
    const schedule = opts.isDriver ? queueMicrotask : (fn: () => void): void => { setImmediate(fn); };
    const kick = (): void => {
      if (flushQueued) return;
      flushQueued = true;
      schedule(flush);
    };
    this.core = new addon.NativeCoreWorker(init, () => dispatchEvents(this), kick);
    const info = this.core.info();
    this.isDriver = opts.isDriver;
    this.address = info.address;
    this.workerId = info.workerId;
    this.nodeId = info.nodeId;
    this.jobId = info.jobId;
    this.sessionDir = info.sessionDir;
    this.storeCapacity = info.storeSize;
    this.namespace = opts.namespace ?? '';
    this.store = new Uint8Array(this.core.storeBuffer());
    this.core.setScratch(this.scratch);
    this.refs = new RefCodec(this, this.core);
    this.hooks = this.refs.hooks;
    this.localRefs = new LocalRefs(this);
    this.pressure = new StorePressure(this);
    this.objects = new ObjectIO(this);
    this.waiting = new Waiting(this);
    this.submission = new Submission(this);
    this.generators = new Generators(this);
  }

  // ------------------------------------------------------------ lifecycle --

  shutdown(): void {
    if (this.closed) return;
    // Views over the store that are garbage already give their pins back now:
    // the shared memory is let go at shutdown, live views keep private copies.
    this.localRefs.sweepBeforeShutdown();
    this.closed = true;
    this.waiting.shutdown();
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

  /** @internal The parts: a pending callback (a waiter, a call) keeps the process alive. */
  hold(delta: number): void {
    this.#hold(delta);
  }

  #checkOpen(what: string): void {
    if (this.closed) throw new RaySystemError(`rayts is shut down: ${what} after ray.shutdown()`);
  }

  /** @internal Throws once the runtime is shut down. */
  checkOpen(what: string): void {
    this.#checkOpen(what);
  }

  /** Keeps the process alive (workers). */
  keepAlive(): void {
    this.#hold(1);
  }

  // ------------------------------------------------------------------ refs --

  trackLarge(held: HeldRef, ref: ObjectRef<unknown>): void {
    this.localRefs.trackLarge(held, ref);
  }

  /** Worker side: refs decoded by running tasks since the last task-end sweep. */
  #taskRefs = 0;
  #taskSweepTimer: NodeJS.Timeout | undefined;
  #lastTaskSweep = 0;
  /** Gap before the next task-end sweep: grows while the refs alive are kept ones (actor state). */
  #taskSweepGap = TASK_SWEEP_GAP_MS;

  /** Worker side: a running task decoded a ref (tracked weakly); false in a driver. */
  noteTaskRef(): boolean {
    if (this.isDriver) return false;
    this.#taskRefs++;
    return true;
  }

  /**
   * Worker side, a task ended: if tasks decoded refs (arguments, values
   * they got, actor handles), collect soon and drop at once those no longer
   * reachable, instead of waiting for this worker's next garbage
   * collection; refs the task kept (actor state, a global) stay. Coalesced:
   * at most one collection per TASK_SWEEP_GAP_MS; while only kept refs
   * remain (a later call may drop them), the gap doubles up to
   * TASK_SWEEP_MAX_GAP_MS, so an actor holding refs is not collected after
   * every call.
   */
  afterTask(): void {
    if (this.#taskSweepTimer !== undefined || this.closed) return;
    if (this.#taskRefs > 0) this.#taskSweepGap = TASK_SWEEP_GAP_MS;
    else if (this.localRefs.taskTracked === 0) return;
    const wait = Math.max(TASK_SWEEP_DELAY_MS, this.#lastTaskSweep + this.#taskSweepGap - Date.now());
    this.#armTaskSweep(wait);
  }

  #armTaskSweep(wait: number): void {
    this.#taskSweepTimer = setTimeout(() => {
      this.#taskSweepTimer = undefined;
      if (this.closed || this.executing > 0) {
        if (!this.closed) this.afterTask(); // a task is running: after it
        return;
      }
      // New refs: they died young, a minor collection finds them. Only
      // kept ones left (dropped later, old by now): a full one.
      const minor = this.#taskRefs > 0;
      this.#taskRefs = 0;
      this.#lastTaskSweep = Date.now();
      this.localRefs.sweep(minor);
      if (this.localRefs.taskTracked === 0) return;
      // Some survived: kept, or promoted out of the young generation. One
      // full collection follows without waiting for another task; after
      // that, only task ends sweep again, ever less often.
      if (minor) this.#armTaskSweep(this.#taskSweepGap);
      else this.#taskSweepGap = Math.min(this.#taskSweepGap * 2, TASK_SWEEP_MAX_GAP_MS);
    }, wait);
    this.#taskSweepTimer.unref();
  }

  /** Store pressure: frees the dead large refs and views at once (see LocalRefs.sweep). */
  sweep(): number {
    return this.localRefs.sweep();
  }

  /** A handle was garbage-collected: batch the decrements. */
  dropRefHandle(h: number): void {
    this.localRefs.dropRefHandle(h);
  }

  /** A batch of decoded refs was garbage-collected: their ids, packed. */
  dropRefsPacked(ids: Uint8Array): void {
    this.localRefs.dropRefsPacked(ids);
  }

  dropRef(binary: Uint8Array, externalBytes = 0, held?: HeldRef): void {
    this.localRefs.dropRef(binary, externalBytes, held);
  }

  /** ref.release(): the count drops now, so a loop that releases frees as it goes. */
  releaseRef(binary: Uint8Array, externalBytes = 0, held?: HeldRef): void {
    this.localRefs.releaseRef(binary, externalBytes, held);
  }

  flushDrops(): void {
    this.localRefs.flushDrops();
  }

  /** A ref this process already counts (returned by the core with count 1). */
  adoptRef<T>(binary: Uint8Array, externalBytes = 0): ObjectRef<T> {
    return this.localRefs.adoptRef<T>(binary, externalBytes);
  }

  // --------------------------------------------------------------- objects --

  put<T>(value: T): ObjectRef<T> {
    return this.objects.put(value);
  }

  /** Worker side: encodes a task's return value for the reply. */
  encodeReturn(value: unknown, returnId: Uint8Array, label: string, nested: ObjectRef<unknown>[] = [], tried = false): [Uint8Array | null, boolean, boolean, number] {
    return this.objects.encodeReturn(value, returnId, label, nested, tried);
  }

  /** Deserializes with nested refs counted in one native call. */
  deserialize(data: Uint8Array, views?: ArrayBufferView[]): unknown {
    return this.objects.deserialize(data, views);
  }

  /** Worker side: reads an argument the owner reported as being in plasma. */
  readPlasmaArg(id: Uint8Array): unknown {
    return this.objects.readPlasmaArg(id);
  }

  getValue(ref: ObjectRef<unknown>, deadline?: number): Promise<unknown> {
    return this.objects.getValue(ref, deadline);
  }

  get(refs: ObjectRef<unknown> | ObjectRef<unknown>[], timeoutMs?: number): Promise<unknown> {
    return this.objects.get(refs, timeoutMs);
  }

  // --------------------------------------------------------------- waiting --

  /** Resolves true when `ref` is ready here, false on timeout or shutdown. */
  waitReady(ref: ObjectRef<unknown>, timeoutMs?: number): Promise<boolean> {
    return this.waiting.waitReady(ref, timeoutMs);
  }

  wait(refs: ObjectRef<unknown>[], numReturns: number, timeoutMs?: number, fetchLocal = true): Promise<[ObjectRef<unknown>[], ObjectRef<unknown>[]]> {
    return this.waiting.wait(refs, numReturns, timeoutMs, fetchLocal);
  }

  // ----------------------------------------------------------------- tasks --

  /** Encodes task arguments: top-level refs by reference, large values via plasma. */
  encodeArgs(args: unknown[], fnName: string): { wire: NativeArg[]; temps: ObjectRef<unknown>[] } {
    return this.submission.encodeArgs(args, fnName);
  }

  /** Registers what all tasks of one remote function share; returns its class id. */
  /** scheduling: '' (default), 'SPREAD', '<node id>' or '<node id>:soft' (node affinity). */
  registerTaskClass(fn: FunctionDescriptor, resources: Array<string | number>, retryExceptions = '', scheduling = ''): number {
    return this.submission.registerTaskClass(fn, resources, retryExceptions, scheduling);
  }

  /** Worker side: the task whose code runs now, if any. */
  taskContext(): TaskContext | undefined {
    return this.taskStore?.getStore() ?? this.currentTask;
  }

  submit(classId: number, fnName: string, args: unknown[], numReturns: number, maxRetries: number): Uint8Array {
    return this.submission.submit(classId, fnName, args, numReturns, maxRetries);
  }

  /** Creates an actor; returns its id (16 bytes). */
  createActor(classId: number, className: string, args: unknown[], maxConcurrency = 0, actorId?: Uint8Array,
    maxRestarts = 0, maxTaskRetries = 0, concurrencyGroups = '', detached = false, releaseCpu = false): Uint8Array {
    return this.submission.createActor(classId, className, args, maxConcurrency, actorId, maxRestarts, maxTaskRetries,
      concurrencyGroups, detached, releaseCpu);
  }

  submitActorTask(classId: number, actorId: Uint8Array, method: string, args: unknown[], numReturns: number, maxPending = 0,
    maxTaskRetries = 0, concurrencyGroup = '', name = ''): Uint8Array {
    return this.submission.submitActorTask(classId, actorId, method, args, numReturns, maxPending, maxTaskRetries, concurrencyGroup, name);
  }

  killActor(actorId: Uint8Array, noRestart = true, cause = 'killed by ray.kill()'): void {
    this.submission.killActor(actorId, noRestart, cause);
  }

  cancel(taskId: Uint8Array, force: boolean, recursive: boolean, owner = ''): void {
    this.submission.cancel(taskId, force, recursive, owner);
  }

  // ------------------------------------------------------------ generators --

  openGenerator(taskId: Uint8Array): GeneratorState {
    return this.generators.openGenerator(taskId);
  }

  /** Next ref of a streaming generator, or undefined at the end (see Generators). */
  nextGeneratorItem(taskId: Uint8Array, st: GeneratorState): Promise<{ ref: ObjectRef<unknown> } | undefined> {
    return this.generators.nextGeneratorItem(taskId, st);
  }

  // ---------------------------------------------------------- control plane --

  /** A cluster query; resolves with its JSON. */
  query(kind: ClusterQueryName): Promise<string> {
    this.#checkOpen(`cluster query '${kind}'`);
    return new Promise<string>((resolve, reject) => {
      const id = this.core.query(clusterQuery(kind));
      this.#gcs.set(id, { resolve, reject });
      this.#hold(1);
    });
  }

  /** A Gcs event: the reply to a query() call. */
  gcsReply(ev: NativeEvent): void {
    const p = this.#gcs.get(ev.id as number);
    if (p) {
      this.#gcs.delete(ev.id as number);
      this.#hold(-1);
      if (ev.code === 0) p.resolve(ev.text ?? '');
      else p.reject(new RaySystemError(ev.text ?? 'cluster call failed'));
    }
  }

  idHex(b: Uint8Array): string {
    return toHex(b);
  }
}

export { serializeToBytes };
