// Fifo: a first-in first-out queue with O(1) push and shift at any length.
//
// The executor queues every call pushed to this worker (an actor may have a
// million queued). Array.prototype.shift() moves every remaining element once
// an array is past V8's in-place left-trim limits, which made draining n
// queued calls O(n²). This is a ring buffer over a power-of-two array that
// doubles when full; shifted slots are cleared so the values can be collected.

export class Fifo<T> {
  #items: (T | undefined)[] = new Array<T | undefined>(16);
  #mask = 15;
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(v: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & this.#mask] = v;
    this.#length++;
  }

  /** The oldest value, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const i = this.#head;
    const v = this.#items[i];
    this.#items[i] = undefined;
    this.#head = (i + 1) & this.#mask;
    this.#length--;
    return v;
  }

  #grow(): void {
    const old = this.#items;
    const n = old.length;
    const next = new Array<T | undefined>(n * 2);
    for (let i = 0; i < n; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#items = next;
    this.#head = 0;
    this.#mask = n * 2 - 1;
  }
}
