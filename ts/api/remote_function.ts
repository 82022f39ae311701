// RemoteFunction: `ray.remote(fn)`. Ships the function by source (or by
// module + export name in module mode), validates options where they are
// given, and submits through the current runtime.
import { ObjectRef } from './object_ref.js';
import type { FunctionDescriptor, Runtime } from '../runtime/runtime.js';
import { requireRuntime } from '../runtime/current.js';
import { validateTaskOptions, type TaskOptions } from './options.js';
import { nativeScheduling } from './scheduling.js';
import { checkSelfContained } from '../codec/source.js';

/** An argument may be given as its value or as a ref to it. */
export type RemoteArgs<A extends unknown[]> = { [K in keyof A]: A[K] | ObjectRef<A[K]> };

type Yielded<R> = R extends AsyncIterable<infer Y> ? Y : R extends Iterable<infer Y> ? Y : never;

/** `numReturns: 'streaming'`: an async iterable of refs to the yielded values. */
export class ObjectRefGenerator<T> implements AsyncIterable<ObjectRef<T>> {
  readonly #rt: Runtime;
  readonly #taskId: Uint8Array;
  readonly #state: ReturnType<Runtime['openGenerator']>;

  /** @internal */
  constructor(rt: Runtime, taskId: Uint8Array) {
    this.#rt = rt;
    this.#taskId = taskId;
    this.#state = rt.openGenerator(taskId);
  }

  /** Hex id of the generator task (for ray.cancel). */
  get taskId(): string {
    return this.#rt.idHex(this.#taskId);
  }

  /** @internal */
  get taskBinary(): Uint8Array {
    return this.#taskId;
  }

  async next(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    const item = await this.#rt.nextGeneratorItem(this.#taskId, this.#state);
    return item === undefined ? { done: true, value: undefined } : { done: false, value: item.ref as ObjectRef<T> };
  }

  [Symbol.asyncIterator](): AsyncIterator<ObjectRef<T>, undefined> {
    return { next: () => this.next() };
  }
}

/** Where a task's code comes from. */
export interface FunctionSourceRef {
  hash: string;
  name: string;
  source?: string;
  moduleUrl?: string;
  exportName?: string;
}

const TASK_DEFAULTS = { numCpus: 1, maxRetries: 3 } as const;

export function resourcesOf(o: { numCpus?: number | undefined; numGpus?: number | undefined; resources?: Record<string, number> | undefined }, defaultCpus: number): Array<string | number> {
  const out: Array<string | number> = [];
  const cpus = o.numCpus ?? defaultCpus;
  if (cpus > 0) out.push('CPU', cpus);
  if (o.numGpus !== undefined && o.numGpus > 0) out.push('GPU', o.numGpus);
  if (o.resources) {
    for (const [k, v] of Object.entries(o.resources)) {
      if (k === 'CPU' || k === 'GPU') throw new TypeError(`resources.${k}: use numCpus / numGpus instead`);
      if (v > 0) out.push(k, v);
    }
  }
  return out;
}

/** retryExceptions as the executor reads it: '' none, '*' any, else names separated by '\n'. */
function retryExceptionsSpec(r: boolean | string[] | undefined): string {
  if (r === true) return '*';
  if (r === undefined || r === false) return '';
  return r.join('\n');
}

class RemoteFunctionBase {
  /** @internal */ readonly fn: FunctionSourceRef;
  /** @internal */ readonly opts: TaskOptions;
  #cls: { rt: Runtime; id: number } | undefined;
  readonly #name: string;
  readonly #numReturns: number;
  readonly #maxRetries: number;

  /** @internal */
  constructor(fn: FunctionSourceRef, opts: TaskOptions) {
    this.fn = fn;
    this.opts = opts;
    this.#name = opts.name ?? fn.name;
    const n = opts.numReturns;
    this.#numReturns = n === 'streaming' ? -1 : n ?? 1;
    this.#maxRetries = opts.maxRetries ?? TASK_DEFAULTS.maxRetries;
    // Reject a bad resource shape here, where the options were given.
    resourcesOf(opts, TASK_DEFAULTS.numCpus);
  }

