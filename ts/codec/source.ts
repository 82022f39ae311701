// Function shipping: remote functions and actor classes travel to workers as
// source text, so they must be self-contained.
//
// Driver side:
// - functionSource(fn) turns fn.toString() into a standalone expression
//   (method shorthand `foo(a) {}` becomes `function foo(a) {}`), hashes it
//   (sha1, cached per function) and rejects native and bound functions.
// - freeVariables(source) finds identifiers the function reads but neither
//   declares nor gets from the global object of a fresh worker (or the
//   build helpers of build_helpers.ts); checkSelfContained(fn) turns a
//   non-empty answer into a TypeError that names the variable.
// - exportedClasses(href), in module_classes.ts, reads a module's exported
//   classes (ray.importModule()).
// Worker side:
// - compileFunction(source, resolver) compiles the source with vm.Script.
//   `import(x)` inside it goes through `resolver`: on Node 20 a
//   vm importModuleDynamically *callback* needs --experimental-vm-modules
//   (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG) and
//   vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER is experimental (warns) and
//   cannot map 'rayts' to the worker's API, so instead every ImportExpression
//   is rewritten (positions from acorn) into a call of a function bound in a
//   wrapper scope. The worker's resolver is createImportResolver()
//   (import_resolver.ts). Vitest rewrites import() in test files to
//   __vite_ssr_dynamic_import__(), which is bound to the same function.
// Build helpers (BUILD_HELPER_NAMES, BUILD_HELPERS_SOURCE,
// installBuildHelpers()) live in build_helpers.ts.

import { parse } from 'acorn';
import { createHash } from 'node:crypto';
import * as vm from 'node:vm';
import { BUILD_HELPER_NAMES } from '../worker/build_helpers.js';
import type { ImportResolver } from '../worker/import_resolver.js';

export interface FunctionSource {
  /** A JavaScript expression that evaluates to the function (or class). */
  source: string;
  /** sha1 hex of `source`. */
  hash: string;
  name: string;
}

/** Loose ESTree node: acorn's output, walked generically. */
interface EsNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

const PARSE_OPTIONS = { ecmaVersion: 'latest', sourceType: 'script', allowHashBang: false } as const;

function parseExpression(source: string): EsNode {
  const program = parse(`(${source}\n)`, PARSE_OPTIONS) as unknown as EsNode;
  const body = program.body as EsNode[];
  if (body.length !== 1 || body[0]!.type !== 'ExpressionStatement') {
    throw new SyntaxError('source is not a single expression');
  }
  return body[0]!.expression as EsNode;
}

// ---------------------------------------------------------------------------
// functionSource

const sourceCache = new WeakMap<object, FunctionSource>();

function isExpression(src: string): boolean {
  try {
    parseExpression(src);
    return true;
  } catch {
    return false;
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `foo(a) {}` / `async *foo() {}` / `get foo() {}` -> a function expression. */
function methodToFunction(src: string, fnName: string): string {
  let prop: EsNode;
  try {
    const obj = parseExpression(`{${src}}`);
    const props = obj.properties as EsNode[];
    if (obj.type !== 'ObjectExpression' || props.length !== 1) throw new SyntaxError('not a method');
    prop = props[0]!;
  } catch {
    throw new TypeError(`cannot ship function '${fnName}': its source is neither a function expression nor a method`);
  }
  const value = prop.value as EsNode;
  // parseExpression wraps in `(` and the object literal adds `{`.
  const rest = src.slice(value.start - 2);
  const head = `${value.async === true ? 'async ' : ''}function${value.generator === true ? '*' : ''}`;
  const anonymous = `${head} ${rest}`;
  if (!isExpression(anonymous)) {
    throw new TypeError(`cannot ship method '${fnName}': it uses 'super', which only works inside its class or object literal`);
  }
  const key = prop.key as EsNode;
  const name = prop.computed !== true && key.type === 'Identifier' ? (key.name as string) : undefined;
  if (name === undefined || !IDENTIFIER.test(name)) return anonymous;
  const named = `${head} ${name}${rest}`;
  // A method's name is not bound inside its body; naming the function would
  // shadow an outer binding of that name, so only name it when that is moot.
  if (!isExpression(named) || unresolved(anonymous, new Set()).includes(name)) return anonymous;
  return named;
}

/**
 * The source of `fn` as a standalone expression, its sha1 and its name.
 * Throws a TypeError for native and bound functions.
 */
export function functionSource(fn: Function): FunctionSource {
  const cached = sourceCache.get(fn);
  if (cached !== undefined) return cached;
  if (typeof fn !== 'function') throw new TypeError(`expected a function, got ${typeof fn}`);
  const name = fn.name;
  const raw = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(raw)) {
    if (name.startsWith('bound ')) {
      throw new TypeError(
        `cannot ship bound function '${name.slice(6) || 'anonymous'}': bound functions have no source; pass the bound values as arguments instead`,
      );
    }
    throw new TypeError(`cannot ship native function '${name || 'anonymous'}': it has no JavaScript source`);
  }
  const source = isExpression(raw) ? raw : methodToFunction(raw, name || 'anonymous');
  const result: FunctionSource = { source, hash: createHash('sha1').update(source).digest('hex'), name };
  sourceCache.set(fn, result);
  return result;
}

// ---------------------------------------------------------------------------
// freeVariables

const DYNAMIC_IMPORT_ALIAS = '__vite_ssr_dynamic_import__';

function freshGlobalNames(): string[] {
  try {
    return vm.runInNewContext('Object.getOwnPropertyNames(globalThis)') as string[];
  } catch {
    return [];
  }
}

/** Names a worker's global scope provides (static: computed once at load). */
export const KNOWN_GLOBALS: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(globalThis),
  ...freshGlobalNames(),
  'require',
  'module',
  'exports',
  '__dirname',
  '__filename',
  'arguments',
  'undefined',
  'NaN',
  'Infinity',
  ...BUILD_HELPER_NAMES,
]);

