// The native addon (bindings/): loading it and its typed surface.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { distDir } from '../here.js';
import * as errors from '../api/errors.js';
import { addonCandidates, buildFromSourceCommand, noAddonMessage, type AddonCandidate, type PlatformInfo, type TriedAddon } from './addon_locator.js';

export type NativeArg = Uint8Array | [Uint8Array, string];
export type NativeReturn = [Uint8Array | null, boolean, boolean, number];

export interface NativeEvent {
  t: number;
  /** Local events: the object's key (latin1 of its id, as Ready events). */
  key?: string;
  id?: Uint8Array | number;
  handle?: number;
  taskId?: Uint8Array;
  fnHash?: string;
  fnSource?: string;
  moduleUrl?: string;
  exportName?: string;
  name?: string;
  numReturns?: number;
  args?: Array<Uint8Array | [Uint8Array, string, boolean]>;
  index?: number;
  count?: number;
  code?: number;
  text?: string;
  force?: boolean;
  actorId?: Uint8Array;
  actorCreation?: boolean;
  method?: string;
  maxConcurrency?: number;
  concurrencyGroups?: string;
  releaseCpu?: boolean;
  /** Tasks: '*' (any error) or error names separated by '\n'; absent: none. */
  retryExceptions?: string;
  /** Absent on a first run; an actor creation: how often the actor was restarted. */
  attempt?: number;
  /** Streaming, a retry: items the owner already has (not reported again). */
  skipItems?: number;
}

// Enums defined in core/ and exported by the addon with their numbers
// (addon.EventType, addon.StatusCode, addon.ErrorKind, addon.ClusterQuery). The names are
// listed here only to type them; test/unit/native_enums.test.ts checks that
// each list is exactly the addon's.
/** core_worker.h Event::Type */
export const EVENT_TYPE_NAMES = ['Ready', 'Execute', 'GenItem', 'GenEnd', 'Gcs', 'Cancel', 'TriggerGc', 'RecoverObject', 'Local'] as const;
export type EventTypeName = (typeof EVENT_TYPE_NAMES)[number];
/** status.h StatusCodeName: what an addon error's `.code` holds. */
export const STATUS_CODE_NAMES = ['OK', 'InvalidArgument', 'NotFound', 'AlreadyExists', 'ObjectStoreFull', 'IOError',
  'TimedOut', 'Infeasible', 'Disconnected', 'Cancelled', 'Invalid', 'ObjectLost', 'WorkerDied', 'Internal',
  'Unavailable', 'ObjectExists', 'ObjectBeingCreated', 'Unauthenticated'] as const;
export type StatusCodeName = (typeof STATUS_CODE_NAMES)[number];
/** error_record.h ErrorKind: the `kind` of an error record (ts/api/errors.ts). */
export const ERROR_KIND_NAMES = ['task', 'worker_crashed', 'actor_died', 'object_lost', 'owner_died', 'cancelled',
  'store_full', 'oom', 'system'] as const;
export type ErrorKindName = (typeof ERROR_KIND_NAMES)[number];
/** gcs_client.h ClusterQuery */
export const CLUSTER_QUERY_NAMES = ['Nodes', 'ClusterResources', 'AvailableResources', 'Jobs', 'NodeStats', 'StoreObjects'] as const;

