// Error vocabulary of the public API.
//
// Every error rayts raises is a RayError. Errors that happen in another
// process cross the process boundary as an ErrorRecord (plain data, so the
// value codec and the native layer can carry it) and are turned back into a
// class instance with errorFromRecord() on the side that awaits the result.
//
// RayTaskError follows Ray's format: its message names the original error
// class and includes the remote stack. `.cause` is the original error
// rebuilt: an instance of the built-in class it was (RangeError, TypeError,
// ...), otherwise an Error carrying its name, with the own fields and cause
// that serialized. A task that failed because a result it depends on failed
// (Ray's dependency error) has the upstream RayTaskError as `.cause`;
// `.rootCause` is always the original error at the start of the chain.
// Records and their conversions: error_records.ts.

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
  /**
   * actor_died: the error that killed the actor (its constructor threw).
   * task with `dependency`: the error of the result this task depended on
   * (the first error of the chain: a record never nests dependencies).
   */
  cause?: ErrorRecord | undefined;
  /** task: failed because a result it depends on failed, this many tasks downstream of `cause`'s (1: its direct upstream). */
  dependency?: number | undefined;
  /** task: the thrown error with its own fields and cause, in the value codec (base64), when it had any. */
  error?: string | undefined;
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

const BUILTIN_ERRORS: Record<string, new (message?: string) => Error> = {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
};

/**
 * An Error with this name, message and stack: an instance of the built-in
 * class of that name (RangeError, ...), otherwise an Error whose name is set.
 */
export function rebuildError(name: string, message: string, stack: string | undefined): Error {
  const Ctor = Object.hasOwn(BUILTIN_ERRORS, name) ? BUILTIN_ERRORS[name]! : Error;
  const e = new Ctor(message);
  if (e.name !== name) Object.defineProperty(e, 'name', { value: name, writable: true, configurable: true, enumerable: false });
  if (stack === undefined) delete (e as { stack?: string }).stack;
  else Object.defineProperty(e, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
  return e;
}

const DEPENDS = 'a result it depends on failed';

/**
 * The remote task (or actor method) threw. `.cause` is the original error
 * (see the top of this file); when the task failed because a result it
 * depends on failed, `.cause` is that result's error (a RayTaskError when a
 * task threw) and `.rootCause` the original error at the start of the chain.
 */
export class RayTaskError extends RayError {
  override readonly cause: Error;
  /** The error at the start of the chain: `cause` unless this task failed through a dependency. */
  readonly rootCause: Error;
  readonly taskName: string;

  /**
   * `cause`: what the task threw (an Error, or its name/message/stack), or,
   * with `dependency` (the number of failed tasks from the cause's task to
   * this one: 1 for the direct upstream), the error of the result this task
   * depended on.
   */
  constructor(taskName: string, cause: RemoteErrorInfo | Error, dependency = 0) {
    const err = cause instanceof Error ? cause : rebuildError(cause.name, cause.message, cause.stack);
    const root = dependency > 0 && err instanceof RayTaskError ? err.rootCause : err;
    let text: string;
    if (dependency > 0) {
      const between = dependency > 1 ? ` (through ${dependency - 1} more failed task${dependency > 2 ? 's' : ''})` : '';
      text = `${DEPENDS}${between}: ${err.message}`;
    } else {
      text = `${err.message}${err.stack !== undefined && err.stack !== '' ? `\n${err.stack}` : ''}`;
    }
    super(`RayTaskError(${root.name}): task ${taskName} failed: ${text}`);
    this.cause = err;
    this.rootCause = root;
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

/**
 * The actor is dead: killed, or crashed more often than maxRestarts allows.
 * `.cause`: the error its constructor threw, when that killed it.
 */
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