class Scope {
  readonly names = new Set<string>();
  constructor(readonly parent: Scope | undefined) {}
  resolves(name: string): boolean {
    for (let s: Scope | undefined = this; s !== undefined; s = s.parent) if (s.names.has(name)) return true;
    return false;
  }
}

function isNode(v: unknown): v is EsNode {
  return typeof v === 'object' && v !== null && typeof (v as EsNode).type === 'string';
}

function childNodes(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const key in node) {
    if (key === 'type' || key === 'start' || key === 'end' || key === 'loc' || key === 'range') continue;
    const v = node[key];
    if (Array.isArray(v)) {
      for (const item of v) if (isNode(item)) out.push(item);
    } else if (isNode(v)) out.push(v);
  }
  return out;
}

function patternNames(p: EsNode | null, out: Set<string>): void {
  if (p === null) return;
  switch (p.type) {
    case 'Identifier':
      out.add(p.name as string);
      return;
    case 'ObjectPattern':
      for (const prop of p.properties as EsNode[]) patternNames(prop.type === 'RestElement' ? prop : (prop.value as EsNode), out);
      return;
    case 'ArrayPattern':
      for (const el of p.elements as (EsNode | null)[]) patternNames(el, out);
      return;
    case 'RestElement':
      patternNames(p.argument as EsNode, out);
      return;
    case 'AssignmentPattern':
      patternNames(p.left as EsNode, out);
      return;
    default:
      return;
  }
}

const FUNCTION_TYPES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

/** `var` declarations (and, as in sloppy mode, nested function declarations) of a function body. */
function hoistVars(node: EsNode, scope: Scope): void {
  for (const child of childNodes(node)) {
    if (child.type === 'FunctionDeclaration') {
      if (isNode(child.id)) scope.names.add(child.id.name as string);
      continue;
    }
    if (FUNCTION_TYPES.has(child.type) || child.type === 'ClassDeclaration' || child.type === 'ClassExpression') continue;
    if (child.type === 'VariableDeclaration' && child.kind === 'var') {
      for (const d of child.declarations as EsNode[]) patternNames(d.id as EsNode, scope.names);
    }
    hoistVars(child, scope);
  }
}

function declareLexical(statements: EsNode[], scope: Scope): void {
  for (const s of statements) {
    if (s.type === 'VariableDeclaration' && s.kind !== 'var') {
      for (const d of s.declarations as EsNode[]) patternNames(d.id as EsNode, scope.names);
    } else if ((s.type === 'ClassDeclaration' || s.type === 'FunctionDeclaration') && isNode(s.id)) {
      scope.names.add(s.id.name as string);
    }
  }
}

class FreeVariableFinder {
  readonly free: string[] = [];
  private readonly seen = new Set<string>();
  constructor(private readonly globals: ReadonlySet<string>) {}

  ref(name: string, scope: Scope): void {
    if (scope.resolves(name) || this.globals.has(name) || this.seen.has(name)) return;
    this.seen.add(name);
    this.free.push(name);
  }

