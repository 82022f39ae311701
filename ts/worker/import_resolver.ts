// Import resolution for `await import(x)` inside remote functions and actor
// classes (worker side). compileFunction() (source.ts) rewrites every
// ImportExpression into a call of an ImportResolver; createImportResolver()
// is the worker's: 'rayts' -> its API; other specifiers resolve from the
// working directory, via createRequire and then the package's ESM "exports".
// import.meta is not used so this file also builds as CommonJS.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Loads a module for `await import(specifier)` inside a remote function. */
export type ImportResolver = (specifier: string) => Promise<unknown>;

export interface ImportResolverOptions {
  /** What `import('rayts')` returns (the worker's bound API). */
  api?: unknown;
  /** Directory bare and relative specifiers resolve from. Default process.cwd(). */
  cwd?: string;
  /** Files that are the rayts entry point itself (import them -> `api`). */
  apiFiles?: string[];
}

type ExportsTarget = string | null | ExportsTarget[] | { [condition: string]: ExportsTarget };

function pickCondition(t: ExportsTarget | undefined): string | undefined {
  if (t === undefined || t === null) return undefined;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    for (const item of t) {
      const r = pickCondition(item);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  for (const condition of ['node', 'import', 'default']) {
    if (Object.hasOwn(t, condition)) {
      const r = pickCondition(t[condition]);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/**
 * ESM resolution of a bare specifier from `cwd`, for packages whose
 * "exports" have no "require" condition (which createRequire cannot
 * resolve). Handles exact subpaths and conditions, not subpath patterns.
 */
function resolveEsmPackage(specifier: string, cwd: string): string | undefined {
  const m = /^((?:@[^/]+\/)?[^/]+)(\/.*)?$/.exec(specifier);
  if (m === null) return undefined;
  const name = m[1]!;
  const subpath = `.${m[2] ?? ''}`;
  for (let dir = cwd; ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    const pkgJson = path.join(pkgDir, 'package.json');
    if (existsSync(pkgJson)) {
      const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports?: ExportsTarget; main?: string };
      let target: string | undefined;
      const exp = pkg.exports;
      if (exp !== undefined) {
        const sugar = typeof exp === 'string' || Array.isArray(exp) || exp === null || !Object.keys(exp).some((k) => k.startsWith('.'));
        target = pickCondition(sugar ? (subpath === '.' ? exp : undefined) : (exp as Record<string, ExportsTarget>)[subpath]);
      } else {
        target = subpath === '.' ? (pkg.main ?? 'index.js') : subpath;
      }
      return target === undefined ? undefined : pathToFileURL(path.join(pkgDir, target)).href;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * The resolver a worker uses: 'rayts' gives `api`, node builtins load
 * directly, anything else resolves as it would from `cwd` (CommonJS
 * resolution first, then the package's ESM "exports", then a plain
 * import()).
 */
export function createImportResolver(options: ImportResolverOptions = {}): ImportResolver {
  const cwd = options.cwd ?? process.cwd();
  const require = createRequire(path.join(cwd, 'noop.js'));
  return async (specifier: string): Promise<unknown> => {
    if (specifier === 'rayts' && options.api !== undefined) return options.api;
    if (isBuiltin(specifier) || specifier.startsWith('node:') || specifier.startsWith('file:') || specifier.startsWith('data:')) {
      return import(specifier);
    }
    if (specifier.startsWith('./') || specifier.startsWith('../') || path.isAbsolute(specifier)) {
      let file = path.resolve(cwd, specifier);
      // Vite/vitest rewrite import('rayts') to a root-relative path such as
      // '/dist/esm/index.js': try it under the working directory.
      if (path.isAbsolute(specifier) && !existsSync(file) && existsSync(path.join(cwd, specifier))) {
        file = path.join(cwd, specifier);
      }
      if (options.api !== undefined && options.apiFiles?.includes(file)) return options.api;
      return import(pathToFileURL(file).href);
    }
    let resolved: string | undefined;
    try {
      resolved = pathToFileURL(require.resolve(specifier)).href;
    } catch {
      resolved = resolveEsmPackage(specifier, cwd);
    }
    return import(resolved ?? specifier);
  };
}
