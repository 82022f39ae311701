// Actors: `ray.remote(class ...)` gives an ActorClass; `.remote(...)` starts
// the actor in its own worker process and returns an ActorHandle whose
// methods are called with `.remote(...)`, in submission order.
//
// Every actor is registered in the GCS actor table (names are unique per
// namespace; getIfExists returns the existing one). Handles are
// serializable: a process that receives one asks the GCS where the actor
// lives and calls it directly. Restarts follow maxRestarts; a dead actor
// fails every call with ActorDiedError. Placement: an actor holds the resources given
// in its options for its life; the default is 0 CPU (Ray places an actor
// with 1 CPU and runs it with 0).
import { randomFillSync } from 'node:crypto';
import { ObjectRef, toHex } from './object_ref.js';
import type { Runtime } from '../runtime/runtime.js';
import { requireRuntime } from '../runtime/current.js';
import { checkSelfContained } from '../codec/source.js';
import { ANY_METHOD } from '../codec/module_classes.js';
import { ObjectRefGenerator, resourcesOf, type RemoteArgs } from './remote_function.js';
import { validateActorMethodOptions, validateActorOptions, type ActorMethodOptions, type ActorOptions } from './options.js';
import { nativeScheduling } from './scheduling.js';

/** A method of an actor handle: `.remote(...args)` calls it on the actor. */
export interface ActorMethod<A extends unknown[], R> {
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>>;
  /** This method with per-call options (Ray's `actor.method.options(...)`). */
  options(o: ActorMethodOptions & { numReturns: 1 }): ActorMethod<A, R>;
  options(o: ActorMethodOptions & { numReturns: 'streaming' }): StreamingActorMethod<A, R>;
  options(o: ActorMethodOptions & { numReturns: 0 }): NoReturnActorMethod<A>;
  options(o: ActorMethodOptions & { numReturns: number }): MultiReturnActorMethod<A, R>;
  options(o: ActorMethodOptions): ActorMethod<A, R>;
}

/** An actor method with `numReturns: n`: `.remote()` gives n refs (the method returns an array of n). */
export interface MultiReturnActorMethod<A extends unknown[], R> {
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R> extends readonly (infer E)[] ? E : unknown>[];
}

type Yielded<R> = R extends AsyncIterable<infer Y> ? Y : R extends Iterable<infer Y> ? Y : never;

/** A generator method with `numReturns: 'streaming'`: `.remote()` gives the refs of its items as they come. */
export interface StreamingActorMethod<A extends unknown[], R> {
  remote(...args: RemoteArgs<A>): ObjectRefGenerator<Yielded<R>>;
}

/** An actor method with `numReturns: 0`: run for its side effects; an error it throws is logged. */
export interface NoReturnActorMethod<A extends unknown[]> {
  remote(...args: RemoteArgs<A>): void;
}

type MethodNames<C> = { [K in keyof C]: C[K] extends (...args: never[]) => unknown ? K : never }[keyof C];

/** Typed handle: every method of C, callable with `.remote()`. */
export type ActorHandle<C> = {
  readonly [K in MethodNames<C>]: C[K] extends (...args: infer A) => infer R ? ActorMethod<A, R> : never;
} & { readonly actorId: string };

/**
 * A handle whose class is not known to the type checker (`ray.getActor(name)`
 * without a type parameter): every method name is callable with
 * `.remote(...)` on any arguments and gives an `ObjectRef<unknown>`. A name
 * the actor does not have throws a TypeError listing the methods it has.
 * `ray.getActor<C>(name)` gives the typed `ActorHandle<C>` instead.
 */
export type UntypedActorHandle = { readonly [method: string]: ActorMethod<unknown[], unknown> } & { readonly actorId: string };

