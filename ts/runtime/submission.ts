// Submission: tasks and actors leave this process here. Arguments are
// encoded (refs by reference, small values inline, large ones through
// plasma once, as in Ray) and handed to the core with the task class
// registered for the function; actor creation, actor calls, kill and cancel.
import { ObjectRef } from '../api/object_ref.js';
import { serialize, serializeToBytes, writeTo } from '../codec/serialization.js';
import type { NativeArg, NativeCoreWorker } from './native.js';
import { isLargeBinary, MAX_INLINE_BYTES } from './object_io.js';
import { copyId } from './id_slab.js';
import { stageNested } from './ownership.js';
import type { Runtime } from './runtime.js';

export interface FunctionDescriptor {
  hash: string;
  source?: string;
  moduleUrl?: string;
  exportName?: string;
  name: string;
}

export class Submission {
  readonly #rt: Runtime;
  readonly core: NativeCoreWorker;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.core = rt.core;
  }

  #checkOpen(what: string): void {
    this.#rt.checkOpen(what);
  }

  /** Encodes task arguments: top-level refs by reference, large values via plasma. */
  encodeArgs(args: unknown[], fnName: string): { wire: NativeArg[]; temps: ObjectRef<unknown>[] } {
    const nested: ObjectRef<unknown>[] = [];
    const out = this.#rt.refs.collecting(nested, () => this.#encodeArgs(args, fnName));
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
        const small = serializeToBytes(a, this.#rt.hooks, label);
        if (small.byteLength <= MAX_INLINE_BYTES) {
          wire[i] = small; // copied by the addon at once
          continue;
        }
      }
      const s = serialize(a, this.#rt.hooks, label);
      if (s.buffers.length === 0 && s.totalSize <= MAX_INLINE_BYTES) {
        const bytes = new Uint8Array(s.totalSize);
        writeTo(s, bytes);
        wire[i] = bytes;
      } else {
        // Large arguments go through the object store once, as in Ray.
        const id = this.core.nextPutId();
        this.#rt.objects.writePlasma(id, s);
        this.core.plasmaSeal(id, true);
        const ref = this.#rt.adoptRef(id);
        temps.push(ref);
        wire[i] = [ref.binary, ''];
      }
    }
    return { wire, temps };
  }

  /** Registers what all tasks of one remote function share; returns its class id. */
  registerTaskClass(fn: FunctionDescriptor, resources: Array<string | number>, retryExceptions = '', scheduling = ''): number {
    this.#checkOpen(`${fn.name}.remote()`);
    return this.core.registerTaskClass(fn.hash, fn.source, fn.moduleUrl, fn.exportName, fn.name, resources, retryExceptions,
      scheduling);
  }

  submit(classId: number, fnName: string, args: unknown[], numReturns: number, maxRetries: number): Uint8Array {
    this.#checkOpen(`${fnName}.remote()`);
    const { wire, temps } = this.encodeArgs(args, fnName);
    // Inside a task: the submitted task is its child (recursive ray.cancel).
    const parent = this.#rt.executing > 0 ? this.#rt.taskContext()?.taskId : undefined;
    const out = this.core.submitTask(classId, wire, numReturns, maxRetries, parent);
    for (let i = 0; i < temps.length; i++) temps[i]!.release(); // the submitted task holds them now
    // Copy out of the scratch buffer (the next call overwrites it), into an
    // id slab: the ref's id is a view over it, not bytes on the V8 heap.
    return out ?? copyId(this.#rt.scratch, 0, 16 + 20 * Math.max(0, numReturns));
  }

  /** Creates an actor; returns its id (16 bytes). */
  createActor(classId: number, className: string, args: unknown[], maxConcurrency = 0, actorId?: Uint8Array,
    maxRestarts = 0, maxTaskRetries = 0, concurrencyGroups = '', detached = false, releaseCpu = false): Uint8Array {
    this.#checkOpen(`${className}.remote()`);
    const { wire, temps } = this.encodeArgs(args, `${className} constructor`);
    const out = (this.core.createActor(classId, wire, maxConcurrency, actorId === undefined ? undefined : Buffer.from(actorId),
      maxRestarts, maxTaskRetries, concurrencyGroups, detached, releaseCpu) ?? this.#rt.scratch).slice(0, 36);
    for (let i = 0; i < temps.length; i++) temps[i]!.release();
    // The constructor call's result only reports success or the error that
    // kills the actor (which every later call then reports): not kept.
    this.#rt.releaseRef(out.subarray(16, 36));
    return out.slice(0, 16);
  }

  submitActorTask(classId: number, actorId: Uint8Array, method: string, args: unknown[], numReturns: number, maxPending = 0,
    maxTaskRetries = 0, concurrencyGroup = '', name = ''): Uint8Array {
    this.#checkOpen(`${method}.remote()`);
    const { wire, temps } = this.encodeArgs(args, method);
    let out: Uint8Array | undefined;
    try {
      out = this.core.submitActorTask(classId, actorId, method, wire, numReturns, maxPending, maxTaskRetries, concurrencyGroup, name);
    } finally {
      for (let i = 0; i < temps.length; i++) temps[i]!.release();
    }
    return out ?? copyId(this.#rt.scratch, 0, 16 + 20 * Math.max(0, numReturns));
  }

  killActor(actorId: Uint8Array, noRestart = true, cause = 'killed by ray.kill()'): void {
    this.#checkOpen('ray.kill()');
    this.core.killActor(actorId, cause, noRestart);
    // Record the death before returning, so the name is free at once (the
    // core's own report travels on another connection).
    if (noRestart) this.core.gcsReportActorDead(actorId, cause);
  }

  /** `owner`: '' when this process owns the task, else the owner's address (the request goes there). */
  cancel(taskId: Uint8Array, force: boolean, recursive: boolean, owner = ''): void {
    this.#checkOpen('ray.cancel()');
    this.core.cancelTask(taskId, force, recursive, owner);
  }
}
