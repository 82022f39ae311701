#!/usr/bin/env node
// Checks that the TypeScript declaration of the native addon lists exactly
// what the addon registers, so a method added, renamed or removed on one side
// cannot go unnoticed until a call fails at run time.
//
// C++ side (bindings/**/*.{cc,h}, comments stripped):
//   DefineClass(env, "Cls", { InstanceMethod("m", ...), InstanceAccessor("a", ...), InstanceValue("v", ...) })
//     -> members of native class Cls
//   exports.Set("x", ...) -> members of the addon's module object
// TypeScript side (ts/**/*.ts, parsed with the TypeScript compiler):
//   interface Cls { ... }   for each native class Cls (found by name wherever it lives under ts/)
//   interface Addon { ... } for the module object
// A method must be declared as a method (or a function-typed property), an
// accessor or value as a non-function property. Every member present on one
// side only, or declared with the wrong kind, is listed; the exit code is 1
// if there is any.
//
// Usage: node scripts/check-native-signatures.mjs [--root DIR]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ts = require('typescript');

const args = process.argv.slice(2);
const rootArg = args.indexOf('--root');
const ROOT = rootArg >= 0 ? path.resolve(args[rootArg + 1]) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADDON_INTERFACE = 'Addon';

const problems = [];
const rel = (f) => path.relative(ROOT, f);

function walk(dir, keep) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, keep));
    else if (keep(name)) out.push(p);
  }
  return out;
}

// ---- C++ -------------------------------------------------------------------

