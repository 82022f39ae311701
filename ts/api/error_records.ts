// Error records: how a failure crosses processes, and back.
//
// A failed object's value is an ErrorRecord (errors.ts) in JSON: the
// executor makes one from what a task threw (recordFromThrown), core/ makes
// the others (core/common/error_record.h), and the side that reads the
// object turns it back into a RayError (errorFromRecord).
//
// - The thrown error's own fields and cause (`err.code = 'E1'`, an error
//   subclass's fields, `new Error(m, { cause })`) travel in `error`, the
//   error in the value codec: what serializes there (primitives, arrays,
//   plain objects, Map, Set, Date, binary data, nested errors) comes back
//   on `RayTaskError.cause`; a field that does not serialize (a function, a
//   class instance, an ObjectRef) is left out, alone; fields past
//   MAX_ERROR_DETAIL_BYTES are not carried at all.
// - A task that fails because a result it depends on failed wraps that
//   result's record (`dependency`, `cause`): core/ does it for an argument
//   that holds a task error (TaskManager::ReadyLocked), recordFromThrown
//   for a RayError the task's code let escape (an argument it had to fetch,
//   a ray.get inside the task). Records nest as the chain grows, as Ray's
//   errors do, up to MAX_DEPENDENCY_NESTING; a deeper chain restarts from
//   its first error, `dependency` counting the tasks in between, so a
//   record stays bounded. Both sides write the same JSON shape
//   (core/common/error_record.h DependencyErrorJson).
// Thread safety: JS thread only.

import { inspect } from 'node:util';
import { deserialize, serializeToBytes, type RefHooks } from '../codec/serialization.js';
import {
  ActorDiedError, ObjectLostError, ObjectStoreFullError, OutOfMemoryError, OwnerDiedError, RayError, RaySystemError,
  RayTaskError, TaskCancelledError, WorkerCrashedError, rebuildError, type ErrorRecord,
} from './errors.js';

/** Errors rebuilt from a record, and that record (so a task that rethrows one reports the chain). */
const fromRecords = new WeakMap<Error, ErrorRecord>();

/** The message of a dependency record; core/common/error_record.h writes the same. */
export const DEPENDENCY_MESSAGE = 'a result it depends on failed';

/** Refs are not carried inside errors: a field holding one is left out. */
const NO_REFS: RefHooks = {
  isRef: () => false,
  encodeRef: () => {
    throw new TypeError('refs are not carried in errors');
  },
  decodeRef: () => {
    throw new TypeError('refs are not carried in errors');
  },
};

function serializes(v: unknown): boolean {
  try {
    serializeToBytes(v, NO_REFS, 'error field');
    return true;
  } catch {
    return false;
  }
}

/** A copy of `e` with only the fields (and cause) that serialize; `depth` bounds nested causes. */
function portable(e: Error, depth: number): Error {
  const copy = rebuildError(String(e.name), String(e.message), typeof e.stack === 'string' ? e.stack : undefined);
  const rec = e as unknown as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (serializes(rec[key])) Object.defineProperty(copy, key, { value: rec[key], writable: true, enumerable: true, configurable: true });
  }
  if (Object.hasOwn(e, 'cause')) {
    const c = rec.cause;
    const cause = c instanceof Error && depth > 0 ? portable(c, depth - 1) : serializes(c) ? c : undefined;
    if (cause !== undefined) Object.defineProperty(copy, 'cause', { value: cause, writable: true, enumerable: false, configurable: true });
  }
  return copy;
}

/**
 * Past this many bytes the fields are not carried (an error record travels
 * inline, like a small task result): name, message and stack still are.
 */
export const MAX_ERROR_DETAIL_BYTES = 1024 * 1024;

/** The error in the value codec (base64), when it has own fields or a cause to carry. */
function encodeDetail(e: Error): string | undefined {
  if (Object.keys(e).length === 0 && !Object.hasOwn(e, 'cause')) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = serializeToBytes(e, NO_REFS, 'error');
  } catch {
    try {
      bytes = serializeToBytes(portable(e, 8), NO_REFS, 'error');
    } catch {
      return undefined;
    }
  }
  if (bytes.byteLength > MAX_ERROR_DETAIL_BYTES) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The original error a 'task' record describes: its fields and cause when they travelled, else name/message/stack. */
function originalError(rec: ErrorRecord): Error {
  if (rec.error !== undefined) {
    try {
      const e = deserialize(Buffer.from(rec.error, 'base64'), NO_REFS);
      if (e instanceof Error) return e;
    } catch {
      // fall back to what the record says in plain text
    }
  }
  return rebuildError(rec.name, rec.message, rec.stack);
}

/** Rebuilds the error class instance that a record describes. */
export function errorFromRecord(rec: ErrorRecord): RayError {
  const e = build(rec);
  fromRecords.set(e, rec);
  return e;
}

