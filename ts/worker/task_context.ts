// The running task as its own code sees it (worker side): its id and the
// AbortSignal that ray.cancel aborts (ray.getRuntimeContext().signal).
import { TaskCancelledError } from '../api/errors.js';
import { toHex } from '../api/object_ref.js';
import type { NativeEvent } from '../runtime/native.js';

/**
 * Worker side: one running task as its own code sees it
 * (ray.getRuntimeContext()). The AbortController is made only when the task
 * asks for its signal (or is cancelled), so tasks that never look pay nothing.
 */
export interface TaskContext {
  taskId: Uint8Array;
  /** The task id as a map key (latin1 string of its bytes). */
  key: string;
  /** The execute event it runs (failRunning answers it). */
  event: NativeEvent;
  name: string;
  cancelled: boolean;
  controller: AbortController | undefined;
  /** The task's ray.get/ray.wait calls blocked now: rejected when it is cancelled (made on first wait). */
  waits?: Set<(reason: TaskCancelledError) => void>;
}

/** The signal of `ctx`, aborted (reason: TaskCancelledError) once the task is cancelled. */
export function taskSignal(ctx: TaskContext): AbortSignal {
  if (ctx.controller === undefined) {
    ctx.controller = new AbortController();
    if (ctx.cancelled) ctx.controller.abort(cancelReason(ctx));
  }
  return ctx.controller.signal;
}

/** Marks `ctx` cancelled and aborts its signal if anybody holds it. */
export function cancelTaskContext(ctx: TaskContext): void {
  if (ctx.cancelled) return;
  ctx.cancelled = true;
  ctx.controller?.abort(cancelReason(ctx));
  if (ctx.waits !== undefined) {
    const reason = cancelReason(ctx);
    for (const w of [...ctx.waits]) w(reason);
    ctx.waits.clear();
  }
}

/**
 * A wait of the task `ctx` (ray.get, ray.wait, awaiting a ref): `reject` is
 * called with TaskCancelledError when the task is cancelled, at once if it
 * already was. Returns the function that ends the registration.
 */
export function onTaskCancelled(ctx: TaskContext, reject: (reason: TaskCancelledError) => void): () => void {
  if (ctx.cancelled) {
    reject(cancelReason(ctx));
    return () => undefined;
  }
  const waits = (ctx.waits ??= new Set());
  waits.add(reject);
  return () => waits.delete(reject);
}

function cancelReason(ctx: TaskContext): TaskCancelledError {
  return new TaskCancelledError(`task ${ctx.name} (${toHex(ctx.taskId)}) was cancelled`);
}
