// The process's current Runtime (set by ray.init() in a driver and by
// worker_main in a worker). Apart from runtime.ts so that the API modules
// that only need the current runtime (actor.ts, remote_function.ts,
// memory.ts) do not import the Runtime class: that import closed a cycle
// runtime.ts -> ref_codec.ts -> actor.ts -> remote_function.ts -> runtime.ts.
import type { Runtime } from './runtime.js';
import { RaySystemError } from '../api/errors.js';

let current: Runtime | undefined;

export function setCurrentRuntime(rt: Runtime | undefined): void {
  current = rt;
}

export function currentRuntime(): Runtime | undefined {
  return current;
}

export function requireRuntime(what: string): Runtime {
  if (!current || current.closed) {
    throw new RaySystemError(`rayts is not initialized: call 'await ray.init()' before ${what}`);
  }
  return current;
}
