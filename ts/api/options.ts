// Option validation for the public API.
//
// Options are checked where they are given (ray.remote, .options(),
// ray.init, ray.get, ray.wait, ray.cancel), so a typo fails at the call site
// instead of inside the runtime. Rules:
// - an unknown option name is a TypeError listing the known names (with a
//   "did you mean" for a likely typo);
// - a value of the wrong type is a TypeError naming the option;
// - a value out of range is a RangeError naming the option and the value.
// An option explicitly set to undefined counts as not given. Validators
// return a fresh object holding only the options that were given.

import { validateSchedulingStrategy, type SchedulingStrategy } from './scheduling.js';

/** Options of a remote function (ray.remote(opts, fn), fn.options(opts)). */
export interface TaskOptions {
  /** CPUs reserved while the task runs (fractions allowed). Default 1. */
  numCpus?: number;
  numGpus?: number;
  /** Custom resources, e.g. { disk: 1 }. Use numCpus/numGpus for CPU and GPU. */
  resources?: Record<string, number>;
  /** Retries when the worker dies; -1 retries forever. */
  maxRetries?: number;
  /** Also retry when the task throws: true for any error, or a list of error names. */
  retryExceptions?: boolean | string[];
  /**
   * Number of result refs (0: run for its side effects, `.remote()` returns
   * nothing and a thrown error is logged), or 'streaming' for a generator task.
   */
  numReturns?: number | 'streaming';
  /** Name shown in errors, logs and the dashboard. */
  name?: string;
  /** Where the task may run in a cluster: 'DEFAULT', 'SPREAD' or { nodeId, soft } (see scheduling.ts). */
  schedulingStrategy?: SchedulingStrategy;
}

/** Options of an actor class (ray.remote(opts, Class), Class.options(opts)). */
export interface ActorOptions {
  numCpus?: number;
  numGpus?: number;
  resources?: Record<string, number>;
  name?: string;
  namespace?: string;
  lifetime?: 'detached' | 'non_detached';
  /** Restarts after the actor process dies; -1 restarts forever. */
  maxRestarts?: number;
  /** Retries of a method call interrupted by an actor death; -1 retries forever. */
  maxTaskRetries?: number;
  /** Method calls the actor may run at once. */
  maxConcurrency?: number;
  /** Calls a caller may have queued or running on this actor before .remote() throws; -1: no limit. */
  maxPendingCalls?: number;
  /** Named groups of methods, each running up to its own maxConcurrency calls at once. */
  concurrencyGroups?: Record<string, { maxConcurrency: number; methods: string[] }>;
  /** With a name: return the existing actor of that name instead of failing. */
  getIfExists?: boolean;
  /** Where the actor may be placed in a cluster: 'DEFAULT', 'SPREAD' or { nodeId, soft }. */
  schedulingStrategy?: SchedulingStrategy;
}

export interface RuntimeEnv {
  envVars?: Record<string, string>;
  workingDir?: string;
}

