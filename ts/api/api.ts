// The public API functions (re-exported from index.ts).
import * as os from 'node:os';
import * as path from 'node:path';
import { rmSync } from 'node:fs';
import { availableMemory } from '../runtime/memory_limit.js';
import { createSessionDir, recordSpillDir, removeStaleSessions, sessionRoot } from './session.js';
import { ObjectRef, toHex } from './object_ref.js';
import { Runtime } from '../runtime/runtime.js';
import { currentRuntime, requireRuntime, setCurrentRuntime } from '../runtime/current.js';
import { taskSignal } from '../worker/task_context.js';
import { loadAddon, workerMainPath, type NativeNodeServer } from '../runtime/native.js';
import {
  memoryThreshold, validateActorOptions, validateCancelOptions, validateGetOptions, validateInitOptions, validateTaskOptions,
  validateWaitOptions,
  type ActorOptions, type InitOptions, type TaskOptions,
} from './options.js';
import { ActorClass, currentActorHandle, getActorHandle, killActor, type ActorHandle, type AnyActorHandle, type UntypedActorHandle } from './actor.js';
import { exportedClasses } from '../codec/module_classes.js';
import { isTypeScriptFile } from '../codec/typescript_source.js';
import { loaderArgs, typeScriptLoaderActive } from '../runtime/loader_flags.js';
export { exitActor } from './actor.js';
import {
  makeRemote, remoteFromFunction, ObjectRefGenerator,
  type MultiReturnRemoteFunction, type NoReturnRemoteFunction, type RemoteFunction, type StreamingRemoteFunction,
} from './remote_function.js';
import { RaySystemError } from './errors.js';
import { attachToCluster } from '../runtime/cluster_attach.js';

const DEFAULT_STORE_CAP = 1024 * 1024 * 1024; // 1 GiB (Ray: 30% of RAM; capped to keep init cheap)
const DEFAULT_STORE_FRACTION = 0.3; // of the memory this process may use (the cgroup limit in a container)

let initPromise: Promise<void> | undefined;

const DEFAULT_MEMORY_USAGE_THRESHOLD = 0.95; // as Ray
const DEFAULT_MEMORY_MONITOR_PERIOD_MS = 250; // as Ray's memory_monitor_refresh_ms

/**
 * The node's memory monitor settings: the init option, else the environment
 * variable RAYTS_MEMORY_USAGE_THRESHOLD, else 0.95. Internal (tests):
 * RAYTS_MEMORY_MONITOR_REFRESH_MS sets the sampling period (0 disables).
 */
function memoryMonitorOptions(threshold: number | undefined): { memoryUsageThreshold: number; memoryMonitorPeriodMs: number } {
  const envThreshold = process.env.RAYTS_MEMORY_USAGE_THRESHOLD;
  const t = threshold ?? (envThreshold !== undefined && envThreshold !== ''
    ? memoryThreshold('RAYTS_MEMORY_USAGE_THRESHOLD', Number(envThreshold))
    : DEFAULT_MEMORY_USAGE_THRESHOLD);
  const envPeriod = process.env.RAYTS_MEMORY_MONITOR_REFRESH_MS;
  let period = DEFAULT_MEMORY_MONITOR_PERIOD_MS;
  if (envPeriod !== undefined && envPeriod !== '') {
    period = Number(envPeriod);
    if (!Number.isInteger(period) || period < 0 || period > 60_000) {
      throw new RangeError(`RAYTS_MEMORY_MONITOR_REFRESH_MS must be an integer number of milliseconds in [0, 60000], got '${envPeriod}'`);
    }
  }
  return { memoryUsageThreshold: t, memoryMonitorPeriodMs: period };
}

/** Internal (tests): RAYTS_WORKER_LOG_MAX_BYTES sets the size at which a worker log file is rotated. */
function workerLogOptions(): { workerLogMaxBytes?: number } {
  const v = process.env.RAYTS_WORKER_LOG_MAX_BYTES;
  if (v === undefined || v === '') return {};
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1024) {
    throw new RangeError(`RAYTS_WORKER_LOG_MAX_BYTES must be an integer number of bytes >= 1024, got '${v}'`);
  }
  return { workerLogMaxBytes: n };
}