  /** Default values and computed keys inside a binding pattern. */
  patternExprs(p: EsNode | null, scope: Scope): void {
    if (p === null) return;
    switch (p.type) {
      case 'ObjectPattern':
        for (const prop of p.properties as EsNode[]) {
          if (prop.type === 'RestElement') this.patternExprs(prop.argument as EsNode, scope);
          else {
            if (prop.computed === true) this.visit(prop.key as EsNode, scope);
            this.patternExprs(prop.value as EsNode, scope);
          }
        }
        return;
      case 'ArrayPattern':
        for (const el of p.elements as (EsNode | null)[]) this.patternExprs(el, scope);
        return;
      case 'RestElement':
        this.patternExprs(p.argument as EsNode, scope);
        return;
      case 'AssignmentPattern':
        this.patternExprs(p.left as EsNode, scope);
        this.visit(p.right as EsNode, scope);
        return;
      case 'MemberExpression':
        this.visit(p, scope);
        return;
      default:
        return;
    }
  }

  /** Target of an assignment (`[a, b.c] = ...`): identifiers in it are references. */
  assignTarget(p: EsNode | null, scope: Scope): void {
    if (p === null) return;
    switch (p.type) {
      case 'Identifier':
        this.ref(p.name as string, scope);
        return;
      case 'ObjectPattern':
        for (const prop of p.properties as EsNode[]) {
          if (prop.type === 'RestElement') this.assignTarget(prop.argument as EsNode, scope);
          else {
            if (prop.computed === true) this.visit(prop.key as EsNode, scope);
            this.assignTarget(prop.value as EsNode, scope);
          }
        }
        return;
      case 'ArrayPattern':
        for (const el of p.elements as (EsNode | null)[]) this.assignTarget(el, scope);
        return;
      case 'RestElement':
        this.assignTarget(p.argument as EsNode, scope);
        return;
      case 'AssignmentPattern':
        this.assignTarget(p.left as EsNode, scope);
        this.visit(p.right as EsNode, scope);
        return;
      default:
        this.visit(p, scope);
    }
  }

  visitFunction(fn: EsNode, outer: Scope): void {
    let scope = outer;
    if (fn.type === 'FunctionExpression' && isNode(fn.id)) {
      scope = new Scope(scope);
      scope.names.add(fn.id.name as string);
    }
    const inner = new Scope(scope);
    if (fn.type !== 'ArrowFunctionExpression') inner.names.add('arguments');
    const params = fn.params as EsNode[];
    for (const p of params) patternNames(p, inner.names);
    const body = fn.body as EsNode;
    if (body.type === 'BlockStatement') {
      hoistVars(body, inner);
      declareLexical(body.body as EsNode[], inner);
    }
    for (const p of params) this.patternExprs(p, inner);
    if (body.type === 'BlockStatement') for (const s of body.body as EsNode[]) this.visit(s, inner);
    else this.visit(body, inner);
  }

  visitClass(cls: EsNode, outer: Scope): void {
    const scope = new Scope(outer);
    if (isNode(cls.id)) scope.names.add(cls.id.name as string);
    if (isNode(cls.superClass)) this.visit(cls.superClass, scope);
    for (const member of (cls.body as EsNode).body as EsNode[]) this.visit(member, scope);
  }

  visitBlock(statements: EsNode[], outer: Scope): void {
    const scope = new Scope(outer);
    declareLexical(statements, scope);
    for (const s of statements) this.visit(s, scope);
  }

  visit(node: EsNode, scope: Scope): void {
    switch (node.type) {
      case 'Identifier':
        this.ref(node.name as string, scope);
        return;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        this.visitFunction(node, scope);
        return;
      case 'ClassDeclaration':
      case 'ClassExpression':
        this.visitClass(node, scope);
        return;
      case 'VariableDeclaration':
        for (const d of node.declarations as EsNode[]) {
          this.patternExprs(d.id as EsNode, scope);
          if (isNode(d.init)) this.visit(d.init, scope);
        }
        return;
      case 'MemberExpression':
        this.visit(node.object as EsNode, scope);
        if (node.computed === true) this.visit(node.property as EsNode, scope);
        return;
      case 'Property':
      case 'PropertyDefinition':
      case 'MethodDefinition':
        if (node.computed === true) this.visit(node.key as EsNode, scope);
        if (isNode(node.value)) this.visit(node.value, scope);
        return;
      case 'LabeledStatement':
        this.visit(node.body as EsNode, scope);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
      case 'MetaProperty':
      case 'ThisExpression':
      case 'Super':
      case 'Literal':
      case 'PrivateIdentifier':
        return;
      case 'BlockStatement':
        this.visitBlock(node.body as EsNode[], scope);
        return;
      case 'StaticBlock': {
        const s = new Scope(scope);
        hoistVars(node, s);
        this.visitBlock(node.body as EsNode[], s);
        return;
      }
      case 'ForStatement': {
        const s = new Scope(scope);
        if (isNode(node.init) && node.init.type === 'VariableDeclaration') declareLexical([node.init], s);
        for (const key of ['init', 'test', 'update', 'body'] as const) {
          const child = node[key];
          if (isNode(child)) this.visit(child, s);
        }
        return;
      }
      case 'ForInStatement':
      case 'ForOfStatement': {
        const s = new Scope(scope);
        const left = node.left as EsNode;
        if (left.type === 'VariableDeclaration') {
          declareLexical([left], s);
          for (const d of left.declarations as EsNode[]) this.patternExprs(d.id as EsNode, s);
        } else this.assignTarget(left, s);
        this.visit(node.right as EsNode, s);
        this.visit(node.body as EsNode, s);
        return;
      }
      case 'CatchClause': {
        const s = new Scope(scope);
        const param = node.param as EsNode | null;
        patternNames(param, s.names);
        this.patternExprs(param, s);
        this.visit(node.body as EsNode, s);
        return;
      }
      case 'SwitchStatement': {
        this.visit(node.discriminant as EsNode, scope);
        const s = new Scope(scope);
        const cases = node.cases as EsNode[];
        declareLexical(
          cases.flatMap((c) => c.consequent as EsNode[]),
          s,
        );
        for (const c of cases) {
          if (isNode(c.test)) this.visit(c.test, s);
          for (const st of c.consequent as EsNode[]) this.visit(st, s);
        }
        return;
      }
      case 'AssignmentExpression':
        this.assignTarget(node.left as EsNode, scope);
        this.visit(node.right as EsNode, scope);
        return;
      default:
        for (const child of childNodes(node)) this.visit(child, scope);
    }
  }
}

