// TypeScript module source as JavaScript, for reading a `.ts` module's
// exported classes (ray.importModule(); the driver never imports the module,
// its workers do). Uses the transformer that is already there when the driver
// runs under tsx: tsx's esbuild; else the typescript package; else Node's own
// type stripping (Node 22.13+). Resolved from the working directory and from
// the loader modules in execArgv (the tsx CLI passes absolute paths).
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The file extensions of TypeScript modules. */
export function isTypeScriptFile(file: string): boolean {
  return /\.(?:ts|mts|cts|tsx)$/.test(file);
}

type Transform = (source: string, file: string) => string;

interface Esbuild {
  transformSync(source: string, options: { loader: string; format: string; sourcefile: string }): { code: string };
}
interface TypeScriptApi {
  transpileModule(source: string, options: { compilerOptions: Record<string, unknown>; fileName: string }): { outputText: string };
}

/** Directories to resolve a transformer from: cwd, then the loader modules of execArgv. */
function resolutionBases(): string[] {
  const bases = [path.join(process.cwd(), 'noop.js')];
  for (const a of process.execArgv) {
    const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : a;
    if (v.startsWith('file:')) bases.push(fileURLToPath(v));
    else if (path.isAbsolute(v)) bases.push(v);
  }
  return bases;
}

/** `name` resolved from a base, directly or as a dependency of tsx. */
function tryLoad<T>(name: string): T | undefined {
  for (const base of resolutionBases()) {
    const req = createRequire(base);
    for (const from of [undefined, 'tsx/package.json']) {
      try {
        const r = from === undefined ? req : createRequire(req.resolve(from));
        return r(name) as T;
      } catch {
        // not resolvable from here: try the next base
      }
    }
  }
  return undefined;
}

let cached: Transform | null | undefined;

function findTransform(): Transform | null {
  const esbuild = tryLoad<Esbuild>('esbuild');
  if (esbuild !== undefined) {
    return (source, file) => esbuild.transformSync(source, { loader: file.endsWith('x') ? 'tsx' : 'ts', format: 'esm', sourcefile: file }).code;
  }
  const ts = tryLoad<TypeScriptApi>('typescript');
  if (ts !== undefined) {
    return (source, file) => ts.transpileModule(source, { compilerOptions: { target: 99, module: 99 }, fileName: file }).outputText;
  }
  const strip = (nodeModule as { stripTypeScriptTypes?: (s: string, o: { mode: string }) => string }).stripTypeScriptTypes;
  if (strip !== undefined) return (source) => strip(source, { mode: 'transform' });
  return null;
}

/**
 * The JavaScript of a TypeScript module's source. Throws a TypeError naming
 * the file and what to install when no transformer can be found.
 */
export function typeScriptToJs(source: string, file: string): string {
  if (cached === undefined) cached = findTransform();
  if (cached === null) {
    throw new TypeError(`ray.importModule: ${file} is TypeScript and no TypeScript transformer resolves from ${process.cwd()} ` +
      '(tried esbuild and tsx\'s esbuild, typescript, node:module stripTypeScriptTypes): install tsx (npm install -D tsx) ' +
      'and run the driver under it (tsx driver.ts, or node --import tsx driver.ts)');
  }
  return cached(source, file);
}
