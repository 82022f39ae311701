// RemoteFunction: `ray.remote(fn)`. Ships the function by source (or by
// module + export name in module mode), validates options where they are
// given, and submits through the current runtime.
import { ObjectRef } from './object_ref.js';
import { requireRuntime, type FunctionDescriptor, type Runtime } from './runtime.js';
import { validateTaskOptions, type TaskOptions } from './options.js';
import { checkSelfContained } from './source.js';

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
    return item === undefined ? { done: true, value: undefined } : { done: false, value: item as ObjectRef<T> };
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

class RemoteFunctionBase {
  /** @internal */ readonly fn: FunctionSourceRef;
  /** @internal */ readonly opts: TaskOptions;

  /** @internal */
  constructor(fn: FunctionSourceRef, opts: TaskOptions) {
    this.fn = fn;
    this.opts = opts;
  }

  /** @internal */
  submitWith(args: unknown[]): { rt: Runtime; taskId: Uint8Array; returns: Uint8Array[] } {
    const name = this.opts.name ?? this.fn.name;
    const rt = requireRuntime(`${name}.remote()`);
    const n = this.opts.numReturns;
    const desc: FunctionDescriptor = { hash: this.fn.hash, name };
    if (this.fn.source !== undefined) desc.source = this.fn.source;
    if (this.fn.moduleUrl !== undefined) desc.moduleUrl = this.fn.moduleUrl;
    if (this.fn.exportName !== undefined) desc.exportName = this.fn.exportName;
    const { taskId, returns } = rt.submit(desc, args, {
      resources: resourcesOf(this.opts, TASK_DEFAULTS.numCpus),
      numReturns: n === 'streaming' ? -1 : n ?? 1,
      maxRetries: this.opts.maxRetries ?? TASK_DEFAULTS.maxRetries,
    });
    return { rt, taskId, returns };
  }
}

export class RemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  /** Submits the task; returns a ref to its result at once. */
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>> {
    const { rt, returns } = this.submitWith(args);
    return rt.adoptRef<Awaited<R>>(returns[0]!);
  }

  /** A copy with these options merged over the current ones. */
  options(o: TaskOptions & { numReturns: 'streaming' }): StreamingRemoteFunction<A, R>;
  options(o: TaskOptions & { numReturns: number }): MultiReturnRemoteFunction<A, R>;
  options(o: TaskOptions): RemoteFunction<A, R>;
  options(o: TaskOptions): RemoteFunction<A, R> | StreamingRemoteFunction<A, R> | MultiReturnRemoteFunction<A, R> {
    const merged = { ...this.opts, ...validateTaskOptions(o, '.options()') };
    return makeRemote<A, R>(this.fn, merged);
  }
}

export class MultiReturnRemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R> extends readonly (infer E)[] ? E : unknown>[] {
    const { rt, returns } = this.submitWith(args);
    return returns.map((b) => rt.adoptRef(b));
  }
  options(o: TaskOptions): RemoteFunction<A, R> | StreamingRemoteFunction<A, R> | MultiReturnRemoteFunction<A, R> {
    return makeRemote<A, R>(this.fn, { ...this.opts, ...validateTaskOptions(o, '.options()') });
  }
}

export class StreamingRemoteFunction<A extends unknown[], R> extends RemoteFunctionBase {
  remote(...args: RemoteArgs<A>): ObjectRefGenerator<Yielded<R>> {
    const { rt, taskId } = this.submitWith(args);
    return new ObjectRefGenerator<Yielded<R>>(rt, taskId);
  }
  options(o: TaskOptions): RemoteFunction<A, R> | StreamingRemoteFunction<A, R> | MultiReturnRemoteFunction<A, R> {
    return makeRemote<A, R>(this.fn, { ...this.opts, ...validateTaskOptions(o, '.options()') });
  }
}

export function makeRemote<A extends unknown[], R>(fn: FunctionSourceRef, opts: TaskOptions):
  RemoteFunction<A, R> | StreamingRemoteFunction<A, R> | MultiReturnRemoteFunction<A, R> {
  if (opts.numReturns === 'streaming') return new StreamingRemoteFunction<A, R>(fn, opts);
  if (typeof opts.numReturns === 'number' && opts.numReturns !== 1) return new MultiReturnRemoteFunction<A, R>(fn, opts);
  return new RemoteFunction<A, R>(fn, opts);
}

/** Source-mode remote function from a self-contained JS function. */
export function remoteFromFunction<A extends unknown[], R>(f: (...args: A) => R, opts: TaskOptions): RemoteFunction<A, R> {
  const src = checkSelfContained(f);
  return makeRemote<A, R>({ hash: src.hash, name: src.name || 'anonymous', source: src.source }, opts) as RemoteFunction<A, R>;
}
