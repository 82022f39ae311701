// Generators: the consumer side of streaming remote functions. The core
// reports each item (GenItem) and the end (GenEnd) of a generator task; a
// consumer iterates them with nextGeneratorItem.
import { ObjectRef } from '../api/object_ref.js';
import { RaySystemError } from '../api/errors.js';
import type { NativeEvent } from './native.js';
import type { Runtime } from './runtime.js';
import { keyOf } from './waiting.js';

export interface GeneratorState {
  items: ObjectRef<unknown>[];
  ended: boolean;
  wake: (() => void) | undefined;
}

export class Generators {
  readonly #rt: Runtime;
  #generators = new Map<string, GeneratorState>();

  constructor(rt: Runtime) {
    this.#rt = rt;
  }

  #hold(delta: number): void {
    this.#rt.hold(delta);
  }

  /** A GenItem event: the next item of a generator task. */
  item(ev: NativeEvent): void {
    const st = this.#generators.get(keyOf(ev.taskId!));
    const ref = new ObjectRef<unknown>(ev.id as Uint8Array, '', this.#rt);
    if (!st) {
      ref.release();
      return;
    }
    st.items.push(ref);
    st.wake?.();
  }

  /** A GenEnd event: the generator task returned. */
  end(ev: NativeEvent): void {
    const st = this.#generators.get(keyOf(ev.taskId!));
    if (st) {
      st.ended = true;
      st.wake?.();
    }
  }

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
      if (this.#rt.closed) throw new RaySystemError('rayts was shut down while iterating a generator');
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
}