export interface NativeCoreWorker {
  info(): { workerId: string; nodeId: string; jobId: number; address: string; sessionDir: string; storeSize: number };
  storeBuffer(): ArrayBuffer;
  /**
   * Writes the new id to the id arena at idOffset (given one, and room), else
   * to the scratch buffer (setScratch) when one is set; else returns it.
   */
  putInline(data: Uint8Array, idOffset?: number): Uint8Array | undefined;
  /** kind 0 (default): the scratch buffer; 1: the id arena; 2: the value arena. */
  setScratch(buf: Uint8Array, kind?: 0 | 1 | 2): void;
  nextPutId(): Uint8Array;
  /** spill = false: ObjectStoreFullError rather than spill to disk. Default true. */
  /** sources: large views to be copied in (the addon advises huge pages for reading them). */
  plasmaCreate(id: Uint8Array, size: number, spill?: boolean, sources?: ArrayBufferView[]): number;
  plasmaSeal(id: Uint8Array, ownedPut: boolean): void;
  /** `priority`: a pull's admission order on this node (0 get, default; 1 wait; 2 task argument). */
  plasmaGet(id: Uint8Array, priority?: number): [number, number];
  plasmaRelease(id: Uint8Array): void;
  /** With valueOffset: a ready inline value is copied into the value arena there and its size returned. */
  tryGet(id: Uint8Array, valueOffset?: number): null | false | true | number | Uint8Array | { error: string };
  subscribe(id: Uint8Array, owner: string): void;
  addLocalRef(id: Uint8Array, owner: string): void;
  addLocalRefs(ids: Uint8Array, ownerIndex: Uint32Array, owners: string[]): void;
  /** 1 per id that is ready here (value, error, or in plasma on this node), 2 ready in plasma on another node; 0 otherwise. */
  readyMask(concatenatedIds: Uint8Array): Uint8Array;
  /** ray.wait fetchLocal: a Local event (key: the id's key) per id once its value is on this node. */
  fetchLocal(concatenatedIds: Uint8Array): void;
  trackWeak(obj: object): number;
  untrackWeak(token: number): void;
  /** Tokens of tracked objects collected by now (each reported once). */
  sweepWeak(): number[];
  removeLocalRefs(ids: Uint8Array[]): void;
  /** addLocalRefs with no string per ref (bindings/core_worker_refs.cc). */
  addLocalRefsPacked(ids: Uint8Array, ownerIndex: Uint32Array, owners: string[]): void;
  /** One local ref less for each of the concatenated 20-byte ids. */
  removeLocalRefsPacked(ids: Uint8Array): void;
  registerTaskClass(hash: string, source: string | undefined, moduleUrl: string | undefined, exportName: string | undefined,
    name: string, resources: Array<string | number>, retryExceptions?: string, scheduling?: string): number;
  /** Task id + return ids: in the scratch buffer when they fit (returns undefined), else a new buffer. */
  /** parent: the task running here that submits it (recursive ray.cancel). */
  submitTask(classId: number, args: NativeArg[], numReturns: number, maxRetries: number, parent?: Uint8Array): Uint8Array | undefined;
  /** Throws TypeError for force on an actor task. */
  /** `owner`: the task's owner when it is another process (a ref passed in). */
  cancelTask(taskId: Uint8Array, force: boolean, recursive: boolean, owner?: string): void;
  /** Actor id (16 bytes) + constructor-call result id (20), in the scratch buffer or returned. */
  createActor(classId: number, args: NativeArg[], maxConcurrency: number, actorId?: Uint8Array, maxRestarts?: number,
    maxTaskRetries?: number, concurrencyGroups?: string, detached?: boolean, releaseCpu?: boolean): Uint8Array | undefined;
  // Typed GCS calls answered synchronously (a blocking round trip); they
  // throw an Error whose .code names the status (AlreadyExists, NotFound).
  /** null: registered as asked; else [id, info] of the live actor that has the name (getIfExists). */
  gcsRegisterActor(actorId: Uint8Array, name: string, namespace: string, className: string, detached: boolean,
    getIfExists: boolean, maxRestarts: number, info: string): [Uint8Array, string] | null;
  /** [actorId, info] of the live actor of that name. */
  gcsGetNamedActor(namespace: string, name: string): [Uint8Array, string];
  /** Kills an actor this process does not own. */
  gcsKillActor(actorId: Uint8Array, cause: string): void;
  /** The owner records the actor's death now. */
  gcsReportActorDead(actorId: Uint8Array, cause: string): void;
  /** concurrencyGroup: the named group the call runs in ('' = its method's); name: the call's name ('' = the class's). */
  submitActorTask(classId: number, actorId: Uint8Array, method: string, args: NativeArg[], numReturns: number, maxPending?: number,
    maxTaskRetries?: number, concurrencyGroup?: string, name?: string): Uint8Array | undefined;
  killActor(actorId: Uint8Array, cause?: string, noRestart?: boolean, whenIdle?: boolean): void;
  /** Ends the actor once idle when `token` (held by all its handles) is released everywhere. */
  setActorToken(actorId: Uint8Array, token: Uint8Array): void;
  /** A handle to a non-detached actor owned by the process at `ownerAddress` is held here (fate sharing on ray.kill of that owner). */
  setActorOwner(actorId: Uint8Array, ownerAddress: string): void;
  /** The process exits on its own with this code: tell the processes pushing to it. */
  reportExit(code: number): void;
  /**
   * retryable: the task threw an error its retryExceptions allows to retry.
   * actorExited: the method called ray.exitActor(); this process ends next.
   */
  /** `returns`: one entry per return value, or just the bytes of the one inline value (the common case). */
  taskDone(handle: number, returns: NativeReturn[] | Uint8Array, retryable?: boolean, actorExited?: boolean): void;
  reportGeneratorItem(handle: number, index: number, data: Uint8Array | null, inPlasma: boolean, isError: boolean, size: number): void;
  setBlocked(blocked: boolean): void;
  /** A cluster query (see ClusterQuery); answered by a Gcs event with its JSON. */
  query(kind: number): number;
  /** Ready events arrive as the bare object id; others as NativeEvent. */
  /** Ready objects come as bare keys (the id's bytes as a latin1 string, see keyOf). */
  drainEvents(): Array<NativeEvent | string>;
  stats(): Record<string, number>;
  setRef(ref: boolean): void;
  adjustExternalMemory(delta: number): number;
  /** Writes the frames queued by this turn's calls (see kick). */
  flush(): void;
  shutdown(): void;
  /** Refs inside the value stored next (put, submit, or task returns by slot). */
  stageNested(ids: Uint8Array, ownerIndex: Uint32Array, owners: string[], slots?: Uint32Array): void;
  /** Owner: recover an object whose plasma copy is lost; throws ObjectLostError if not recomputable. */
  reconstruct(id: Uint8Array): void;
  /** Borrower: the plasma copy is lost; ask the owner to recover it. */
  reportLost(id: Uint8Array, owner: string): void;
  /** Test hook: the node's store loses its copy of `id` now (only in addons built with RAYTS_TEST_HOOKS). */
  loseFromStore?(id: Uint8Array): void;
  /** JSON: this process's objects (see ts/runtime/ownership.ts CoreMemorySummary). */
  memorySummary(): string;
}

