// Error vocabulary of the public API.
//
// Every error rayts raises is a RayError. Errors that happen in another
// process cross the process boundary as an ErrorRecord (plain data, so the
// value codec and the native layer can carry it) and are turned back into a
// class instance with errorFromRecord() on the side that awaits the result.
//
// RayTaskError follows Ray's format: its message names the original error
// class and includes the remote stack, and `.cause` holds the original
// {name, message, stack} so callers can branch on the remote error's name.

import { inspect } from 'node:util';
import type { ErrorKindName } from '../runtime/native.js';

/** What a remote error looked like in the process where it was thrown. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  stack?: string | undefined;
}

/** The kinds of error record, defined in core/common/error_record.h (see ts/runtime/native.ts). */
export type ErrorKind = ErrorKindName;

/** Serializable description of an error; see errorFromRecord(). */
export interface ErrorRecord {
  kind: ErrorKind;
  name: string;
  message: string;
  stack?: string | undefined;
  taskName?: string | undefined;
  objectId?: string | undefined;
  actorId?: string | undefined;
  /** actor_died: the error that killed the actor (its constructor threw). */
  cause?: ErrorRecord | undefined;
  /** worker_crashed: how the worker process ended, as its node saw it. */
  exitCode?: number | undefined;
  signal?: string | undefined;
  pid?: number | undefined;
  stderr?: string | undefined;
}

/** How a crashed worker ended, as its node saw it (WorkerCrashedError). */
export interface WorkerExit {
  /** Its exit code, when it exited (process.exit(3): 3). */
  exitCode?: number | undefined;
  /** The signal that ended it ('SIGKILL'), when one did. */
  signal?: string | undefined;
  pid?: number | undefined;
  /** The last lines it wrote to stderr ('' when none). */
  stderr?: string | undefined;
}

/** Base class of every error raised by rayts. */
export class RayError extends Error {
  constructor(message: string) {
    super(message);
  }
}

/** The remote task (or actor method) threw; `.cause` is the original error. */
export class RayTaskError extends RayError {
  override readonly cause: RemoteErrorInfo;
  readonly taskName: string;

  constructor(taskName: string, cause: RemoteErrorInfo) {
    const remoteStack = cause.stack !== undefined && cause.stack !== '' ? `\n${cause.stack}` : '';
    super(`RayTaskError(${cause.name}): task ${taskName} failed: ${cause.message}${remoteStack}`);
    this.cause = { name: cause.name, message: cause.message, stack: cause.stack };
    this.taskName = taskName;
    stripStackHeader(this);
  }
}

/**
 * The worker process died while it was running the task. When its node
 * said how (it normally does), `exitCode` or `signal` tells, and `stderr`
 * holds the last lines the worker wrote there (also in the message).
 */
export class WorkerCrashedError extends RayError {
  readonly taskName: string | undefined;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly pid: number | undefined;
  readonly stderr: string | undefined;
  constructor(message = 'the worker process died while running the task', taskName?: string, exit?: WorkerExit) {
    super(taskName !== undefined ? `task ${taskName}: ${message}` : message);
    this.taskName = taskName;
    this.exitCode = exit?.exitCode;
    this.signal = exit?.signal;
    this.pid = exit?.pid;
    this.stderr = exit?.stderr;
  }
}

/** The actor is dead: killed, or crashed more often than maxRestarts allows. */
export class ActorDiedError extends RayError {
  readonly actorId: string;
  override readonly cause: RemoteErrorInfo | undefined;
  constructor(actorId: string, message = 'the actor died', cause?: RemoteErrorInfo) {
    super(`actor ${actorId}: ${message}${cause !== undefined ? ` (${cause.name}: ${cause.message})` : ''}`);
    this.actorId = actorId;
    this.cause = cause;
  }
}

/** The object's value is lost (every copy gone) and could not be recomputed. */
export class ObjectLostError extends RayError {
  readonly objectId: string;
  constructor(objectId: string, message = 'all copies of the object are lost and it could not be reconstructed') {
    super(`object ${objectId}: ${message}`);
    this.objectId = objectId;
  }
}

