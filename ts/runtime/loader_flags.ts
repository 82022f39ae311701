// The module loaders of the driver, passed on to its workers. A driver run
// as `tsx driver.ts` or `node --import tsx driver.ts` has a TypeScript loader
// registered through its execArgv; workers are started with the same loader
// flags (as child_process.fork() passes execArgv on), so that they can import
// the `.ts` modules of ray.importModule() and of `await import()` inside
// tasks. NODE_OPTIONS reaches workers with the rest of the environment.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Flags that take a module and register a loader or preload it. */
const MODULE_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);
/** Flags without a value that change how modules load. */
const PLAIN_FLAGS = new Set(['--experimental-strip-types', '--experimental-transform-types', '--experimental-default-type=module']);

/** A relative module path made absolute (workers may run in another directory); bare specifiers stay. */
function absolutize(flag: string, value: string, cwd: string): string {
  if (!value.startsWith('./') && !value.startsWith('../')) return value;
  const abs = path.resolve(cwd, value);
  return flag === '--require' || flag === '-r' ? abs : pathToFileURL(abs).href;
}

/** The loader flags of `execArgv`, in order, with relative module paths made absolute against `cwd`. */
export function loaderArgs(execArgv: readonly string[], cwd: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (MODULE_FLAGS.has(flag)) {
      const value = eq > 0 ? a.slice(eq + 1) : execArgv[++i];
      if (value === undefined) break;
      out.push(flag, absolutize(flag, value, cwd));
    } else if (PLAIN_FLAGS.has(a)) {
      out.push(a);
    }
  }
  return out;
}

/**
 * True when this process can import `.ts` modules: a loader such as tsx
 * registered the `.ts` extension, or Node strips types itself.
 */
export function typeScriptLoaderActive(): boolean {
  const features = process.features as { typescript?: unknown };
  if (features.typescript !== undefined && features.typescript !== false) return true;
  const req = createRequire(path.join(process.cwd(), 'noop.js'));
  return typeof req.extensions['.ts'] === 'function';
}