export interface NativeNodeServerOptions {
  socketPath: string;
  sessionDir: string;
  storeBytes: number;
  resources: Record<string, number>;
  prestart: number;
  maxWorkers: number;
  workerArgv: string[];
  workerEnv: string[];
  workingDir: string;
  /** Memory monitor: kill a worker past this fraction of node memory (0, 1]. */
  memoryUsageThreshold?: number;
  /** Memory monitor sampling period; 0 disables it. */
  memoryMonitorPeriodMs?: number;
  /** Parent of the spill directory; omitted: sessionDir. */
  spillDir?: string;
  /** Spill disk limit in bytes; -1: free space minus a margin; 0: no spilling. */
  spillMaxBytes?: number;
  /** Print worker output in this process, prefixed (default true); it goes to logs/ either way. */
  logToDriver?: boolean;
  /** Size of one worker log file before it is rotated to .1 (default 16 MiB). */
  workerLogMaxBytes?: number;
  /** Cluster mode (a daemon node): the GCS's host:port, reached over TCP with authToken. */
  gcsAddress?: string;
  authToken?: string;
  /** The IP other nodes reach this node at. */
  nodeIp?: string;
  isHead?: boolean;
  /** Resource report (heartbeat) period to the GCS (default 100). */
  gcsReportPeriodMs?: number;
  /** How long the node tries to reconnect to a lost GCS before it stops (default 60000). */
  gcsReconnectTimeoutMs?: number;
  /** Idle workers above `prestart` end after this long (default 1000; < 0: never). */
  idleWorkerTimeoutMs?: number;
}

export interface NativeGcsServerOptions {
  host: string;
  /** 0: any free port (read it back from .port). */
  port: number;
  authToken: string;
  clusterId?: string;
  healthCheckInitialDelayMs?: number;
  healthCheckPeriodMs?: number;
  healthCheckTimeoutMs?: number;
  healthCheckFailureThreshold?: number;
  handshakeTimeoutMs?: number;
  maxConnectionsPerPeer?: number;
}

export interface NativeGcsServer {
  stop(): void;
  readonly port: number;
  /** Connections closed for a refused token, a wrong first frame or garbage. */
  readonly refused: number;
}

export interface NativeNodeServer {
  stop(): void;
  stats(): string;
  /** JSON of StoreStats (see ts/api/api.ts). */
  storeObjects(): string;
  /** '' while the node runs; else why it stopped serving (cluster mode: the GCS refused it or stayed away). */
  fatal(): string;
  readonly nodeId: string;
}

/** The cluster queries, numbered by the addon (core/gcs/gcs_client.h ClusterQuery). */
export type ClusterQueryName = (typeof CLUSTER_QUERY_NAMES)[number];

