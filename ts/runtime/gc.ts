// A full garbage collection on demand (V8's gc), for store pressure: the
// runtime collects so unreachable refs and zero-copy views free their objects.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let gcFn: (() => void) | null | undefined;

/** A full garbage collection function (V8's gc), or null where unavailable. */
export function fullGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return (gcFn = g);
  try {
    // Expose gc without a command-line flag: set the flag, then take gc from
    // a fresh context (the flag applies to contexts created afterwards).
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}
