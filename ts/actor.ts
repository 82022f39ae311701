// Actors: `ray.remote(class ...)` gives an ActorClass; `.remote(...)` starts
// the actor in its own worker process and returns an ActorHandle whose
// methods are called with `.remote(...)`, in submission order.
//
// This first slice: actors owned by the creating process (handles are not
// yet serializable), no restarts (a dead actor fails every call with
// ActorDiedError), ray.kill. Placement: an actor holds the resources given
// in its options for its life; the default is 0 CPU (Ray places an actor
// with 1 CPU and runs it with 0).
import { ObjectRef, toHex } from './object_ref.js';
import { requireRuntime, type Runtime } from './runtime.js';
import { checkSelfContained } from './source.js';
import { resourcesOf, type RemoteArgs } from './remote_function.js';
import { validateActorOptions, type ActorOptions } from './options.js';

/** A method of an actor handle: `.remote(...args)` calls it on the actor. */
export interface ActorMethod<A extends unknown[], R> {
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>>;
}

type MethodNames<C> = { [K in keyof C]: C[K] extends (...args: never[]) => unknown ? K : never }[keyof C];

/** Typed handle: every method of C, callable with `.remote()`. */
export type ActorHandle<C> = {
  readonly [K in MethodNames<C>]: C[K] extends (...args: infer A) => infer R ? ActorMethod<A, R> : never;
} & { readonly actorId: string };

const ACTOR_DEFAULT_CPUS = 0;

/** Public method names of a class (own and inherited prototype methods). */
function methodNames(cls: Function): Set<string> {
  const names = new Set<string>();
  for (let p = cls.prototype as object | null; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const n of Object.getOwnPropertyNames(p)) {
      if (n === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(p, n);
      if (d && typeof d.value === 'function') names.add(n);
    }
  }
  return names;
}

export class ActorClass<C, Args extends unknown[]> {
  readonly #cls: Function;
  readonly #source: { source: string; hash: string; name: string };
  readonly #opts: ActorOptions;
  readonly #methods: Set<string>;
  #registered: { rt: Runtime; id: number } | undefined;

  /** @internal */
  constructor(cls: Function, opts: ActorOptions) {
    this.#cls = cls;
    this.#source = checkSelfContained(cls);
    this.#opts = opts;
    this.#methods = methodNames(cls);
    resourcesOf(opts, ACTOR_DEFAULT_CPUS); // reject a bad shape here
  }

  get className(): string {
    return this.#source.name || 'Actor';
  }

  #classIn(rt: Runtime): number {
    const r = this.#registered;
    if (r !== undefined && r.rt === rt) return r.id;
    const id = rt.registerTaskClass(
      { hash: this.#source.hash, source: this.#source.source, name: this.className },
      resourcesOf(this.#opts, ACTOR_DEFAULT_CPUS),
    );
    this.#registered = { rt, id };
    return id;
  }

  /** Starts the actor; returns its handle at once. */
  remote(...args: RemoteArgs<Args>): ActorHandle<C> {
    const rt = requireRuntime(`${this.className}.remote()`);
    const classId = this.#classIn(rt);
    const actorId = rt.createActor(classId, this.className, args, this.#opts.maxConcurrency ?? 0);
    return makeHandle<C>(rt, classId, actorId, this.className, this.#methods);
  }

  /** A copy with these options merged over the current ones. */
  options(o: ActorOptions): ActorClass<C, Args> {
    const merged = { ...this.#opts, ...validateActorOptions(o, `${this.className}.options()`) };
    return new ActorClass<C, Args>(this.#cls, merged);
  }
}

const handleIds = new WeakMap<object, { rt: Runtime; actorId: Uint8Array }>();

function makeHandle<C>(rt: Runtime, classId: number, actorId: Uint8Array, className: string, methods: Set<string>): ActorHandle<C> {
  const hex = toHex(actorId);
  const cache = new Map<string, ActorMethod<unknown[], unknown>>();
  const target = { actorId: hex };
  const handle = new Proxy(target, {
    get(t, prop) {
      if (prop === 'actorId') return hex;
      if (typeof prop !== 'string' || prop === 'then' || prop === 'toJSON') return undefined;
      let m = cache.get(prop);
      if (m) return m;
      if (!methods.has(prop)) {
        throw new TypeError(`actor class ${className} has no method '${prop}' (methods: ${[...methods].join(', ') || 'none'})`);
      }
      m = {
        remote: (...args: unknown[]): ObjectRef<unknown> => {
          const out = rt.submitActorTask(classId, actorId, prop, args, 1);
          return rt.adoptRef(out.subarray(16, 36));
        },
      };
      cache.set(prop, m);
      return m;
    },
  }) as unknown as ActorHandle<C>;
  handleIds.set(handle as object, { rt, actorId });
  return handle;
}

/** ray.kill(handle): ends the actor's process; its calls fail with ActorDiedError. */
export function killActor(handle: unknown): void {
  const h = typeof handle === 'object' && handle !== null ? handleIds.get(handle) : undefined;
  if (!h) throw new TypeError('ray.kill expects an ActorHandle');
  h.rt.killActor(h.actorId);
}