export interface InitOptions {
  /**
   * 'host:port' of a running cluster, or 'auto'; omitted: start an embedded local cluster. The driver attaches
   * through a node of its machine (the head first; the environment variable RAYTS_NODE_ID names another).
   */
  address?: string;
  numCpus?: number;
  numGpus?: number;
  resources?: Record<string, number>;
  /** Shared-memory object store size in bytes (>= 1 MiB). */
  objectStoreMemory?: number;
  /**
   * Where objects are spilled when the store is full: a fresh `spill_XXXXXX`
   * directory is made under this one and removed at shutdown. Default: the
   * session directory (under `os.tmpdir()/rayts-<uid>`).
   */
  objectSpillingDirectory?: string;
  /**
   * Most bytes spilled objects may take on disk; 0 turns spilling off.
   * Default: the free space of the spill directory's filesystem at init,
   * minus min(10% of it, 1 GiB).
   */
  objectSpillingMaxBytes?: number;
  namespace?: string;
  runtimeEnv?: RuntimeEnv;
  /**
   * Forward worker stdout/stderr to the driver's, line by line, prefixed
   * `(name pid=N)` as Ray does. Default true. Either way every worker's
   * output is kept in `logs/` of the session directory.
   */
  logToDriver?: boolean;
  /**
   * Shut the cluster down on SIGINT and SIGTERM, then let the signal take
   * its course (the process ends with it unless another listener handles
   * it). Default false: a service that handles its own signals calls
   * ray.shutdown() there.
   */
  handleSignals?: boolean;
  /**
   * Memory monitor: when the node's memory usage (cgroup if limited, else
   * /proc/meminfo) passes this fraction, the node kills one worker (retriable
   * tasks first, newest lease first); its task is retried under maxRetries,
   * then fails with OutOfMemoryError. In (0, 1]; default 0.95, or the
   * environment variable RAYTS_MEMORY_USAGE_THRESHOLD.
   */
  memoryUsageThreshold?: number;
  /**
   * Bytes of task specs each process keeps to recompute lost objects
   * (lineage reconstruction). Past it the oldest lineage is dropped and those
   * objects are no longer recomputable. Default 64 MiB; 0 keeps none.
   */
  lineageMaxBytes?: number;
}

export interface GetOptions {
  /** Give up after this many milliseconds (GetTimeoutError). Default: wait forever. */
  timeoutMs?: number;
}

export interface WaitOptions {
  /** How many refs must be ready. Default 1. */
  numReturns?: number;
  timeoutMs?: number;
  /** Also wait until the ready objects are on this node. Default true. */
  fetchLocal?: boolean;
}

export interface CancelOptions {
  /** Kill the worker running the task instead of interrupting it. */
  force?: boolean;
  /** Also cancel the tasks this task submitted. Default true. */
  recursive?: boolean;
}

export const MIN_OBJECT_STORE_MEMORY = 1024 * 1024;

// ---------------------------------------------------------------------------
// helpers

function show(v: unknown): string {
  switch (typeof v) {
    case 'number':
      return String(v);
    case 'string':
      return `'${v.length > 60 ? `${v.slice(0, 60)}...` : v}'`;
    case 'bigint':
      return `${v}n`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return v.toString();
    case 'boolean':
      return String(v);
    default:
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'an array';
      return 'an object';
  }
}

function showTyped(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'bigint' || typeof v === 'boolean') return `${typeof v} ${show(v)}`;
  return show(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest known name, if it is close enough to be a likely typo. */
function suggest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.ceil(lower.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Checks `o` is an options object with only `known` keys; undefined means {}. */
function optionsObject(o: unknown, where: string, known: readonly string[]): Record<string, unknown> {
  if (o === undefined || o === null) return {};
  if (!isPlainObject(o)) throw new TypeError(`options for ${where} must be an object, got ${showTyped(o)}`);
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) {
      const hint = suggest(key, known);
      throw new TypeError(
        `unknown option '${key}' for ${where} (known: ${known.join(', ')})${hint !== undefined ? `; did you mean '${hint}'?` : ''}`,
      );
    }
  }
  return o;
}

