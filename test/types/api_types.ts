// Type-level tests: this file must compile; each @ts-expect-error line must
// be an error (tsc fails on an unused @ts-expect-error).
import * as ray from '../../ts/index.js';

const Counter = ray.remote(class Counter {
  n = 0;
  constructor(start: number) { this.n = start; }
  inc(by: number): number { return (this.n += by); }
  async label(prefix: string): Promise<string> { return `${prefix}${this.n}`; }
});

export async function actorTypes(): Promise<void> {
  const c = Counter.remote(1);
  const r: ray.ObjectRef<number> = c.inc.remote(2);
  const s: ray.ObjectRef<string> = c.label.remote('n='); // awaited return type
  const v: number = await r;
  const w: string = await s;
  void v; void w;
  // @ts-expect-error wrong argument type for a method
  c.inc.remote('two');
  // @ts-expect-error wrong constructor argument type
  Counter.remote('one');
  // @ts-expect-error no such method
  c.dec.remote(1);
  // an ObjectRef of the right type is accepted as an argument
  c.inc.remote(ray.put(3));
  // @ts-expect-error an ObjectRef of the wrong type is not
  c.inc.remote(ray.put('3'));
}

export async function taskTypes(): Promise<void> {
  const add = ray.remote((a: number, b: number) => a + b);
  const r: ray.ObjectRef<number> = add.remote(1, 2);
  void r;
  // @ts-expect-error wrong argument type for a task
  add.remote('1', 2);
  const refs = add.options({ numReturns: 2 }).remote(1, 2);
  const arr: ray.ObjectRef<unknown>[] = refs;
  void arr;
  // numReturns: 0 runs for side effects: .remote() returns nothing.
  const none: void = add.options({ numReturns: 0 }).remote(1, 2);
  const none2: void = ray.remote({ numReturns: 0 }, (a: number) => a).remote(1);
  void none; void none2;
  // @ts-expect-error numReturns: 0 gives no ref
  const noRef: ray.ObjectRef<number> = add.options({ numReturns: 0 }).remote(1, 2);
  void noRef;
}

export async function memoryTypes(): Promise<void> {
  const s: ray.MemorySummary = await ray.memorySummary();
  const o: ray.ObjectSummary | undefined = s.objects[0];
  const where: ray.ObjectLocation | undefined = o?.location;
  const n: number = s.totals.plasmaBytes + s.lineage.reconstructions + (o?.references.borrowers ?? 0);
  const text: string = ray.formatMemorySummary(s);
  void where; void n; void text;
  // @ts-expect-error location is a closed set
  const bad: ray.ObjectLocation = 'disk';
  void bad;
  await ray.init({ lineageMaxBytes: 1024 });
  // @ts-expect-error lineageMaxBytes is a number of bytes
  await ray.init({ lineageMaxBytes: '1K' });
}

export async function objectRefPromiseTypes(): Promise<void> {
  const ref: ray.ObjectRef<number> = ray.put(1);
  // ObjectRef has the Promise methods: then, catch, finally
  const a: Promise<number | 'failed'> = ref.catch(() => 'failed' as const);
  const b: Promise<number> = ref.finally(() => undefined);
  const c: Promise<string> = ref.then((v) => String(v));
  const p: Promise<number> = Promise.resolve(ref); // a PromiseLike resolves to its value
  void a; void b; void c; void p;
  // @ts-expect-error finally's callback takes no value
  ref.finally((v: number) => v);
  // @ts-expect-error catch keeps the value type: not a string
  const s: Promise<string> = ref.catch(() => 'x');
  void s;
}

export async function untypedActorTypes(): Promise<void> {
  // Without a type parameter every method is callable, loosely typed.
  const h: ray.UntypedActorHandle = await ray.getActor('c1');
  const r: ray.ObjectRef<unknown> = h.inc.remote(1, 'any', { args: true }, ray.put(2));
  const id: string = h.actorId;
  void r; void id;
  // @ts-expect-error results are unknown until checked
  const n: ray.ObjectRef<number> = h.inc.remote(1);
  void n;
  // @ts-expect-error a method is called with .remote(), not directly
  h.inc(1);
  // With a type parameter the handle is the typed one.
  const t = await ray.getActor<CounterShape>('c1', { namespace: 'ns' });
  const tr: ray.ObjectRef<number> = t.inc.remote(2);
  void tr;
  // @ts-expect-error the typed handle checks argument types
  t.inc.remote('two');
  // Per-call options: numReturns gives an array of refs to the elements.
  const pair = ray.remote(class P { two(): [number, string] { return [1, 'a']; } }).remote();
  const refs: ray.ObjectRef<number | string>[] = pair.two.options({ numReturns: 2 }).remote();
  const one: ray.ObjectRef<[number, string]> = pair.two.options({ name: 'x', concurrencyGroup: 'g' }).remote();
  void refs; void one;
  // A generator method with numReturns: 'streaming' gives refs to its items.
  const gens = ray.remote(class G { *items(n: number) { for (let i = 0; i < n; i++) yield String(i); } }).remote();
  const stream: ray.ObjectRefGenerator<string> = gens.items.options({ numReturns: 'streaming' }).remote(3);
  const nothing: void = gens.items.options({ numReturns: 0 }).remote(3);
  void stream; void nothing;
  // @ts-expect-error per-call options are numReturns, name and concurrencyGroup
  pair.two.options({ numCpus: 1 });
  // kill takes either handle
  ray.kill(h);
  ray.kill(t, { noRestart: false });
}

interface CounterShape {
  n: number;
  inc(by: number): number;
}