/** The source with comments replaced by spaces (newlines kept), string literals intact. */
function stripComments(src) {
  let out = '';
  for (let i = 0; i < src.length;) {
    const c = src[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') { out += ' '; i++; }
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const lineOf = (src, index) => src.slice(0, index).split('\n').length;

/** Index just past the bracket that closes the one at `open` (string literals skipped). */
function closing(src, open) {
  const pairs = { '(': ')', '{': '}', '[': ']' };
  const stack = [];
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      i = j;
    } else if (pairs[c]) {
      stack.push(pairs[c]);
    } else if (c === stack[stack.length - 1]) {
      stack.pop();
      if (stack.length === 0) return i + 1;
    }
  }
  return src.length;
}

/** Map name -> { kind, where } per native class, plus the module exports. */
function nativeSurface() {
  const classes = new Map();
  const exportsSet = new Map();
  const files = walk(path.join(ROOT, 'bindings'), (n) => /\.(cc|h|hpp|cpp)$/.test(n));
  if (files.length === 0) problems.push('no C++ sources found under bindings/');
  for (const file of files) {
    const src = stripComments(readFileSync(file, 'utf8'));
    const where = (i) => `${rel(file)}:${lineOf(src, i)}`;

    for (const m of src.matchAll(/\bDefineClass\s*\(/g)) {
      const open = m.index + m[0].length - 1;
      const body = src.slice(open, closing(src, open));
      const name = /^\(\s*\w+\s*,\s*"([^"]+)"/.exec(body);
      if (!name) {
        problems.push(`${where(m.index)}: DefineClass without a string-literal class name; cannot check it`);
        continue;
      }
      if (classes.has(name[1])) problems.push(`${where(m.index)}: native class ${name[1]} is defined twice`);
      const members = new Map();
      classes.set(name[1], { members, where: where(m.index) });
      for (const r of body.matchAll(/\b(Instance|Static)(Method|Accessor|Value)\s*(?:<[^>]*>\s*)?\(\s*("([^"]*)")?/g)) {
        const at = where(open + r.index);
        if (r[1] === 'Static') {
          problems.push(`${at}: Static${r[2]} is not covered by this check yet; extend scripts/check-native-signatures.mjs`);
          continue;
        }
        if (r[4] === undefined) {
          problems.push(`${at}: Instance${r[2]} without a string-literal name; cannot check it`);
          continue;
        }
        if (members.has(r[4])) problems.push(`${at}: ${name[1]}.${r[4]} is registered twice`);
        members.set(r[4], { kind: r[2] === 'Method' ? 'method' : 'property', where: at });
      }
    }

    for (const m of src.matchAll(/\bexports\s*(\.|->)\s*(\w+)\s*\(\s*("([^"]*)")?/g)) {
      const at = where(m.index);
      if (m[2] !== 'Set') {
        problems.push(`${at}: exports.${m[2]}(...) is not covered by this check; use exports.Set("name", ...) or extend the script`);
        continue;
      }
      if (m[4] === undefined) {
        problems.push(`${at}: exports.Set without a string-literal name; cannot check it`);
        continue;
      }
      if (exportsSet.has(m[4])) problems.push(`${at}: export ${m[4]} is set twice`);
      exportsSet.set(m[4], { kind: 'any', where: at });
    }
  }
  return { classes, exportsSet };
}

// ---- TypeScript ------------------------------------------------------------

/** interface name -> [{ file, node, sourceFile }] over ts/**. */
function tsInterfaces() {
  const found = new Map();
  for (const file of walk(path.join(ROOT, 'ts'), (n) => n.endsWith('.ts'))) {
    const text = readFileSync(file, 'utf8');
    if (!text.includes('interface')) continue;
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isInterfaceDeclaration(node)) {
        const list = found.get(node.name.text) ?? [];
        list.push({ file, node, sf });
        found.set(node.name.text, list);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

function isFunctionType(t) {
  if (!t) return false;
  if (ts.isParenthesizedTypeNode(t)) return isFunctionType(t.type);
  return ts.isFunctionTypeNode(t) || ts.isConstructorTypeNode(t);
}

function memberName(m, sf) {
  if (!m.name) return undefined;
  if (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name) || ts.isNumericLiteral(m.name)) return m.name.text;
  return m.name.getText(sf);
}

/**
 * Members of interface `name` (with those of interfaces it extends, by name),
 * or undefined if absent. Several interfaces of that name: the one in
 * `preferFile` if there is one there, else an error.
 */
function declaredMembers(interfaces, name, preferFile = undefined, seen = new Set()) {
  let decls = interfaces.get(name);
  if (!decls) return undefined;
  if (decls.length > 1 && preferFile) {
    const here = decls.filter((d) => d.file === preferFile);
    if (here.length > 0) decls = here;
  }
  if (decls.length > 1) {
    problems.push(`interface ${name} is declared more than once under ts/ (${decls.map((d) => rel(d.file)).join(', ')}); cannot tell which one describes the addon`);
  }
  const { file, node, sf } = decls[0];
  const members = new Map();
  seen.add(name);
  for (const h of node.heritageClauses ?? []) {
    for (const t of h.types) {
      const base = t.expression.getText(sf);
      if (seen.has(base)) continue;
      const inherited = declaredMembers(interfaces, base, file, seen);
      if (inherited) for (const [k, v] of inherited.members) members.set(k, v);
      else problems.push(`${rel(file)}: interface ${name} extends ${base}, which is not an interface under ts/`);
    }
  }
  for (const m of node.members) {
    const n = memberName(m, sf);
    if (n === undefined) continue; // call/construct/index signatures
    const at = `${rel(file)}:${sf.getLineAndCharacterOfPosition(m.getStart(sf)).line + 1}`;
    let kind;
    if (ts.isMethodSignature(m)) kind = 'method';
    else if (ts.isPropertySignature(m)) kind = isFunctionType(m.type) ? 'method' : 'property';
    else if (ts.isGetAccessorDeclaration(m) || ts.isSetAccessorDeclaration(m)) kind = 'property';
    else continue;
    members.set(n, { kind, where: at });
  }
  return { file, members };
}

// ---- compare ---------------------------------------------------------------

function compare(label, registered, declared, declaredIn) {
  for (const [name, r] of registered) {
    const d = declared.get(name);
    if (!d) {
      problems.push(`${label}.${name}: registered at ${r.where} but not declared in ${declaredIn}`);
    } else if (r.kind !== 'any' && d.kind !== r.kind) {
      problems.push(`${label}.${name}: registered as a ${r.kind} at ${r.where} but declared as a ${d.kind} at ${d.where}`);
    }
  }
  for (const [name, d] of declared) {
    if (!registered.has(name)) problems.push(`${label}.${name}: declared at ${d.where} but not registered by the addon (bindings/)`);
  }
}

const { classes, exportsSet } = nativeSurface();
const interfaces = tsInterfaces();
let checked = 0;
let nativeFile; // where the class interfaces live: the Addon interface is looked for there first

for (const [cls, { members, where }] of classes) {
  const decl = declaredMembers(interfaces, cls);
  if (!decl) {
    problems.push(`native class ${cls} (${where}) has no \`interface ${cls}\` under ts/`);
    continue;
  }
  nativeFile ??= decl.file;
  compare(cls, members, decl.members, `interface ${cls} (${rel(decl.file)})`);
  checked += members.size;
}

const addon = declaredMembers(interfaces, ADDON_INTERFACE, nativeFile);
if (!addon) {
  problems.push(`no \`interface ${ADDON_INTERFACE}\` under ts/ describing the module object`);
} else {
  compare(ADDON_INTERFACE, exportsSet, addon.members, `interface ${ADDON_INTERFACE} (${rel(addon.file)})`);
  checked += exportsSet.size;
}

if (problems.length > 0) {
  console.error(`check-native-signatures: ${problems.length} mismatch(es) between bindings/ and ts/:`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`check-native-signatures: ok (${classes.size} classes and the module object, ${checked} registered names, all declared)`);