interface Addon {
  setErrorClasses(classes: Record<string, unknown>): void;
  readonly ClusterQuery: Readonly<Record<ClusterQueryName, number>>;
  readonly EventType: Readonly<Record<EventTypeName, number>>;
  readonly StatusCode: Readonly<Record<StatusCodeName, number>>;
  readonly ErrorKind: Readonly<Record<ErrorKindName, number>>;
  NativeCoreWorker: new (opts: { nodeSocket: string; listenPath: string; isDriver: boolean; jobId?: number; workerId?: string; lineageMaxBytes?: number;
    nodeIp?: string },
    onEvents: () => void, kick: () => void) => NativeCoreWorker;
  NativeNodeServer: new (opts: NativeNodeServerOptions) => NativeNodeServer;
  NativeGcsServer: new (opts: NativeGcsServerOptions) => NativeGcsServer;
  /** JSON replies of `queries` (ClusterQuery numbers) from the GCS at address, over TCP; rejects with .code 'Unauthenticated' for a refused token. */
  queryCluster(address: string, token: string, queries: number[], timeoutMs: number): Promise<string[]>;
  /** Memory summary JSON of the process listening on socketPath (blocking; CLI use). */
  queryMemorySummary(socketPath: string): string;
  /** The node server's store listing (JSON of StoreStats), over its socket. */
  queryStoreObjects(nodeSocket: string): string;
  /**
   * Every process of the cluster node whose node server listens at nodeAddress (ip:port), over TCP with the token
   * (blocking, at most timeoutMs per connection; CLI use): JSON {store, processes: [summary JSON], unreachable: [{address, error}]}.
   */
  queryNodeMemory(nodeAddress: string, token: string, timeoutMs: number): string;
}

// The build writes here.js at dist/esm/here.js and dist/cjs/here.js: two
// levels below the package root for both formats.
export const packageRoot: string = path.resolve(distDir, '..', '..');

let addon: Addon | undefined;

/** The platform facts of this process; the glibc version (from the process report, ~8 ms) only when asked. */
export function thisPlatform(withGlibc: boolean): PlatformInfo {
  if (!withGlibc) return { platform: process.platform, arch: process.arch, glibc: undefined };
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return { platform: process.platform, arch: process.arch, glibc: header?.glibcVersionRuntime };
}

/**
 * Loads the addon: the build from source (build/Release) when there is one,
 * else the prebuilt addon of this platform (prebuilds/<platform>-<arch>).
 * None: an error naming each place tried, why it did not load (a glibc
 * older than the prebuilt addon needs, a C library that is not glibc) and
 * the command that builds one.
 */
export function loadAddon(): Addon {
  if (addon) return addon;
  const req = createRequire(path.join(packageRoot, 'package.json'));
  const tried: TriedAddon[] = [];
  // RAYTS_ADDON_PATH: this addon file and no other (a sanitizer build under
  // test, scripts/test-asan-api.sh); workers inherit it with the environment.
  const forced = process.env.RAYTS_ADDON_PATH;
  const candidates: AddonCandidate[] = forced !== undefined && forced !== ''
    ? [{ file: path.resolve(forced), kind: 'source build' }]
    : addonCandidates(packageRoot, thisPlatform(false));
  for (const c of candidates) {
    if (c.unfit !== undefined) {
      tried.push({ candidate: c, reason: c.unfit });
      continue;
    }
    if (!existsSync(c.file)) {
      tried.push({ candidate: c, reason: `missing (${c.kind})` });
      continue;
    }
    try {
      addon = req(c.file) as Addon;
    } catch (e) {
      tried.push({ candidate: c, reason: `failed to load (${c.kind}): ${e instanceof Error ? e.message : String(e)}` });
      continue;
    }
    addon.setErrorClasses({ ...errors });
    return addon;
  }
  const isCheckout = existsSync(path.join(packageRoot, 'ts', 'index.ts'));
  throw new Error(noAddonMessage(thisPlatform(true), tried, buildFromSourceCommand(packageRoot, isCheckout)));
}

/** The event numbering of the addon. */
export function eventTypes(): Readonly<Record<EventTypeName, number>> {
  return loadAddon().EventType;
}

/** True if `e` is an error the addon threw with this status code. */
export function hasStatusCode(e: unknown, code: StatusCodeName): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/** The addon's number for a cluster query. */
export function clusterQuery(kind: ClusterQueryName): number {
  const n = loadAddon().ClusterQuery[kind];
  if (n === undefined) throw new TypeError(`unknown cluster query '${kind}'`);
  return n;
}

export function workerMainPath(): string {
  return path.join(packageRoot, 'dist', 'esm', 'worker', 'worker_main.js');
}