/** Any actor handle, typed or not (what ray.kill accepts). */
export interface AnyActorHandle {
  readonly actorId: string;
}

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
  readonly #cls: Function | undefined;
  readonly #source: { source?: string; hash: string; name: string; moduleUrl?: string; exportName?: string };
  readonly #opts: ActorOptions;
  readonly #methods: Set<string>;
  readonly #module: { url: string; exportName: string; methods: Set<string> } | undefined;
  #registered: { rt: Runtime; id: number } | undefined;

  /** @internal */
  constructor(cls: Function | undefined, opts: ActorOptions,
    module?: { url: string; exportName: string; methods: Set<string> }) {
    this.#cls = cls;
    if (module !== undefined) {
      this.#source = { hash: `${module.url}#${module.exportName}`, name: module.exportName, moduleUrl: module.url, exportName: module.exportName };
      this.#methods = module.methods;
    } else {
      this.#source = checkSelfContained(cls!);
      this.#methods = methodNames(cls!);
    }
    this.#module = module;
    this.#opts = opts;
    resourcesOf(opts, ACTOR_DEFAULT_CPUS); // reject a bad shape here
  }

  /** @internal Module mode: an exported class, imported by the worker. */
  static fromModule<C, Args extends unknown[]>(url: string, exportName: string, methods: Set<string>, opts: ActorOptions): ActorClass<C, Args> {
    return new ActorClass<C, Args>(undefined, opts, { url, exportName, methods });
  }

  get className(): string {
    return this.#source.name || 'Actor';
  }

  /** Ray's default: no CPU option given -> placed with 1 CPU, run with 0. */
  #placementOnlyCpu(): boolean {
    return this.#opts.numCpus === undefined && this.#opts.numGpus === undefined && this.#opts.resources === undefined;
  }

  #classIn(rt: Runtime): number {
    const r = this.#registered;
    if (r !== undefined && r.rt === rt) return r.id;
    const desc: { hash: string; name: string; source?: string; moduleUrl?: string; exportName?: string } =
      { hash: this.#source.hash, name: this.className };
    if (this.#source.source !== undefined) desc.source = this.#source.source;
    if (this.#source.moduleUrl !== undefined) desc.moduleUrl = this.#source.moduleUrl;
    if (this.#source.exportName !== undefined) desc.exportName = this.#source.exportName;
    const id = rt.registerTaskClass(desc, resourcesOf(this.#opts, this.#placementOnlyCpu() ? 1 : ACTOR_DEFAULT_CPUS), '',
      nativeScheduling(this.#opts.schedulingStrategy));
    this.#registered = { rt, id };
    return id;
  }

  /** Starts the actor; returns its handle at once. */
  remote(...args: RemoteArgs<Args>): ActorHandle<C> {
    const rt = requireRuntime(`${this.className}.remote()`);
    const classId = this.#classIn(rt);
    const actorId = new Uint8Array(16);
    randomFillSync(actorId);
    // Every handle holds this token; other processes borrow it with the
    // handle, so the owner's reference counting sees every handle alive.
    const token = rt.put(null);
    const info: ActorInfoWire = { c: this.className, m: [...this.#methods], o: rt.address, t: token.id };
    if (this.#opts.maxTaskRetries) info.r = this.#opts.maxTaskRetries;
    if (this.#opts.lifetime === 'detached') info.d = 1;
    const ns = this.#opts.namespace ?? rt.namespace;
    const name = this.#opts.name ?? '';
    const existing = registerActor(rt, name, () => rt.core.gcsRegisterActor(actorId, name, ns, this.className,
      this.#opts.lifetime === 'detached', this.#opts.getIfExists === true, this.#opts.maxRestarts ?? 0,
      JSON.stringify(info)));
    if (existing) {
      token.release();
      return handleFromInfo<C>(rt, existing[0], JSON.parse(existing[1]) as ActorInfoWire);
    }
    // The handle's wire form travels after the arguments (the worker's
    // getRuntimeContext().currentActor).
    rt.createActor(classId, this.className, [...args, JSON.stringify(info)], this.#opts.maxConcurrency ?? 0, actorId,
      this.#opts.maxRestarts ?? 0, this.#opts.maxTaskRetries ?? 0,
      this.#opts.concurrencyGroups ? JSON.stringify(this.#opts.concurrencyGroups) : '',
      this.#opts.lifetime === 'detached', this.#placementOnlyCpu());
    if (this.#opts.lifetime !== 'detached') rt.core.setActorToken(actorId, token.binary);
    return makeHandle<C>(rt, classId, actorId, info, token, Math.max(0, this.#opts.maxPendingCalls ?? 0));
  }

  /** A copy with these options merged over the current ones. */
  options(o: ActorOptions): ActorClass<C, Args> {
    const merged = { ...this.#opts, ...validateActorOptions(o, `${this.className}.options()`) };
    return new ActorClass<C, Args>(this.#cls, merged, this.#module);
  }
}

/** What a handle carries across processes (and the GCS keeps per actor). */
interface ActorInfoWire {
  c: string;      // class name
  m: string[];    // method names
  o: string;      // owner's address
  t: string;      // hex id of the handle token (an object the owner owns)
  r?: number;     // maxTaskRetries (absent: 0): a borrower resends its calls cut off by a restart
  d?: 1;          // lifetime 'detached' (absent: it dies with its owner)
}

function hexToBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** The registration's answer: null (registered), or the live actor that already had the name. */
function registerActor(rt: Runtime, name: string, register: () => [Uint8Array, string] | null): [Uint8Array, string] | null {
  try {
    return register();
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'AlreadyExists') {
      throw new Error(`${err.message}; use getIfExists: true to get it, or ray.getActor('${name}')`, { cause: e });
    }
    throw e;
  }
}

interface HandleState {
  rt: Runtime;
  actorId: Uint8Array;
  owned: boolean;
  info: ActorInfoWire;
  /** Held while the handle lives; see ActorClass.remote. */
  token: ObjectRef<unknown>;
}

const handles = new WeakMap<object, HandleState>();

/**
 * A handle holds the actor's token ObjectRef. The owner's handles share one
 * owned ref; a handle elsewhere holds a borrowed ref (the borrower protocol
 * registers that process with the owner). When every handle everywhere is
 * collected, the token is released and the owner's core ends the actor
 * once its pending calls are done (Ray: an actor dies with its last handle).
 */
function makeHandle<C>(rt: Runtime, classId: number, actorId: Uint8Array, info: ActorInfoWire, token: ObjectRef<unknown>,
  maxPending = 0): ActorHandle<C> {
  const hex = toHex(actorId);
  const className = info.c;
  const methods = new Set(info.m);
  const cache = new Map<string, ActorMethod<unknown[], unknown>>();
  const target = { actorId: hex };
  const handle = new Proxy(target, {
    get(t, prop) {
      if (prop === 'actorId') return hex;
      if (typeof prop !== 'string' || prop === 'then' || prop === 'toJSON') return undefined;
      let m = cache.get(prop);
      if (m) return m;
      if (!methods.has(prop) && !methods.has(ANY_METHOD)) {
        throw new TypeError(`actor class ${className} has no method '${prop}' (methods: ${[...methods].join(', ') || 'none'})`);
      }
      m = methodOf(rt, classId, actorId, prop, info, maxPending, {});
      cache.set(prop, m);
      return m;
    },
  }) as unknown as ActorHandle<C>;
  handles.set(handle as object, { rt, actorId, owned: info.o === rt.address, info, token });
  return handle;
}

/** One method of a handle, with its per-call options. */
function methodOf(rt: Runtime, classId: number, actorId: Uint8Array, method: string, info: ActorInfoWire, maxPending: number,
  o: ActorMethodOptions): ActorMethod<unknown[], unknown> {
  const n = o.numReturns === 'streaming' ? -1 : o.numReturns ?? 1;
  const call = (args: unknown[]): Uint8Array =>
    rt.submitActorTask(classId, actorId, method, args, n, maxPending, info.r ?? 0, o.concurrencyGroup ?? '', o.name ?? '');
  const m = {
    remote: (...args: unknown[]): unknown => {
      const out = call(args);
      if (n === 1) return rt.adoptRef(out.subarray(16, 36));
      if (n === 0) return undefined;
      if (n < 0) return new ObjectRefGenerator<unknown>(rt, out.subarray(0, 16));
      const refs: ObjectRef<unknown>[] = [];
      for (let off = 16; off < 16 + 20 * n; off += 20) refs.push(rt.adoptRef(out.subarray(off, off + 20)));
      return refs;
    },
    options: (more: ActorMethodOptions): unknown =>
      methodOf(rt, classId, actorId, method, info, maxPending, { ...o, ...validateActorMethodOptions(more, `${info.c}.${method}.options()`) }),
  };
  return m as unknown as ActorMethod<unknown[], unknown>;
}

/**
 * A handle from the GCS (a name, getIfExists) or from a value: it takes a
 * new ref on the token (borrowed unless this process owns the actor), or
 * uses `token` when the decoder already made one.
 */
function handleFromInfo<C>(rt: Runtime, actorId: Uint8Array, info: ActorInfoWire, token?: ObjectRef<unknown>): ActorHandle<C> {
  const classId = rt.registerTaskClass({ hash: `actor:${info.c}`, name: info.c }, []);
  if (token === undefined) {
    const owner = info.o === rt.address ? '' : info.o;
    const id = hexToBytes(info.t);
    rt.core.addLocalRef(id, owner);
    token = new ObjectRef<unknown>(id, owner, rt);
  }
  // Owned elsewhere, not detached: it dies with its owner, which this
  // process may kill (its calls then fail at once with that cause).
  if (info.o !== rt.address && info.d === undefined) rt.core.setActorOwner(actorId, info.o);
  return makeHandle<C>(rt, classId, actorId, info, token);
}

/**
 * Inside an actor: a handle to the actor itself (getRuntimeContext().currentActor),
 * from the wire form its creator sent; undefined elsewhere.
 */
export function currentActorHandle(rt: Runtime): AnyActorHandle | undefined {
  if (rt.actorInfo === undefined || rt.actorId === undefined) return undefined;
  return handleFromInfo<unknown>(rt, hexToBytes(rt.actorId), JSON.parse(rt.actorInfo) as ActorInfoWire) as AnyActorHandle;
}

/** Serialization of handles nested in values (see Runtime.hooks). */
export function isActorHandle(v: unknown): boolean {
  return typeof v === 'object' && v !== null && handles.has(v);
}
/** The handle's token: the serializer carries it as a nested ref. */
export function actorHandleToken(v: object): ObjectRef<unknown> {
  return handles.get(v)!.token;
}
/** Wire form: 16-byte actor id, then the info JSON (its `t` names the token). */
export function encodeActorHandle(v: object): Uint8Array {
  const h = handles.get(v)!;
  const info = Buffer.from(JSON.stringify(h.info), 'utf8');
  const out = new Uint8Array(16 + info.length);
  out.set(h.actorId, 0);
  out.set(info, 16);
  return out;
}
/** `tokenRef(id, owner)` makes the token ref the way the decoder makes nested refs. */
export function decodeActorHandle(rt: Runtime, b: Uint8Array,
  tokenRef: (id: Uint8Array, owner: string) => ObjectRef<unknown>): object {
  const id = Uint8Array.prototype.slice.call(b, 0, 16);
  const info = JSON.parse(Buffer.from(b.buffer, b.byteOffset + 16, b.byteLength - 16).toString('utf8')) as ActorInfoWire;
  const token = tokenRef(hexToBytes(info.t), info.o === rt.address ? '' : info.o);
  return handleFromInfo(rt, id, info, token) as object;
}

/** ray.getActor(name, { namespace }): a handle to a live named actor. */
export function getActorHandle<C>(rt: Runtime, name: string, ns: string): ActorHandle<C> {
  let reply: [Uint8Array, string];
  try {
    reply = rt.core.gcsGetNamedActor(ns, name);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'NotFound') throw new Error(`ray.getActor: ${err.message}`, { cause: e });
    throw e;
  }
  return handleFromInfo<C>(rt, reply[0], JSON.parse(reply[1]) as ActorInfoWire);
}

/** ray.kill(handle): ends the actor's process; its calls fail with ActorDiedError. */
export function killActor(handle: unknown, noRestart = true): void {
  const h = typeof handle === 'object' && handle !== null ? handles.get(handle) : undefined;
  if (!h) throw new TypeError('ray.kill expects an ActorHandle');
  if (!h.owned) {
    // Not ours: the node server ends its worker and records the death.
    h.rt.core.gcsKillActor(h.actorId, 'killed by ray.kill()');
    return;
  }
  h.rt.killActor(h.actorId, noRestart);
}

/** Thrown by ray.exitActor(); the executor turns it into the actor's exit. */
export class ActorExitSignal extends Error {
  constructor() {
    super('ray.exitActor() called');
  }
}

/** Inside an actor method: ends the actor after this call (its process exits). */
export function exitActor(): never {
  const rt = requireRuntime('ray.exitActor()');
  if (rt.isDriver || !rt.hostsActor) throw new Error('ray.exitActor() can only be called inside an actor method');
  // Recorded before the throw: a method that catches the signal still ends
  // the actor when it returns (as in Ray).
  rt.exitRequested = true;
  throw new ActorExitSignal();
}