/**
 * Identifiers `source` (a function or class expression) reads or writes
 * without declaring them, excluding worker globals and build helpers, in
 * order of first use.
 */
export function freeVariables(source: string): string[] {
  return unresolved(source, KNOWN_GLOBALS);
}

function unresolved(source: string, globals: ReadonlySet<string>): string[] {
  const expr = parseExpression(source);
  const finder = new FreeVariableFinder(globals);
  finder.visit(expr, new Scope(undefined));
  return finder.free;
}

/**
 * Throws a TypeError when `fn` reads a variable captured from its defining
 * scope (it would not exist in the worker). Returns its FunctionSource.
 */
export function checkSelfContained(fn: Function): FunctionSource {
  const src = functionSource(fn);
  const free = freeVariables(src.source);
  if (free.length > 0) {
    const isClass = /^class\b/.test(src.source);
    const what = isClass ? 'actor class' : 'remote function';
    const vars = free.map((v) => `'${v}'`).join(', ');
    throw new TypeError(
      `${what} '${src.name || 'anonymous'}' reads captured variable${free.length > 1 ? 's' : ''} ${vars}: ` +
        `${isClass ? 'actor classes' : 'remote functions'} must be self-contained ` +
        `(move it inside the ${isClass ? 'class' : 'function'}, pass it as an argument, or import it with await import())`,
    );
  }
  return src;
}

// ---------------------------------------------------------------------------
// Worker side

const IMPORT_FN = '__rayts_dynamic_import__';

/** Replaces every `import(` of the expression with a call of IMPORT_FN. */
function rewriteDynamicImports(source: string): string {
  const expr = parseExpression(source);
  const starts: number[] = [];
  const walk = (node: EsNode): void => {
    if (node.type === 'ImportExpression') starts.push(node.start - 1); // -1: the '(' parseExpression adds
    for (const child of childNodes(node)) walk(child);
  };
  walk(expr);
  if (starts.length === 0) return source;
  starts.sort((a, b) => b - a);
  let out = source;
  for (const s of starts) out = `${out.slice(0, s)}${IMPORT_FN}${out.slice(s + 'import'.length)}`;
  return out;
}

export interface CompileOptions {
  /** File name shown in stack traces. */
  filename?: string;
}

/**
 * Compiles a function (or class) expression produced by functionSource().
 * `await import(spec)` inside it calls `resolver(spec)`.
 */
export function compileFunction(source: string, resolver: ImportResolver, options?: CompileOptions): Function {
  const body = rewriteDynamicImports(source);
  const code = `(function (${IMPORT_FN}, ${DYNAMIC_IMPORT_ALIAS}) {\nreturn (${body}\n);\n})`;
  const script = new vm.Script(code, { filename: options?.filename ?? 'rayts:remote-function.js', lineOffset: -1 });
  const factory = script.runInThisContext() as (imp: (s: unknown) => Promise<unknown>, alias: (s: unknown) => Promise<unknown>) => unknown;
  const importFn = (specifier: unknown): Promise<unknown> => {
    try {
      return resolver(String(specifier));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  const fn = factory(importFn, importFn);
  if (typeof fn !== 'function') throw new TypeError(`source does not evaluate to a function: ${source.slice(0, 80)}`);
  return fn as Function;
}

// ---------------------------------------------------------------------------
// Module mode (driver side)