function number(name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${showTyped(v)}`);
  if (Number.isNaN(v)) throw new RangeError(`${name} must be a number, got NaN`);
  return v;
}

function nonNegative(name: string, v: unknown): number {
  const n = number(name, v);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`${name} must be >= 0, got ${show(n)}`);
  return n;
}

/**
 * Ray's resource precision: amounts are counted in units of 0.0001 (the
 * node rounds to the nearest one), so a positive amount below one unit
 * cannot be granted (Ray: "cannot go beyond 0.0001").
 */
export const RESOURCE_RESOLUTION = 0.0001;

/** A resource amount: >= 0, finite, and 0 or at least RESOURCE_RESOLUTION. */
function resourceAmount(name: string, v: unknown): number {
  const n = nonNegative(name, v);
  if (n > 0 && n < RESOURCE_RESOLUTION) {
    throw new RangeError(`${name}: the precision of a fractional resource quantity cannot go beyond ${RESOURCE_RESOLUTION}, got ${show(n)}`);
  }
  return n;
}

function integerAtLeast(name: string, v: unknown, min: number, note = ''): number {
  const n = number(name, v);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`${name} must be an integer >= ${min}${note}, got ${show(n)}`);
  return n;
}

function timeout(name: string, v: unknown): number {
  const n = number(name, v);
  if (n < 0) throw new RangeError(`${name} must be >= 0 (or Infinity to wait forever), got ${show(n)}`);
  return n;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${showTyped(v)}`);
  return v;
}