function build(rec: ErrorRecord): RayError {
  const taskName = rec.taskName;
  switch (rec.kind) {
    case 'task':
      if (rec.dependency !== undefined && rec.dependency > 0 && rec.cause !== undefined) {
        return new RayTaskError(taskName ?? '<unknown>', errorFromRecord(rec.cause), rec.dependency);
      }
      return new RayTaskError(taskName ?? '<unknown>', originalError(rec));
    case 'worker_crashed':
      return new WorkerCrashedError(rec.message, taskName, rec);
    case 'actor_died': {
      // rec.cause: the error record of a constructor that threw.
      const c = rec.cause;
      const cause = c !== undefined
        ? originalError(c)
        : rec.stack !== undefined ? { name: rec.name, message: rec.message, stack: rec.stack } : undefined;
      return new ActorDiedError(rec.actorId ?? '<unknown>', rec.message, cause);
    }
    case 'object_lost':
      return new ObjectLostError(rec.objectId ?? '<unknown>', rec.message);
    case 'owner_died':
      return new OwnerDiedError(rec.objectId ?? '<unknown>', rec.message);
    case 'cancelled':
      return new TaskCancelledError(rec.message, taskName);
    case 'store_full':
      return new ObjectStoreFullError(rec.message);
    case 'oom':
      return new OutOfMemoryError(rec.message, taskName);
    case 'system':
      return new RaySystemError(rec.message);
    default: {
      const kind: never = rec.kind;
      return new RaySystemError(`unknown error kind '${String(kind)}': ${rec.name}: ${rec.message}`);
    }
  }
}

/** Records nest this deep at most (core/common/error_record.h kMaxDependencyNesting). */
export const MAX_DEPENDENCY_NESTING = 32;

const isDependency = (r: ErrorRecord): boolean => r.kind === 'task' && r.dependency !== undefined && r.cause !== undefined;

/**
 * The record of task `taskName` failing because of `upstream` (the record
 * of a result it depends on). Key order matters: core/ reads this shape
 * (ParseDependencyRecord).
 */
export function dependencyRecord(taskName: string, upstream: ErrorRecord): ErrorRecord {
  let depth = 0;
  let total = 0;
  let root = upstream;
  while (isDependency(root)) {
    depth++;
    total += root.dependency!;
    root = root.cause!;
  }
  const nest = depth < MAX_DEPENDENCY_NESTING;
  return {
    kind: 'task',
    name: 'RayTaskError',
    message: DEPENDENCY_MESSAGE,
    dependency: nest ? 1 : total + 1,
    taskName,
    cause: nest ? upstream : root,
  };
}

const MAX_INSPECT = 2000;

function safeString(read: () => unknown): string | undefined {
  try {
    const v = read();
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Describes whatever a task threw as a 'task' record. Error-like values keep
 * name/message/stack (and, for an Error, its own fields and cause); a
 * RayError rebuilt from a record (a failed result the task read) becomes a
 * dependency record; any other thrown value (a string, a number, an object)
 * becomes a readable message, so the caller always learns what happened.
 */
export function recordFromThrown(e: unknown, taskName: string): ErrorRecord {
  if (typeof e === 'object' && e !== null) {
    const upstream = e instanceof Error ? fromRecords.get(e) : undefined;
    if (upstream !== undefined) return dependencyRecord(taskName, upstream);
    const message = safeString(() => (e as { message?: unknown }).message);
    const name = safeString(() => (e as { name?: unknown }).name);
    if (e instanceof Error || (message !== undefined && name !== undefined)) {
      const stack = safeString(() => (e as { stack?: unknown }).stack);
      const rec: ErrorRecord = { kind: 'task', name: name ?? 'Error', message: message ?? '', taskName };
      if (stack !== undefined) rec.stack = stack;
      if (e instanceof Error) {
        const detail = encodeDetail(e);
        if (detail !== undefined) rec.error = detail;
      }
      return rec;
    }
  }
  if (typeof e === 'string') {
    return { kind: 'task', name: 'Error', message: e, taskName, stack: `(a string was thrown, not an Error: no stack)` };
  }
  let shown: string;
  try {
    shown = inspect(e, { depth: 2, breakLength: Infinity });
  } catch {
    shown = Object.prototype.toString.call(e);
  }
  if (shown.length > MAX_INSPECT) shown = `${shown.slice(0, MAX_INSPECT)}...`;
  const type = e === null ? 'null' : typeof e;
  return {
    kind: 'task',
    name: 'Error',
    message: `a non-Error value was thrown (${type}): ${shown}`,
    taskName,
    stack: `(a ${type} was thrown, not an Error: no stack)`,
  };
}
