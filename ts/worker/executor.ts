// Executor: runs the tasks pushed to this worker process, one at a time in
// arrival order, and reports results (inline, or in plasma when large).
import * as api from '../index.js';
import { ObjectRef, toHex } from '../api/object_ref.js';
import { compileFunction } from '../codec/source.js';
import { installBuildHelpers } from './build_helpers.js';
import { createImportResolver, type ImportResolver } from './import_resolver.js';
import { ObjectStoreFullError, type ErrorRecord } from '../api/errors.js';
import { recordFromThrown } from '../api/error_records.js';

/** How long a task result waits for room in a full store before failing. */
const STORE_FULL_WAIT_MS = 10_000;
import { hasStatusCode, packageRoot, type NativeEvent, type NativeReturn } from '../runtime/native.js';
import { ActorExitSignal } from '../api/actor.js';
import * as path from 'node:path';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Runtime } from '../runtime/runtime.js';
import { cancelTaskContext, type TaskContext } from './task_context.js';
import { stageNested } from '../runtime/ownership.js';
import { setActorName, setTaskName } from './log_prefix.js';
import { Fifo } from './fifo.js';
import { MAX_INLINE_BYTES } from '../runtime/object_io.js';

type Callable = (...args: unknown[]) => unknown;
const NOOP: Callable = () => undefined;

/** Calls that share a concurrency limit (an actor's default group or a named one). */
interface CallGroup {
  max: number;
  inflight: number;
  queue: Fifo<NativeEvent>;
}

interface ActorState {
  instance?: object;
  error?: ErrorRecord;
  defaultGroup: CallGroup;
  groupOf: Map<string, CallGroup>;  // method -> its named group
  byName: Map<string, CallGroup>;   // group name -> group (a call's concurrencyGroup option)
}

function actorState(maxConcurrency: number, groupsJson: string | undefined): ActorState {
  const groupOf = new Map<string, CallGroup>();
  const byName = new Map<string, CallGroup>();
  if (groupsJson) {
    const groups = JSON.parse(groupsJson) as Record<string, { maxConcurrency: number; methods: string[] }>;
    for (const [name, g] of Object.entries(groups)) {
      const group: CallGroup = { max: g.maxConcurrency, inflight: 0, queue: new Fifo<NativeEvent>() };
      byName.set(name, group);
      for (const m of g.methods) groupOf.set(m, group);
    }
  }
  return { defaultGroup: { max: maxConcurrency, inflight: 0, queue: new Fifo<NativeEvent>() }, groupOf, byName };
}

/** Ray's default: 1000 concurrent calls for actors with async methods, else 1. */
function defaultConcurrency(cls: Function): number {
  for (let p = cls.prototype as object | null; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const n of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, n);
      if (d && typeof d.value === 'function' && (d.value as Function).constructor.name === 'AsyncFunction') return 1000;
    }
  }
  return 1;
}

/** A call on an actor that is not alive here: reported as ActorDiedError. */
class ActorCallError extends Error {
  constructor(readonly record: ErrorRecord) {
    super(record.message);
  }
}