/** The process that owns the object died, so its value can no longer be resolved. */
export class OwnerDiedError extends RayError {
  readonly objectId: string;
  constructor(objectId: string, message = 'the owner of the object died') {
    super(`object ${objectId}: ${message}`);
    this.objectId = objectId;
  }
}

/** ray.get() / ray.wait() did not finish within timeoutMs. */
export class GetTimeoutError extends RayError {
  readonly timeoutMs: number | undefined;
  constructor(message = 'get timed out', timeoutMs?: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
}

/** The task was cancelled with ray.cancel() before it produced a value. */
export class TaskCancelledError extends RayError {
  readonly taskName: string | undefined;
  constructor(message = 'the task was cancelled', taskName?: string) {
    super(taskName !== undefined ? `task ${taskName}: ${message}` : message);
    this.taskName = taskName;
  }
}

/** The shared-memory object store could not make room for an object. */
export class ObjectStoreFullError extends RayError {
  constructor(message = 'the object store is full') {
    super(message);
  }
}

/**
 * The node's memory monitor killed the worker running the task (node memory
 * usage passed `memoryUsageThreshold`) and its retries were used up. The
 * message names the task, the worker's RSS and the node's usage vs the
 * threshold.
 */
export class OutOfMemoryError extends RayError {
  readonly taskName: string | undefined;
  constructor(message = 'the worker was killed because the node ran low on memory', taskName?: string) {
    super(message);
    this.taskName = taskName;
  }
}

/** An internal failure of the runtime (protocol violation, lost connection, ...). */
export class RaySystemError extends RayError {
  constructor(message: string) {
    super(message);
  }
}

// `name` lives on each prototype (non-enumerable, survives minification, and
// does not show up as an own property when an error is printed).
for (const [cls, name] of [
  [RayError, 'RayError'],
  [RayTaskError, 'RayTaskError'],
  [WorkerCrashedError, 'WorkerCrashedError'],
  [ActorDiedError, 'ActorDiedError'],
  [ObjectLostError, 'ObjectLostError'],
  [OwnerDiedError, 'OwnerDiedError'],
  [GetTimeoutError, 'GetTimeoutError'],
  [TaskCancelledError, 'TaskCancelledError'],
  [ObjectStoreFullError, 'ObjectStoreFullError'],
  [OutOfMemoryError, 'OutOfMemoryError'],
  [RaySystemError, 'RaySystemError'],
] as const) {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true, enumerable: false });
}

/** The message already starts with `RayTaskError(X): ...`; drop V8's `RayTaskError: ` header from the stack. */
function stripStackHeader(e: Error): void {
  const header = `${e.name}: `;
  if (typeof e.stack === 'string' && e.stack.startsWith(header)) {
    Object.defineProperty(e, 'stack', {
      value: e.stack.slice(header.length),
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}

/** Rebuilds the error class instance that a record describes. */
export function errorFromRecord(rec: ErrorRecord): RayError {
  const taskName = rec.taskName;
  switch (rec.kind) {
    case 'task':
      return new RayTaskError(taskName ?? '<unknown>', { name: rec.name, message: rec.message, stack: rec.stack });
    case 'worker_crashed':
      return new WorkerCrashedError(rec.message, taskName, rec);
    case 'actor_died': {
      // rec.cause: the error record of a constructor that threw.
      const c = rec.cause;
      const cause = c !== undefined
        ? { name: c.name, message: c.message, stack: c.stack }
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
 * name/message/stack; any other thrown value (a string, a number, an object)
 * becomes a readable message, so the caller always learns what happened.
 */
export function recordFromThrown(e: unknown, taskName: string): ErrorRecord {
  if (typeof e === 'object' && e !== null) {
    const message = safeString(() => (e as { message?: unknown }).message);
    const name = safeString(() => (e as { name?: unknown }).name);
    if (e instanceof Error || (message !== undefined && name !== undefined)) {
      const stack = safeString(() => (e as { stack?: unknown }).stack);
      const rec: ErrorRecord = { kind: 'task', name: name ?? 'Error', message: message ?? '', taskName };
      if (stack !== undefined) rec.stack = stack;
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