/** Starts an embedded local cluster (no address) and connects this process, or attaches it to a running cluster (address). */
export async function init(opts?: InitOptions): Promise<void> {
  const o = validateInitOptions(opts ?? {});
  const cur = currentRuntime();
  if (cur && !cur.closed) {
    if (!cur.isDriver) return; // inside a task: already connected
    throw new RaySystemError('rayts is already initialized: call ray.shutdown() first, or check ray.isInitialized()');
  }
  if (initPromise) return initPromise;
  initPromise = (async () => {
    if (o.address !== undefined) {
      // A running cluster: attach through a node of this machine (cluster_attach.ts).
      const attached = await attachToCluster(o);
      setCurrentRuntime(attached.runtime);
      attachedDrivers.set(attached.runtime, attached.cleanup);
      cleanupOnExit(attached.runtime, undefined);
      if (o.handleSignals === true) installSignalHandlers(attached.runtime);
      return;
    }
    const addon = loadAddon();
    const root = sessionRoot();
    removeStaleSessions(root);
    const sessionDir = createSessionDir(root);
    const numCpus = o.numCpus ?? os.availableParallelism();
    const resources: Record<string, number> = { CPU: numCpus };
    if (o.numGpus) resources.GPU = o.numGpus;
    Object.assign(resources, o.resources ?? {});
    const storeBytes = o.objectStoreMemory ?? Math.min(DEFAULT_STORE_CAP, Math.floor(availableMemory() * DEFAULT_STORE_FRACTION));
    const env: Record<string, string | undefined> = { ...process.env, ...(o.runtimeEnv?.envVars ?? {}) };
    if (o.lineageMaxBytes !== undefined) env.RAYTS_LINEAGE_MAX_BYTES = String(o.lineageMaxBytes);
    const workerEnv = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    const socketPath = path.join(sessionDir, 'sockets', 'node.sock');
    let node: NativeNodeServer;
    try {
      node = new addon.NativeNodeServer({
        socketPath,
        sessionDir,
        storeBytes,
        resources,
        prestart: Math.ceil(numCpus),
        // Tasks are bounded by CPUs; the extra room is for actors, which keep
        // their worker for life, and for workers blocked in a nested get.
        maxWorkers: Math.max(4, Math.ceil(numCpus) * 2) + 32,
        // Workers get the driver's loader flags (tsx: `.ts` modules import there too).
        workerArgv: [process.execPath, ...loaderArgs(process.execArgv, process.cwd()), process.env.RAYTS_WORKER_MAIN ?? workerMainPath()],
        workerEnv,
        workingDir: o.runtimeEnv?.workingDir ?? process.cwd(),
        // Spilled objects go to a fresh spill_XXXXXX directory under this one,
        // removed at shutdown (the default lives in sessionDir anyway).
        spillDir: o.objectSpillingDirectory !== undefined ? path.resolve(o.objectSpillingDirectory) : sessionDir,
        spillMaxBytes: o.objectSpillingMaxBytes ?? -1,
        logToDriver: o.logToDriver ?? true,
        ...workerLogOptions(),
        ...memoryMonitorOptions(o.memoryUsageThreshold),
      });
    } catch (e) {
      // e.g. the spill directory cannot be created: leave nothing behind.
      rmSync(sessionDir, { recursive: true, force: true });
      throw e;
    }
    let rt: Runtime;
    try {
      rt = new Runtime({
        nodeSocket: socketPath, listenPath: path.join(sessionDir, 'sockets', 'driver.sock'), isDriver: true, namespace: o.namespace ?? '',
        ...(o.lineageMaxBytes !== undefined ? { lineageMaxBytes: o.lineageMaxBytes } : {}),
      });
    } catch (e) {
      node.stop();
      throw e;
    }
    rt.node = node;
    if (o.objectSpillingDirectory !== undefined) {
      const spillDir = (JSON.parse(node.storeObjects()) as { spillDir?: string }).spillDir ?? '';
      recordSpillDir(sessionDir, spillDir);
    }
    setCurrentRuntime(rt);
    cleanupOnExit(rt, sessionDir);
    if (o.handleSignals === true) installSignalHandlers(rt);
  })();
  try {
    await initPromise;
  } finally {
    initPromise = undefined;
  }
}

const sessions = new Map<Runtime, string | undefined>();
/** Drivers attached to a running cluster: what each leaves behind in its node's session directory. */
const attachedDrivers = new Map<Runtime, () => void>();
let exitHookInstalled = false;

