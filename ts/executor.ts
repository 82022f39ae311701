// Executor: runs the tasks pushed to this worker process, one at a time in
// arrival order, and reports results (inline, or in plasma when large).
import * as api from './index.js';
import { ObjectRef, toHex } from './object_ref.js';
import { deserialize } from './serialization.js';
import { compileFunction, createImportResolver, installBuildHelpers, type ImportResolver } from './source.js';
import { recordFromThrown, type ErrorRecord } from './errors.js';
import type { NativeEvent, NativeReturn } from './native.js';
import type { Runtime } from './runtime.js';

type Callable = (...args: unknown[]) => unknown;

const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class Executor {
  readonly #rt: Runtime;
  readonly #resolver: ImportResolver;
  readonly #functions = new Map<string, Callable>();
  readonly #queue: NativeEvent[] = [];
  readonly #cancelled = new Set<string>();
  #running = false;

  constructor(rt: Runtime) {
    this.#rt = rt;
    installBuildHelpers();
    this.#resolver = createImportResolver({ api, cwd: process.cwd() });
    rt.onExecute = (ev) => this.#enqueue(ev);
    rt.onCancel = (ev) => this.#cancelled.add(keyOf(ev.taskId!));
  }

  #enqueue(ev: NativeEvent): void {
    this.#queue.push(ev);
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const ev = this.#queue.shift()!;
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
      if (ev.fnSource === undefined) throw new Error(`rayts: the source of function ${ev.name} (${hash}) was never sent to this worker`);
      fn = compileFunction(ev.fnSource, this.#resolver, { filename: `rayts:${ev.name || 'remote'}.js` }) as Callable;
    }
    this.#functions.set(hash, fn);
    return fn;
  }

  async #arg(a: Uint8Array | [Uint8Array, string, boolean]): Promise<unknown> {
    const rt = this.#rt;
    if (a instanceof Uint8Array) return deserialize(a, rt.hooks);
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

  #errorReturn(rec: ErrorRecord): NativeReturn {
    const bytes = Buffer.from(JSON.stringify(rec), 'utf8');
    return [bytes, false, true, bytes.length];
  }

  async #run(ev: NativeEvent): Promise<void> {
    const rt = this.#rt;
    const handle = ev.handle!;
    const taskId = ev.taskId!;
    const n = ev.numReturns ?? 1;
    const name = ev.name || 'task';
    if (this.#cancelled.delete(keyOf(taskId))) {
      const rec: ErrorRecord = { kind: 'cancelled', name: 'TaskCancelledError', message: `task ${name} (${toHex(taskId)}) was cancelled before it started`, taskName: name };
      rt.core.taskDone(handle, n < 0 ? [this.#errorReturn(rec)] : Array.from({ length: n }, () => this.#errorReturn(rec)));
      return;
    }
    rt.executing++;
    rt.currentTaskId = toHex(taskId);
    try {
      const fn = await this.#resolve(ev);
      const args = await Promise.all((ev.args ?? []).map((a) => this.#arg(a)));
      if (n < 0) {
        const it = fn(...args) as AsyncIterable<unknown> | Iterable<unknown>;
        if (it === null || typeof it !== 'object' || (!(Symbol.asyncIterator in it) && !(Symbol.iterator in it))) {
          throw new TypeError(`${name} has numReturns: 'streaming' but did not return a generator or iterable`);
        }
        let i = 0;
        for await (const v of it as AsyncIterable<unknown>) {
          const [data, inPlasma, isError, size] = rt.encodeReturn(v, this.#returnId(taskId, i + 1), `yielded value ${i}`);
          rt.core.reportGeneratorItem(handle, i, data, inPlasma, isError, size);
          i++;
        }
        rt.core.taskDone(handle, []);
        return;
      }
      const result = await fn(...args);
      let values: unknown[];
      if (n === 1) values = [result];
      else {
        if (!Array.isArray(result) || result.length !== n) {
          throw new TypeError(`${name} has numReturns: ${n} but returned ${Array.isArray(result) ? `an array of length ${result.length}` : typeof result}; return an array of length ${n}`);
        }
        values = result;
      }
      const rets = values.map((v, i) => rt.encodeReturn(v, this.#returnId(taskId, i + 1), n === 1 ? 'return value' : `return value ${i}`));
      rt.core.taskDone(handle, rets);
    } catch (e) {
      const rec = recordFromThrown(e, name);
      rt.core.taskDone(handle, n < 0 ? [this.#errorReturn(rec)] : Array.from({ length: n }, () => this.#errorReturn(rec)));
    } finally {
      rt.executing--;
      rt.currentTaskId = undefined;
    }
  }
}
