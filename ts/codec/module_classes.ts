// Module mode: the classes a module file exports and their methods, read
// from its source (the driver never imports the module; its workers do).
import { parse } from 'acorn';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isTypeScriptFile, typeScriptToJs } from './typescript_source.js';

/** Loose ESTree node: acorn's output, walked generically. */
interface EsNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

/** In a module class's method set: names not listed may exist too (an unseen base class). */
export const ANY_METHOD = '*';

/**
 * Exported classes of an ES module file and their method names, read from
 * its source with acorn (module mode: the driver never imports the module).
 * Handles `export class X {}`, `export default class X {}` (as 'default')
 * and `export { X, Y as Z }` of classes declared in the file. A file that
 * cannot be read or parsed yields no classes (its exports stay functions).
 * A `.ts` file is compiled to JavaScript first (typescript_source.ts).
 */
export function exportedClasses(href: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let program: EsNode;
  const file = href.startsWith('file:') ? fileURLToPath(href) : href;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  // A TypeScript module is read as the JavaScript it compiles to (a missing
  // transformer is an error naming what to install, not "no classes").
  if (isTypeScriptFile(file)) text = typeScriptToJs(text, file);
  try {
    program = parse(text, { ecmaVersion: 'latest', sourceType: 'module' }) as unknown as EsNode;
  } catch {
    return out;
  }
  const declared = new Map<string, EsNode>();
  for (const node of program.body as EsNode[]) {
    if (node.type === 'ClassDeclaration' && node.id) declared.set((node.id as EsNode).name as string, node);
    const decl = node.declaration as EsNode | null | undefined;
    if ((node.type === 'ExportNamedDeclaration' || node.type === 'ExportDefaultDeclaration') &&
        decl?.type === 'ClassDeclaration' && decl.id) {
      declared.set((decl.id as EsNode).name as string, decl);
    }
  }
  // Own methods, then those of base classes declared in this module. A base
  // class this file cannot see (imported, or an expression) makes the set
  // open (ANY_METHOD): the worker, which has the class, checks the name.
  const methodsOf = (cls: EsNode): Set<string> => {
    const names = new Set<string>();
    const seen = new Set<EsNode>();
    for (let c: EsNode | undefined = cls; c && !seen.has(c);) {
      seen.add(c);
      for (const m of (c.body as EsNode).body as EsNode[]) {
        if (m.type !== 'MethodDefinition' || m.static || m.kind !== 'method') continue;
        const key = m.key as EsNode;
        if (key.type === 'Identifier') names.add(key.name as string);
        else if (key.type === 'Literal') names.add(String(key.value));
      }
      const sup = c.superClass as EsNode | null | undefined;
      if (!sup) break;
      c = sup.type === 'Identifier' ? declared.get(sup.name as string) : undefined;
      if (!c) names.add(ANY_METHOD);
    }
    return names;
  };
  for (const node of program.body as EsNode[]) {
    if (node.type === 'ExportNamedDeclaration') {
      const decl = node.declaration as EsNode | null;
      if (decl?.type === 'ClassDeclaration' && decl.id) out.set((decl.id as EsNode).name as string, methodsOf(decl));
      for (const spec of (node.specifiers as EsNode[] | undefined) ?? []) {
        const local = (spec.local as EsNode).name as string;
        const exported = spec.exported as EsNode;
        const cls = declared.get(local);
        if (cls) out.set((exported.name as string) ?? String(exported.value), methodsOf(cls));
      }
    } else if (node.type === 'ExportDefaultDeclaration') {
      const decl = node.declaration as EsNode;
      if (decl.type === 'ClassDeclaration' || decl.type === 'ClassExpression') out.set('default', methodsOf(decl));
    }
  }
  return out;
}