const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class Executor {
  readonly #rt: Runtime;
  readonly #resolver: ImportResolver;
  readonly #functions = new Map<string, Callable>();
  /** Sources received for hashes not compiled yet. */
  readonly #sources = new Map<string, string>();
  /** Scratch for the fast path's nested refs (it is synchronous). */
  readonly #nested: ObjectRef<unknown>[] = [];
  readonly #queue = new Fifo<NativeEvent>();
  /** Cancelled before they started (pushed here, still queued). */
  readonly #cancelled = new Set<string>();
  /**
   * Tasks running now, by task id key: ray.cancel aborts their signal. The
   * entry under '' (no task has that key) stays, so that the map never
   * empties: V8 shrinks an emptied Map, i.e. reallocates its table twice
   * per task when tasks run one at a time.
   */
  readonly #runningTasks = new Map<string, TaskContext | undefined>([['', undefined]]);
  /** Actors living in this worker, by actor id. */
  readonly #actors = new Map<string, ActorState>();
  #running = false;

  constructor(rt: Runtime) {
    this.#rt = rt;
    installBuildHelpers();
    this.#resolver = createImportResolver({
      api,
      cwd: process.cwd(),
      apiFiles: [path.join(packageRoot, 'dist', 'esm', 'index.js'), path.join(packageRoot, 'dist', 'cjs', 'index.js')],
    });
    rt.onExecute = (ev) => this.#enqueue(ev);
    rt.onCancel = (ev) => this.#cancel(keyOf(ev.taskId!));
  }

  /**
   * ray.cancel reached this worker (the core only forwards tasks it holds).
   * Running: its signal aborts and its outcome becomes TaskCancelledError.
   * Not started: it answers TaskCancelledError when its turn comes.
   */
  #cancel(key: string): void {
    const ctx = this.#runningTasks.get(key);
    if (ctx !== undefined) cancelTaskContext(ctx);
    else this.#cancelled.add(key);
  }

  #enqueue(ev: NativeEvent): void {
    // A class's source comes with its first task only: kept until compiled,
    // whatever becomes of that task.
    if (ev.fnSource !== undefined && !this.#functions.has(ev.fnHash!)) this.#sources.set(ev.fnHash!, ev.fnSource);
    this.#queue.push(ev);
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const ev = this.#queue.shift()!;
        const actor = ev.actorId !== undefined && !ev.actorCreation ? this.#actors.get(keyOf(ev.actorId)) : undefined;
        if (actor !== undefined) {
          // Each concurrency group runs its calls in arrival order, up to its
          // limit at once; one group never waits for another.
          // A call's concurrencyGroup option names the group; else its method's.
          const named = ev.concurrencyGroups;
          if (named && !actor.byName.has(named)) {
            this.#failCall(ev, 'TypeError', `actor has no concurrency group '${named}' ` +
              `(groups: ${[...actor.byName.keys()].join(', ') || 'none'}; give them with the actor option concurrencyGroups)`);
            continue;
          }
          const group = (named ? actor.byName.get(named) : actor.groupOf.get(ev.method ?? '')) ?? actor.defaultGroup;
          group.queue.push(ev);
          this.#pump(group, actor.groupOf.size > 0);
          continue;
        }
        await this.#run(ev);
      }
    } finally {
      this.#running = false;
    }
  }

  async #resolve(ev: NativeEvent): Promise<Callable> {
    const hash = ev.fnHash!;
    let fn = this.#functions.get(hash);
    if (fn) return fn;
    if (ev.moduleUrl !== undefined) {
      const mod = (await import(ev.moduleUrl)) as Record<string, unknown>;
      const exp = mod[ev.exportName ?? 'default'];
      if (typeof exp !== 'function') {
        throw new TypeError(`module ${ev.moduleUrl} has no exported function '${ev.exportName}'`);
      }
      fn = exp as Callable;
    } else {
      const source = ev.fnSource ?? this.#sources.get(hash);
      if (source === undefined) throw new Error(`rayts: the source of function ${ev.name} (${hash}) was never sent to this worker`);
      fn = compileFunction(source, this.#resolver, { filename: `rayts:${ev.name || 'remote'}.js` }) as Callable;
    }
    this.#functions.set(hash, fn);
    this.#sources.delete(hash);
    return fn;
  }

  async #arg(a: Uint8Array | [Uint8Array, string, boolean]): Promise<unknown> {
    const rt = this.#rt;
    if (a instanceof Uint8Array) return rt.deserialize(a);
    const [id, owner, inPlasma] = a;
    if (inPlasma) {
      // The owner already knows it is sealed in this node's store.
      try {
        return rt.readPlasmaArg(id);
      } catch {
        // not (or no longer) in the local store: ask the owner below
      }
    }
    const ownerAddr = owner === rt.address ? '' : owner;
    rt.core.addLocalRef(id, ownerAddr);
    const ref = new ObjectRef<unknown>(id, ownerAddr, rt);
    try {
      return await rt.getValue(ref);
    } finally {
      ref.release();
    }
  }

  #returnId(taskId: Uint8Array, index: number): Uint8Array {
    const id = new Uint8Array(20);
    id.set(taskId, 0);
    new DataView(id.buffer).setUint32(16, index, true);
    return id;
  }

  /**
   * Encodes a result. When the store is full, waits (bounded, with backoff)
   * for owners and readers to release memory: the node server has asked
   * every process to collect garbage. (The node server has already spilled
   * to disk what it could; what is left is in use or the disk limit is reached.)
   */
  async #encode(value: unknown, id: Uint8Array, label: string, nested?: ObjectRef<unknown>[], tried = false): Promise<NativeReturn> {
    const deadline = Date.now() + STORE_FULL_WAIT_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      try {
        return this.#rt.encodeReturn(value, id, label, nested, tried);
      } catch (e) {
        // Retried (bounded): a full store, or this return id still being
        // written by an earlier attempt whose worker was killed (the node
        // server drops that copy once it sees the worker's socket close).
        const retryable = (e instanceof ObjectStoreFullError && !(e as { permanent?: boolean }).permanent) ||
          hasStatusCode(e, 'ObjectBeingCreated');
        if (!retryable || Date.now() + delay > deadline) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** `grouped`: the actor has named groups, whose calls run beside the default group's. */
  #pump(g: CallGroup, grouped = false): void {
    while (g.inflight < g.max && g.queue.length > 0) {
      const ev = g.queue.shift()!;
      g.inflight++;
      void this.#run(ev, grouped || g.max > 1).finally(() => {
        g.inflight--;
        this.#pump(g, grouped);
      });
    }
  }

  /** Constructs the actor, or calls a method on it. */
  #actorCall(ev: NativeEvent, cls: Callable, args: unknown[]): unknown {
    const key = keyOf(ev.actorId!);
    if (ev.actorCreation) {
      const maxConcurrency = ev.maxConcurrency ?? defaultConcurrency(cls);
      // The creator appends the wire form of a handle to the actor
      // (getRuntimeContext().currentActor) after the constructor's arguments.
      const info = args.pop();
      try {
        this.#rt.hostsActor = true;
        this.#rt.actorId = toHex(ev.actorId!);
        if (typeof info === 'string') this.#rt.actorInfo = info;
        this.#rt.actorRestarted = (ev.attempt ?? 0) > 0;
        setActorName(ev.name || 'Actor');
        const instance = Reflect.construct(cls as unknown as new (...a: unknown[]) => object, args);
        // Placed with 1 CPU, runs with 0: give the CPU back for good (the
        // node server counts a blocked worker's CPU as free).
        if (ev.releaseCpu) this.#rt.core.setBlocked(true);
        this.#actors.set(key, { ...actorState(maxConcurrency, ev.concurrencyGroups), instance });
      } catch (e) {
        this.#actors.set(key, { ...actorState(maxConcurrency, ev.concurrencyGroups), error: recordFromThrown(e, `${ev.name} constructor`) });
        throw e;
      }
      return null;
    }
    const a = this.#actors.get(key);
    const actorHex = toHex(ev.actorId!);
    if (a === undefined || a.instance === undefined) {
      const rec: ErrorRecord = { kind: 'actor_died', name: 'ActorDiedError', actorId: actorHex,
        message: a?.error ? "its constructor threw" : "it does not live in this worker" };
      if (a?.error) rec.cause = a.error;
      throw new ActorCallError(rec);
    }
    const m = (a.instance as Record<string, unknown>)[ev.method!];
    if (typeof m !== 'function') throw new TypeError(`actor ${ev.name} has no method '${ev.method}'`);
    return (m as Callable).apply(a.instance, args);
  }

  /** Fails a call before it runs: every return gets the error. */
  #failCall(ev: NativeEvent, errorName: string, message: string): void {
    const rec: ErrorRecord = { kind: 'task', name: errorName, message, taskName: ev.name || 'task' };
    this.#rt.core.taskDone(ev.handle!, this.#errorReturns(rec, ev.numReturns ?? 1));
  }

  /**
   * The error as every return of a task with `n` returns (a streaming task:
   * its last item). With numReturns: 0 nobody can see it: it is logged (to
   * the worker's stderr, which reaches the driver's).
   */
  #errorReturns(rec: ErrorRecord, n: number): NativeReturn[] {
    if (n === 0) {
      console.error(`rayts: ${rec.taskName ?? 'task'} (numReturns: 0) failed: ${rec.stack ?? `${rec.name}: ${rec.message}`}`);
      return [];
    }
    return Array.from({ length: n < 0 ? 1 : n }, () => this.#errorReturn(rec));
  }

  #errorReturn(rec: ErrorRecord): NativeReturn {
    const bytes = Buffer.from(JSON.stringify(rec), 'utf8');
    return [bytes, false, true, bytes.length];
  }

  #cancelledReturns(ctx: TaskContext, n: number, when: string): NativeReturn[] {
    const rec: ErrorRecord = { kind: 'cancelled', name: 'TaskCancelledError',
      message: `task ${ctx.name} (${toHex(ctx.taskId)}) was cancelled ${when}`, taskName: ctx.name };
    return n < 0 ? [this.#errorReturn(rec)] : Array.from({ length: n }, () => this.#errorReturn(rec));
  }

  /**
   * Runs one task. `concurrent`: other calls of this actor may run at the
   * same time, so the task's context travels in an AsyncLocalStorage
   * (made on first use) instead of Runtime.currentTask.
   */
  #run(ev: NativeEvent, concurrent = false): Promise<void> {
    const taskId = ev.taskId!;
    const key = keyOf(taskId);
    const ctx: TaskContext = { taskId, key, event: ev, name: ev.name || 'task', cancelled: false, controller: undefined };
    if (this.#cancelled.delete(key)) {
      this.#rt.core.taskDone(ev.handle!, this.#cancelledReturns(ctx, ev.numReturns ?? 1, 'before it started'));
      return Promise.resolve();
    }
    this.#runningTasks.set(key, ctx);
    if (!concurrent) return this.#exec(ev, ctx, true);
    this.#rt.taskStore ??= new AsyncLocalStorage<TaskContext>();
    return this.#rt.taskStore.run(ctx, () => this.#exec(ev, ctx, false));
  }

  async #exec(ev: NativeEvent, ctx: TaskContext, serial: boolean): Promise<void> {
    const rt = this.#rt;
    const handle = ev.handle!;
    const taskId = ev.taskId!;
    const n = ev.numReturns ?? 1;
    const name = ctx.name;
    rt.executing++;
    setTaskName(name);
    if (serial) rt.currentTask = ctx;
    try {
      // ray.exitActor() was called: a call that has not started does not
      // start (as in Ray); it reports the exit like the one that asked.
      if (rt.exitRequested && ev.actorId !== undefined) throw new ActorExitSignal();
      const fn = ev.actorId !== undefined && !ev.actorCreation
        ? NOOP // a method call: the instance is already here
        : this.#functions.get(ev.fnHash!) ?? (await this.#resolve(ev));
      const wireArgs = ev.args ?? [];
      let args: unknown[];
      if (wireArgs.every((a) => a instanceof Uint8Array)) {
        args = wireArgs.map((a) => rt.deserialize(a as Uint8Array)); // all inline: no await
      } else {
        args = await Promise.all(wireArgs.map((a) => this.#arg(a)));
      }
      if (n < 0) {
        const it = (ev.actorId !== undefined ? this.#actorCall(ev, fn, args) : fn(...args)) as AsyncIterable<unknown> | Iterable<unknown>;
        if (it === null || typeof it !== 'object' || (!(Symbol.asyncIterator in it) && !(Symbol.iterator in it))) {
          throw new TypeError(`${name} has numReturns: 'streaming' but did not return a generator or iterable`);
        }
        // A retry: the owner has the first `skip` items of an earlier
        // attempt; they are produced again but not reported (as in Ray).
        const skip = ev.skipItems ?? 0;
        let i = 0;
        for await (const v of it as AsyncIterable<unknown>) {
          if (ctx.cancelled) break;
          if (i < skip) {
            i++;
            continue;
          }
          const nested: ObjectRef<unknown>[] = [];
          const [data, inPlasma, isError, size] = await this.#encode(v, this.#returnId(taskId, i + 1), `yielded value ${i}`, nested);
          stageNested(rt.core, nested); // the caller becomes their borrower
          rt.core.reportGeneratorItem(handle, i, data, inPlasma, isError, size);
          i++;
        }
        rt.core.taskDone(handle, ctx.cancelled ? this.#cancelledReturns(ctx, n, 'while it ran') : []);
        return;
      }
      let result: unknown;
      if (ev.actorId !== undefined) {
        result = this.#actorCall(ev, fn, args);
      } else {
        result = fn(...args);
      }
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        result = await (result as PromiseLike<unknown>);
      }
      // The method caught ray.exitActor()'s signal: the actor ends anyway.
      if (rt.exitRequested) throw new ActorExitSignal();
      if (ctx.cancelled) {
        // Cancelled while it ran and finished anyway: the result is discarded (as Ray).
        rt.core.taskDone(handle, this.#cancelledReturns(ctx, n, 'while it ran'));
        return;
      }
      let values: unknown[];
      if (n === 1) values = [result];
      else if (n === 0) values = []; // run for its side effects: the value is dropped
      else {
        if (!Array.isArray(result) || result.length !== n) {
          throw new TypeError(`${name} has numReturns: ${n} but returned ${Array.isArray(result) ? `an array of length ${result.length}` : typeof result}; return an array of length ${n}`);
        }
        values = result;
      }
      let tried = false;
      if (n === 1) {
        // The common case: one value, inline, no refs inside: no arrays, no await.
        const small = rt.objects.serializeReturn(result, 'return value', this.#nested);
        if (small !== undefined && small.byteLength <= MAX_INLINE_BYTES && this.#nested.length === 0) {
          rt.core.taskDone(handle, small);
          return;
        }
        tried = small !== undefined;
      }
      const rets: NativeReturn[] = [];
      const nestedRefs: ObjectRef<unknown>[] = [];
      const slots: number[] = [];
      for (let i = 0; i < values.length; i++) {
        const nested: ObjectRef<unknown>[] = [];
        rets.push(await this.#encode(values[i], this.#returnId(taskId, i + 1), n === 1 ? 'return value' : `return value ${i}`, nested, tried));
        for (const r of nested) {
          nestedRefs.push(r);
          slots.push(i);
        }
      }
      // Refs inside the results: the caller becomes their borrower before
      // the reply leaves (the core holds the reply until owners acknowledge).
      stageNested(rt.core, nestedRefs, slots);
      rt.core.taskDone(handle, rets);
    } catch (e) {
      if (e instanceof ActorExitSignal || rt.exitRequested) {
        // ray.exitActor(): answer this call, let the reply go out, then end
        // the process; the owner sees the actor die with this cause.
        const rec: ErrorRecord = { kind: 'actor_died', name: 'ActorDiedError', actorId: toHex(ev.actorId!),
          message: 'it exited (ray.exitActor())' };
        rt.core.taskDone(handle, n === 0 ? [] : Array.from({ length: n < 0 ? 1 : n }, () => this.#errorReturn(rec)), false, true);
        rt.core.flush();
        setImmediate(() => process.exit(0));
        return;
      }
      if (ctx.cancelled) {
        // Typically the task saw its signal abort and threw: TaskCancelledError.
        rt.core.taskDone(handle, this.#cancelledReturns(ctx, n, 'while it ran'));
        return;
      }
      const rec = e instanceof ActorCallError ? e.record : recordFromThrown(e, name);
      const retry = ev.retryExceptions;
      const retryable = retry !== undefined && (retry === '*' || retry.split('\n').includes(rec.name));
      rt.core.taskDone(handle, this.#errorReturns(rec, n), retryable);
    } finally {
      rt.executing--;
      if (serial && rt.currentTask === ctx) rt.currentTask = undefined;
      this.#runningTasks.delete(ctx.key);
      rt.afterTask(); // refs it decoded and did not keep go now, not at the next GC
    }
  }

  /**
   * An uncaught exception or unhandled rejection: fails the task that is
   * running (the only one, or the serial one) with it, as if the task had
   * thrown it (retried only when retryExceptions allows). false when no
   * task can be blamed. A later reply of that task is ignored by the core.
   */
  failRunning(e: unknown): boolean {
    let ctx: TaskContext | undefined;
    if (this.#runningTasks.size === 2) {  // the one running task, beside the '' entry
      for (const c of this.#runningTasks.values()) ctx ??= c;
    } else {
      ctx = this.#rt.currentTask;
    }
    const ev = ctx !== undefined && this.#runningTasks.get(ctx.key) === ctx ? ctx.event : undefined;
    if (!ctx || !ev) return false;
    const n = ev.numReturns ?? 1;
    const rec = recordFromThrown(e, ctx.name);
    const retry = ev.retryExceptions;
    const retryable = retry !== undefined && (retry === '*' || retry.split('\n').includes(rec.name));
    this.#rt.core.taskDone(ev.handle!, this.#errorReturns(rec, n), retryable);
    this.#rt.core.flush();
    return true;
  }
}