  /** @internal The task class in the current runtime (registered once per runtime). */
  classIn(rt: Runtime): number {
    const c = this.#cls;
    if (c !== undefined && c.rt === rt) return c.id;
    const desc: FunctionDescriptor = { hash: this.fn.hash, name: this.#name };
    if (this.fn.source !== undefined) desc.source = this.fn.source;
    if (this.fn.moduleUrl !== undefined) desc.moduleUrl = this.fn.moduleUrl;
    if (this.fn.exportName !== undefined) desc.exportName = this.fn.exportName;
    const id = rt.registerTaskClass(desc, resourcesOf(this.opts, TASK_DEFAULTS.numCpus), retryExceptionsSpec(this.opts.retryExceptions),
      nativeScheduling(this.opts.schedulingStrategy));
    this.#cls = { rt, id };
    return id;
  }

  /** @internal */
  submitWith(args: unknown[]): { rt: Runtime; out: Uint8Array } {
    const rt = requireRuntime(`${this.#name}.remote()`);
    const out = rt.submit(this.classIn(rt), this.#name, args, this.#numReturns, this.#maxRetries);
    return { rt, out };
  }
}

export class RemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  /** Submits the task; returns a ref to its result at once. */
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>> {
    const { rt, out } = this.submitWith(args);
    return rt.adoptRef<Awaited<R>>(out.subarray(16, 36));
  }

  /** A copy with these options merged over the current ones. */
  options(o: TaskOptions & { numReturns: 'streaming' }): StreamingRemoteFunction<A, R>;
  options(o: TaskOptions & { numReturns: 0 }): NoReturnRemoteFunction<A, R>;
  options(o: TaskOptions & { numReturns: number }): MultiReturnRemoteFunction<A, R>;
  options(o: TaskOptions): RemoteFunction<A, R>;
  options(o: TaskOptions): AnyRemoteFunction<A, R> {
    const merged = { ...this.opts, ...validateTaskOptions(o, '.options()') };
    return makeRemote<A, R>(this.fn, merged);
  }
}

type AnyRemoteFunction<A extends unknown[], R> =
  RemoteFunction<A, R> | StreamingRemoteFunction<A, R> | MultiReturnRemoteFunction<A, R> | NoReturnRemoteFunction<A, R>;

/**
 * `numReturns: 0`: the task runs for its side effects. `.remote()` returns
 * nothing; the value it returns is dropped and an error it throws is logged
 * (to the worker's stderr, shown by the driver) since no ref can report it.
 */
export class NoReturnRemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  remote(...args: RemoteArgs<A>): void {
    this.submitWith(args);
  }
  options(o: TaskOptions): AnyRemoteFunction<A, R> {
    return makeRemote<A, R>(this.fn, { ...this.opts, ...validateTaskOptions(o, '.options()') });
  }
}

export class MultiReturnRemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R> extends readonly (infer E)[] ? E : unknown>[] {
    const { rt, out } = this.submitWith(args);
    const refs: ObjectRef<Awaited<R> extends readonly (infer E)[] ? E : unknown>[] = [];
    for (let off = 16; off < out.length; off += 20) refs.push(rt.adoptRef(out.subarray(off, off + 20)));
    return refs;
  }
  options(o: TaskOptions): AnyRemoteFunction<A, R> {
    return makeRemote<A, R>(this.fn, { ...this.opts, ...validateTaskOptions(o, '.options()') });
  }
}

export class StreamingRemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  remote(...args: RemoteArgs<A>): ObjectRefGenerator<Yielded<R>> {
    const { rt, out } = this.submitWith(args);
    return new ObjectRefGenerator<Yielded<R>>(rt, out.subarray(0, 16));
  }
  options(o: TaskOptions): AnyRemoteFunction<A, R> {
    return makeRemote<A, R>(this.fn, { ...this.opts, ...validateTaskOptions(o, '.options()') });
  }
}

export function makeRemote<A extends unknown[], R>(fn: FunctionSourceRef, opts: TaskOptions): AnyRemoteFunction<A, R> {
  if (opts.numReturns === 'streaming') return new StreamingRemoteFunction<A, R>(fn, opts);
  if (opts.numReturns === 0) return new NoReturnRemoteFunction<A, R>(fn, opts);
  if (typeof opts.numReturns === 'number' && opts.numReturns !== 1) return new MultiReturnRemoteFunction<A, R>(fn, opts);
  return new RemoteFunction<A, R>(fn, opts);
}

/** Source-mode remote function from a self-contained JS function. */
export function remoteFromFunction<A extends unknown[], R>(f: (...args: A) => R, opts: TaskOptions): RemoteFunction<A, R> {
  const src = checkSelfContained(f);
  return makeRemote<A, R>({ hash: src.hash, name: src.name || 'anonymous', source: src.source }, opts) as RemoteFunction<A, R>;
}