function cleanupOnExit(rt: Runtime, sessionDir: string | undefined): void {
  sessions.set(rt, sessionDir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [r, dir] of sessions) {
      try {
        r.shutdown();
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
        attachedDrivers.get(r)?.();
      } catch {
        // best effort at exit
      }
    }
  });
}

/** init({ handleSignals: true }): SIGINT/SIGTERM shut down, then the signal takes its course. */
let signalHandlers: { rt: Runtime; remove: () => void } | undefined;

function installSignalHandlers(rt: Runtime): void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const onSignal = (sig: NodeJS.Signals): void => {
    remove();
    void shutdown().finally(() => {
      // Nobody else listens: end the process by the signal, as it would
      // have without rayts. Otherwise the other listeners decide.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  };
  const remove = (): void => {
    for (const s of signals) process.removeListener(s, onSignal);
    if (signalHandlers?.rt === rt) signalHandlers = undefined;
  };
  for (const s of signals) process.on(s, onSignal);
  signalHandlers = { rt, remove };
}

/** Disconnects and stops the embedded cluster (a running cluster it attached to keeps running). Idempotent. */
export async function shutdown(): Promise<void> {
  const rt = currentRuntime();
  if (!rt || !rt.isDriver) return;
  setCurrentRuntime(undefined);
  if (signalHandlers?.rt === rt) signalHandlers.remove();
  // Zero-copy views over the store: values of the current job stay reachable
  // until it ends, so let it end before the sweep in rt.shutdown() looks for
  // garbage views (each one left keeps a private copy of its object).
  if (rt.localRefs.heldViews > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  rt.shutdown();
  const dir = sessions.get(rt);
  sessions.delete(rt);
  if (dir) rmSync(dir, { recursive: true, force: true });
  // Attached to a running cluster: only this driver's socket goes; the cluster stays.
  attachedDrivers.get(rt)?.();
  attachedDrivers.delete(rt);
}

export function isInitialized(): boolean {
  const rt = currentRuntime();
  return rt !== undefined && !rt.closed;
}

type AnyFn = (...args: never[]) => unknown;

/** Makes a remote function or an actor class: `ray.remote(fn | class)`, `ray.remote(options, fn | class)`. */
export function remote<A extends unknown[], I extends object>(cls: new (...args: A) => I): ActorClass<I, A>;
export function remote<A extends unknown[], I extends object>(options: ActorOptions, cls: new (...args: A) => I): ActorClass<I, A>;
export function remote<A extends unknown[], R>(fn: (...args: A) => R): RemoteFunction<A, R>;
export function remote<A extends unknown[], R>(options: TaskOptions & { numReturns: 'streaming' }, fn: (...args: A) => R): StreamingRemoteFunction<A, R>;
export function remote<A extends unknown[], R>(options: TaskOptions & { numReturns: 0 }, fn: (...args: A) => R): NoReturnRemoteFunction<A, R>;
export function remote<A extends unknown[], R>(options: TaskOptions & { numReturns: number }, fn: (...args: A) => R): MultiReturnRemoteFunction<A, R>;
export function remote<A extends unknown[], R>(options: TaskOptions, fn: (...args: A) => R): RemoteFunction<A, R>;
export function remote(a: unknown, b?: unknown): unknown {
  const fn: unknown = b !== undefined ? b : a;
  if (typeof fn !== 'function') {
    throw new TypeError(`ray.remote expects a function or a class${b !== undefined ? ' as its second argument' : ''}, got ${fn === null ? 'null' : typeof fn}`);
  }
  if (/^class[\s{]/.test(Function.prototype.toString.call(fn))) {
    const opts = b !== undefined ? validateActorOptions(a, 'ray.remote') : {};
    return new ActorClass(fn, opts);
  }
  const opts: TaskOptions = b !== undefined ? validateTaskOptions(a, 'ray.remote') : {};
  return remoteFromFunction(fn as AnyFn as (...args: unknown[]) => unknown, opts);
}

/**
 * A handle to the live actor registered under `name` (in the namespace given,
 * or the job's). `getActor<C>(name)` types it as `ActorHandle<C>`; without a
 * type parameter every method is callable, loosely typed (UntypedActorHandle).
 */
export async function getActor(name: string, options?: { namespace?: string }): Promise<UntypedActorHandle>;
export async function getActor<C>(name: string, options?: { namespace?: string }): Promise<ActorHandle<C>>;
export async function getActor<C>(name: string, options?: { namespace?: string }): Promise<ActorHandle<C> | UntypedActorHandle> {
  if (typeof name !== 'string' || name === '') throw new TypeError('ray.getActor expects a non-empty actor name');
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('ray.getActor options must be an object');
  for (const k of Object.keys(options ?? {})) {
    if (k !== 'namespace') throw new TypeError(`unknown option '${k}' for ray.getActor (known: namespace)`);
  }
  const ns = options?.namespace;
  if (ns !== undefined && typeof ns !== 'string') throw new TypeError('namespace must be a string');
  const rt = requireRuntime('ray.getActor()');
  return getActorHandle<C>(rt, name, ns ?? rt.namespace);
}

/** Ends an actor: its process exits and its calls fail with ActorDiedError. */
export function kill(handle: AnyActorHandle, options?: { noRestart?: boolean }): void {
  if (options !== undefined) {
    if (typeof options !== 'object' || options === null) throw new TypeError('ray.kill options must be an object');
    for (const k of Object.keys(options)) {
      if (k !== 'noRestart') throw new TypeError(`unknown option '${k}' for ray.kill (known: noRestart)`);
    }
    if (options.noRestart !== undefined && typeof options.noRestart !== 'boolean') {
      throw new TypeError(`noRestart must be a boolean, got ${typeof options.noRestart}`);
    }
  }
  killActor(handle, options?.noRestart ?? true);
}

/** Module mode: exported functions of `url` become remote functions. */
/** The remote face of a module's exports: functions -> RemoteFunction, classes -> ActorClass. */
export type RemoteModule<M> = {
  [K in keyof M]: M[K] extends new (...args: infer A) => infer I
    ? ActorClass<I, A>
    : M[K] extends (...args: infer A) => infer R ? RemoteFunction<A, R> : never;
};

export function importModule<M extends object>(url: URL | string): RemoteModule<M> {
  const href = typeof url === 'string' ? (url.startsWith('file:') ? url : new URL(url, `file://${process.cwd()}/`).href) : url.href;
  if (!href.startsWith('file:')) throw new TypeError(`ray.importModule expects a file: URL or path, got '${href}'`);
  if (isTypeScriptFile(href) && !typeScriptLoaderActive()) {
    throw new TypeError(`ray.importModule: ${href} is a TypeScript module, and this driver runs without a TypeScript loader ` +
      '(workers load the module with the loader of the driver): run the driver with tsx (tsx driver.ts, or node --import tsx driver.ts)');
  }
  // Exported classes become actor classes: found by reading the module's
  // source (the driver does not import it; workers do).
  const classes = exportedClasses(href);
  const cache = new Map<string, unknown>();
  return new Proxy({}, {
    get(_t, prop) {
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      let rf = cache.get(prop);
      if (!rf) {
        const methods = classes.get(prop);
        rf = methods !== undefined
          ? ActorClass.fromModule(href, prop, methods, {})
          : makeRemote({ hash: `${href}#${prop}`, name: prop, moduleUrl: href, exportName: prop }, {});
        cache.set(prop, rf);
      }
      return rf;
    },
  }) as RemoteModule<M>;
}

/** Stores a value in the object store; returns its ref at once. */
export function put<T>(value: T): ObjectRef<T> {
  return requireRuntime('ray.put()').put(value);
}

/** Values of refs: one ref, or an array of refs (in order). */
export function get<T>(ref: ObjectRef<T>, options?: { timeoutMs?: number }): Promise<T>;
export function get<T extends readonly ObjectRef<unknown>[]>(refs: T, options?: { timeoutMs?: number }): Promise<{ [K in keyof T]: T[K] extends ObjectRef<infer V> ? V : never }>;
export function get<T>(refs: ObjectRef<T>[], options?: { timeoutMs?: number }): Promise<T[]>;
export async function get(refs: unknown, options?: { timeoutMs?: number }): Promise<unknown> {
  const o = validateGetOptions(options ?? {});
  const rt = requireRuntime('ray.get()');
  if (Array.isArray(refs)) {
    refs.forEach((r, i) => {
      if (!(r instanceof ObjectRef)) throw new TypeError(`ray.get: element ${i} is not an ObjectRef`);
    });
    return rt.get(refs as ObjectRef<unknown>[], o.timeoutMs);
  }
  if (!(refs instanceof ObjectRef)) throw new TypeError(`ray.get expects an ObjectRef or an array of ObjectRefs, got ${refs === null ? 'null' : typeof refs}`);
  return rt.get(refs, o.timeoutMs);
}

let waitCalls = 0;

/**
 * Waits until `numReturns` of `refs` are ready: [ready, notReady], input order kept.
 * `fetchLocal` (default true, as Ray): an object counts as ready once its value is
 * on this node (a value on another node is pulled here); false: once it exists anywhere.
 */
export async function wait<T>(refs: ObjectRef<T>[], options?: { numReturns?: number; timeoutMs?: number; fetchLocal?: boolean }): Promise<[ObjectRef<T>[], ObjectRef<T>[]]> {
  if (!Array.isArray(refs)) throw new TypeError('ray.wait expects an array of ObjectRefs');
  // Duplicates (the same handle twice) by a mark per call: no Set of every ref.
  const mark = ++waitCalls;
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i];
    if (!(r instanceof ObjectRef)) throw new TypeError(`ray.wait: element ${i} is not an ObjectRef`);
    if (r.waitMark === mark) throw new TypeError(`ray.wait: refs must not contain duplicates (element ${i} repeats ${r.id})`);
    r.waitMark = mark;
  }
  const o = validateWaitOptions(options ?? {}, refs.length);
  const rt = requireRuntime('ray.wait()');
  // Nothing to wait for: settled at once, as Ray's ray.wait([]) returns ([], []).
  if (refs.length === 0) return [[], []];
  return rt.wait(refs as ObjectRef<unknown>[], o.numReturns ?? 1, o.timeoutMs, o.fetchLocal ?? true) as Promise<[ObjectRef<T>[], ObjectRef<T>[]]>;
}

const taskOf = new WeakMap<object, Uint8Array>();
/** @internal Remembers which task produced a ref (for ray.cancel). */
export function recordTaskOf(ref: object, taskId: Uint8Array): void {
  taskOf.set(ref, taskId);
}

/** Cancels the task that produces `ref` (or a streaming generator). */
export function cancel(ref: ObjectRef<unknown> | ObjectRefGenerator<unknown>, options?: { force?: boolean; recursive?: boolean }): void {
  const o = validateCancelOptions(options ?? {});
  const rt = requireRuntime('ray.cancel()');
  let taskId: Uint8Array;
  let owner = '';
  if (ref instanceof ObjectRefGenerator) taskId = ref.taskBinary;
  else if (ref instanceof ObjectRef) {
    taskId = ref.binary.subarray(0, 16);
    owner = ref.ownerAddress; // a ref passed in: its owner cancels
  } else throw new TypeError('ray.cancel expects an ObjectRef or an ObjectRefGenerator');
  rt.cancel(taskId, o.force ?? false, o.recursive ?? true, owner);
}

export interface RuntimeContext {
  jobId: string;
  nodeId: string;
  workerId: string;
  taskId?: string;
  actorId?: string;
  namespace: string;
  /**
   * Inside a task or actor call: aborted when ray.cancel() cancels it (the
   * reason is a TaskCancelledError). A task that stops early on it, or keeps
   * running, ends the same way for the caller: get rejects with
   * TaskCancelledError. Absent outside a task.
   */
  signal?: AbortSignal;
  /**
   * Inside an actor: a handle to the actor itself (Ray's `current_actor`),
   * callable and passable like any other; made on first read. Type it with
   * `as ray.ActorHandle<C>`. A call through it from one of the actor's own
   * methods waits behind that method (maxConcurrency 1), as in Ray.
   */
  currentActor?: UntypedActorHandle;
  /** Inside an actor: true once the actor was restarted (its constructor ran again after a failure). */
  wasCurrentActorReconstructed?: boolean;
}

export function getRuntimeContext(): RuntimeContext {
  const rt = requireRuntime('ray.getRuntimeContext()');
  const ctx: RuntimeContext = {
    jobId: rt.jobId.toString(16).padStart(8, '0'),
    nodeId: rt.nodeId,
    workerId: rt.workerId,
    namespace: rt.namespace,
  };
  // Inside an actor's constructor and methods (Ray: get_actor_id()).
  if (rt.actorId !== undefined) {
    ctx.actorId = rt.actorId;
    ctx.wasCurrentActorReconstructed = rt.actorRestarted;
    // Non-enumerable and made on first read: a handle borrows the actor's token.
    let self: UntypedActorHandle | undefined;
    Object.defineProperty(ctx, 'currentActor', {
      get: () => (self ??= currentActorHandle(rt) as UntypedActorHandle | undefined),
      enumerable: false, configurable: true,
    });
  }
  const task = rt.taskContext();
  if (task !== undefined) {
    ctx.taskId = toHex(task.taskId);
    // Non-enumerable and made on first read: the context stays a plain,
    // serializable record, and tasks that never look pay nothing.
    Object.defineProperty(ctx, 'signal', { get: () => taskSignal(task), enumerable: false, configurable: true });
  }
  return ctx;
}

export interface NodeInfo {
  nodeId: string;
  alive: boolean;
  /** The node server's socket on its machine. */
  address: string;
  /** Totals of the node. */
  resources: Record<string, number>;
  /** What the node reported free in its latest resource report. */
  available: Record<string, number>;
  startTimeMs: number;
  /** Cluster nodes: the head hosts the GCS. An embedded node: false, with empty nodeIp/hostname and pid 0. */
  isHead: boolean;
  nodeIp: string;
  hostname: string;
  pid: number;
  sessionDir: string;
  /** Dead nodes: why (health checks failed, stopped) and when (ms since the epoch; 0 while alive). */
  deathReason: string;
  endTimeMs: number;
  /** Lease requests queued on the node, by resource shape (its latest report). */
  pendingDemand: Array<{ shape: Record<string, number>; count: number }>;
  /** Requests it refused in the last minute because no node could ever run them, by shape. */
  infeasibleDemand: Array<{ shape: Record<string, number>; count: number }>;
  /** Cluster nodes: the node server's TCP address (ip:port), where owners of other nodes lease its workers; '' embedded. */
  nodeManagerAddress: string;
}

export async function nodes(): Promise<NodeInfo[]> {
  return JSON.parse(await requireRuntime('ray.nodes()').query('Nodes')) as NodeInfo[];
}

export async function clusterResources(): Promise<Record<string, number>> {
  return JSON.parse(await requireRuntime('ray.clusterResources()').query('ClusterResources')) as Record<string, number>;
}

export async function availableResources(): Promise<Record<string, number>> {
  return JSON.parse(await requireRuntime('ray.availableResources()').query('AvailableResources')) as Record<string, number>;
}

/** Where one object of the node's object store is, as listed by storeStats(). */
export interface StoreObjectInfo {
  /** Object id, 40 hex digits (ObjectRef.id). */
  id: string;
  /** Bytes as created (the serialized layout). */
  size: number;
  /** False while its creator is still writing it. */
  sealed: boolean;
  /** 'memory': only in shared memory; 'spilled': only on disk; 'both': restored, disk copy kept. */
  location: 'memory' | 'spilled' | 'both';
  /** True until its owner frees it (pinned as the primary copy). */
  pinned: boolean;
  /** Plasma refs held by processes (mapped for read, or being written). */
  refs: number;
}

/** The node's object store: totals and every object with its location. */
export interface StoreStats {
  storeCapacity: number;
  /** Shared-memory bytes reserved (64-byte units). */
  storeUsed: number;
  /** Of storeUsed: primary copies pinned by their owners and not on disk. */
  storePinned: number;
  /** The spill directory ('' when spilling is off). */
  spillDir: string;
  /** Bytes of spilled copies on disk now, and the limit. */
  spillUsed: number;
  spillLimit: number;
  /** Objects with a copy on disk now. */
  spilledObjects: number;
  /** Objects written to disk / read back since start (cumulative). */
  spillCount: number;
  restoreCount: number;
  objects: StoreObjectInfo[];
}

/** The node's object store contents and spill totals (one round trip to the node server). */
export async function storeStats(): Promise<StoreStats> {
  return JSON.parse(await requireRuntime('ray.storeStats()').query('StoreObjects')) as StoreStats;
}

/** @internal Store and runtime statistics for tests and the CLI. */
export async function debugStats(): Promise<{ node: Record<string, number>; core: Record<string, number> }> {
  const rt = requireRuntime('debugStats()');
  return { node: JSON.parse(await rt.query('NodeStats')) as Record<string, number>, core: rt.core.stats() };
}