function nonEmptyString(name: string, v: unknown): string {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${showTyped(v)}`);
  if (v === '') throw new RangeError(`${name} must not be empty`);
  return v;
}

function resources(name: string, v: unknown): Record<string, number> {
  if (!isPlainObject(v)) {
    throw new TypeError(`${name} must be an object mapping resource names to amounts, got ${showTyped(v)}`);
  }
  const out: Record<string, number> = {};
  for (const [key, amount] of Object.entries(v)) {
    if (key === 'CPU' || key === 'GPU') {
      throw new TypeError(`${name}.${key} is not allowed: use num${key === 'CPU' ? 'Cpus' : 'Gpus'} instead`);
    }
    if (key === '') throw new RangeError(`${name} has an empty resource name`);
    out[key] = resourceAmount(`${name}.${key}`, amount);
  }
  return out;
}

function stringRecord(name: string, v: unknown): Record<string, string> {
  if (!isPlainObject(v)) throw new TypeError(`${name} must be an object of strings, got ${showTyped(v)}`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw new TypeError(`${name}.${key} must be a string, got ${showTyped(value)}`);
    out[key] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------
// validators

export const TASK_OPTION_NAMES = ['numCpus', 'numGpus', 'resources', 'maxRetries', 'retryExceptions', 'numReturns', 'name',
  'schedulingStrategy'] as const;

/** Validates remote-function options given to `where` (e.g. 'ray.remote', '.options()'). */
export function validateTaskOptions(o: unknown, where: string): TaskOptions {
  const src = optionsObject(o, where, TASK_OPTION_NAMES);
  const out: TaskOptions = {};
  if (src.numCpus !== undefined) out.numCpus = resourceAmount('numCpus', src.numCpus);
  if (src.numGpus !== undefined) out.numGpus = resourceAmount('numGpus', src.numGpus);
  if (src.resources !== undefined) out.resources = resources('resources', src.resources);
  if (src.maxRetries !== undefined) out.maxRetries = integerAtLeast('maxRetries', src.maxRetries, -1, ' (-1 retries forever)');
  if (src.retryExceptions !== undefined) {
    const r = src.retryExceptions;
    if (typeof r === 'boolean') out.retryExceptions = r;
    else if (Array.isArray(r)) {
      out.retryExceptions = r.map((name: unknown, i) => {
        if (typeof name !== 'string') throw new TypeError(`retryExceptions[${i}] must be an error name (string), got ${showTyped(name)}`);
        if (name === '' || /\s/.test(name)) throw new RangeError(`retryExceptions[${i}] must be an error name (non-empty, no whitespace), got ${show(name)}`);
        return name;
      });
    } else {
      throw new TypeError(`retryExceptions must be a boolean or an array of error names, got ${showTyped(r)}`);
    }
  }
  if (src.numReturns !== undefined) out.numReturns = numReturnsOption(src.numReturns);
  if (src.name !== undefined) out.name = nonEmptyString('name', src.name);
  if (src.schedulingStrategy !== undefined) out.schedulingStrategy = validateSchedulingStrategy(src.schedulingStrategy);
  return out;
}

/** numReturns of a task or an actor method: an integer >= 0, or 'streaming'. */
function numReturnsOption(n: unknown): number | 'streaming' {
  if (n === 'streaming') return n;
  if (typeof n !== 'number' && typeof n !== 'string') {
    throw new TypeError(`numReturns must be a non-negative integer or 'streaming', got ${showTyped(n)}`);
  }
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new RangeError(`numReturns must be a non-negative integer or 'streaming', got ${show(n)}`);
  }
  return n;
}

/** Per-call options of an actor method: `handle.method.options({...}).remote(...)`. */
export interface ActorMethodOptions {
  /**
   * Refs the call returns (the method returns an array of that length);
   * default 1. 0: `.remote()` returns nothing (a thrown error is logged);
   * 'streaming': the method is a generator and `.remote()` gives an
   * ObjectRefGenerator, as for tasks.
   */
  numReturns?: number | 'streaming';
  /** The call's name in errors and logs (default: the actor class's). */
  name?: string;
  /** The named concurrency group (actor option `concurrencyGroups`) this call runs in, instead of its method's. */
  concurrencyGroup?: string;
}

export const ACTOR_METHOD_OPTION_NAMES = ['numReturns', 'name', 'concurrencyGroup'] as const;

/** Validates per-call actor method options given to `where`. */
export function validateActorMethodOptions(o: unknown, where: string): ActorMethodOptions {
  const src = optionsObject(o, where, ACTOR_METHOD_OPTION_NAMES);
  const out: ActorMethodOptions = {};
  if (src.numReturns !== undefined) out.numReturns = numReturnsOption(src.numReturns);
  if (src.name !== undefined) out.name = nonEmptyString('name', src.name);
  if (src.concurrencyGroup !== undefined) out.concurrencyGroup = nonEmptyString('concurrencyGroup', src.concurrencyGroup);
  return out;
}

export const ACTOR_OPTION_NAMES = [
  'numCpus',
  'numGpus',
  'resources',
  'name',
  'namespace',
  'lifetime',
  'maxRestarts',
  'maxTaskRetries',
  'maxConcurrency',
  'maxPendingCalls',
  'concurrencyGroups',
  'getIfExists',
  'schedulingStrategy',
] as const;

/** Validates actor-class options given to `where`. */
export function validateActorOptions(o: unknown, where: string): ActorOptions {
  const src = optionsObject(o, where, ACTOR_OPTION_NAMES);
  const out: ActorOptions = {};
  if (src.numCpus !== undefined) out.numCpus = resourceAmount('numCpus', src.numCpus);
  if (src.numGpus !== undefined) out.numGpus = resourceAmount('numGpus', src.numGpus);
  if (src.resources !== undefined) out.resources = resources('resources', src.resources);
  if (src.name !== undefined) out.name = nonEmptyString('name', src.name);
  if (src.namespace !== undefined) out.namespace = nonEmptyString('namespace', src.namespace);
  if (src.lifetime !== undefined) {
    const l = src.lifetime;
    if (typeof l !== 'string') throw new TypeError(`lifetime must be 'detached' or 'non_detached', got ${showTyped(l)}`);
    if (l !== 'detached' && l !== 'non_detached') throw new RangeError(`lifetime must be 'detached' or 'non_detached', got ${show(l)}`);
    out.lifetime = l;
  }
  if (src.maxRestarts !== undefined) out.maxRestarts = integerAtLeast('maxRestarts', src.maxRestarts, -1, ' (-1 restarts forever)');
  if (src.maxTaskRetries !== undefined) {
    out.maxTaskRetries = integerAtLeast('maxTaskRetries', src.maxTaskRetries, -1, ' (-1 retries forever)');
  }
  if (src.maxConcurrency !== undefined) out.maxConcurrency = integerAtLeast('maxConcurrency', src.maxConcurrency, 1);
  if (src.concurrencyGroups !== undefined) {
    const g = src.concurrencyGroups;
    if (typeof g !== 'object' || g === null || Array.isArray(g)) {
      throw new TypeError('concurrencyGroups must be an object: { group: { maxConcurrency, methods } }');
    }
    const groups: Record<string, { maxConcurrency: number; methods: string[] }> = {};
    const seen = new Map<string, string>();
    for (const [name, spec] of Object.entries(g as Record<string, unknown>)) {
      if (typeof spec !== 'object' || spec === null) throw new TypeError(`concurrencyGroups.${name} must be { maxConcurrency, methods }`);
      const sp = spec as { maxConcurrency?: unknown; methods?: unknown };
      const max = integerAtLeast(`concurrencyGroups.${name}.maxConcurrency`, sp.maxConcurrency, 1);
      if (!Array.isArray(sp.methods) || sp.methods.some((m) => typeof m !== 'string')) {
        throw new TypeError(`concurrencyGroups.${name}.methods must be an array of method names`);
      }
      for (const m of sp.methods as string[]) {
        const other = seen.get(m);
        if (other !== undefined) throw new RangeError(`concurrencyGroups: method '${m}' is in both '${other}' and '${name}'`);
        seen.set(m, name);
      }
      groups[name] = { maxConcurrency: max, methods: [...(sp.methods as string[])] };
    }
    out.concurrencyGroups = groups;
  }
  if (src.maxPendingCalls !== undefined) {
    out.maxPendingCalls = integerAtLeast('maxPendingCalls', src.maxPendingCalls, -1, ' (-1: no limit)');
    if (out.maxPendingCalls === 0) throw new RangeError('maxPendingCalls must be -1 (no limit) or a positive integer, got 0');
  }
  if (src.getIfExists !== undefined) out.getIfExists = bool('getIfExists', src.getIfExists);
  if (out.getIfExists === true && out.name === undefined) throw new TypeError('getIfExists requires a name');
  if (src.schedulingStrategy !== undefined) out.schedulingStrategy = validateSchedulingStrategy(src.schedulingStrategy);
  return out;
}

export const INIT_OPTION_NAMES = [
  'address',
  'numCpus',
  'numGpus',
  'resources',
  'objectStoreMemory',
  'namespace',
  'runtimeEnv',
  'logToDriver',
  'handleSignals',
  'memoryUsageThreshold',
  'objectSpillingDirectory',
  'objectSpillingMaxBytes',
  'lineageMaxBytes',
] as const;
export const RUNTIME_ENV_NAMES = ['envVars', 'workingDir'] as const;

/** Validates ray.init() options. */
export function validateInitOptions(o: unknown): InitOptions {
  const src = optionsObject(o, 'ray.init', INIT_OPTION_NAMES);
  const out: InitOptions = {};
  if (src.address !== undefined) {
    const a = src.address;
    if (typeof a !== 'string') throw new TypeError(`address must be a string ('host:port' or 'auto'), got ${showTyped(a)}`);
    const m = /^([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(a);
    if (a !== 'auto' && (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)) {
      throw new RangeError(`address must be 'host:port' or 'auto', got ${show(a)}`);
    }
    out.address = a;
  }
  if (src.numCpus !== undefined) out.numCpus = resourceAmount('numCpus', src.numCpus);
  if (src.numGpus !== undefined) out.numGpus = resourceAmount('numGpus', src.numGpus);
  if (src.resources !== undefined) out.resources = resources('resources', src.resources);
  if (src.objectStoreMemory !== undefined) {
    const n = number('objectStoreMemory', src.objectStoreMemory);
    if (!Number.isSafeInteger(n) || n < MIN_OBJECT_STORE_MEMORY) {
      throw new RangeError(`objectStoreMemory must be an integer number of bytes >= ${MIN_OBJECT_STORE_MEMORY} (1 MiB), got ${show(n)}`);
    }
    out.objectStoreMemory = n;
  }
  if (src.objectSpillingDirectory !== undefined) {
    out.objectSpillingDirectory = nonEmptyString('objectSpillingDirectory', src.objectSpillingDirectory);
  }
  if (src.objectSpillingMaxBytes !== undefined) {
    const n = number('objectSpillingMaxBytes', src.objectSpillingMaxBytes);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`objectSpillingMaxBytes must be a non-negative integer number of bytes (0 turns spilling off), got ${show(n)}`);
    }
    out.objectSpillingMaxBytes = n;
  }
  if (src.lineageMaxBytes !== undefined) {
    const n = number('lineageMaxBytes', src.lineageMaxBytes);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`lineageMaxBytes must be a non-negative integer number of bytes, got ${show(n)}`);
    }
    out.lineageMaxBytes = n;
  }
  if (src.namespace !== undefined) out.namespace = nonEmptyString('namespace', src.namespace);
  if (src.runtimeEnv !== undefined) {
    if (src.runtimeEnv === null) throw new TypeError('runtimeEnv must be an object, got null');
    const env = optionsObject(src.runtimeEnv, 'runtimeEnv', RUNTIME_ENV_NAMES);
    const r: RuntimeEnv = {};
    if (env.envVars !== undefined) r.envVars = stringRecord('runtimeEnv.envVars', env.envVars);
    if (env.workingDir !== undefined) r.workingDir = nonEmptyString('runtimeEnv.workingDir', env.workingDir);
    out.runtimeEnv = r;
  }
  if (src.logToDriver !== undefined) out.logToDriver = bool('logToDriver', src.logToDriver);
  if (src.handleSignals !== undefined) out.handleSignals = bool('handleSignals', src.handleSignals);
  if (src.memoryUsageThreshold !== undefined) {
    out.memoryUsageThreshold = memoryThreshold('memoryUsageThreshold', src.memoryUsageThreshold);
  }
  return out;
}

/** A memory usage fraction in (0, 1]. */
export function memoryThreshold(name: string, v: unknown): number {
  const n = number(name, v);
  if (!(n > 0 && n <= 1)) throw new RangeError(`${name} must be a fraction of node memory in (0, 1], got ${show(n)}`);
  return n;
}

/** Validates ray.get() options. */
export function validateGetOptions(o: unknown): GetOptions {
  const src = optionsObject(o, 'ray.get', ['timeoutMs']);
  const out: GetOptions = {};
  if (src.timeoutMs !== undefined) out.timeoutMs = timeout('timeoutMs', src.timeoutMs);
  return out;
}

/** Validates ray.wait() options; with `numRefs`, numReturns may not exceed it. */
export function validateWaitOptions(o: unknown, numRefs?: number): WaitOptions {
  const src = optionsObject(o, 'ray.wait', ['numReturns', 'timeoutMs', 'fetchLocal']);
  const out: WaitOptions = {};
  if (src.numReturns !== undefined) {
    const n = number('numReturns', src.numReturns);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`numReturns must be a positive integer, got ${show(n)}`);
    if (numRefs !== undefined && n > numRefs) {
      throw new RangeError(`numReturns must be <= the number of refs (${numRefs}), got ${n}`);
    }
    out.numReturns = n;
  }
  if (src.timeoutMs !== undefined) out.timeoutMs = timeout('timeoutMs', src.timeoutMs);
  if (src.fetchLocal !== undefined) out.fetchLocal = bool('fetchLocal', src.fetchLocal);
  return out;
}

/** Validates ray.cancel() options. */
export function validateCancelOptions(o: unknown): CancelOptions {
  const src = optionsObject(o, 'ray.cancel', ['force', 'recursive']);
  const out: CancelOptions = {};
  if (src.force !== undefined) out.force = bool('force', src.force);
  if (src.recursive !== undefined) out.recursive = bool('recursive', src.recursive);
  return out;
}
