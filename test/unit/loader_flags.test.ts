// The driver's module loader flags (tsx) that its workers are started with,
// and which files count as TypeScript modules.
import { describe, expect, it } from 'vitest';
import { loaderArgs } from '../../ts/runtime/loader_flags.js';
import { isTypeScriptFile } from '../../ts/codec/typescript_source.js';

describe('loaderArgs', () => {
  it('keeps the loader flags of tsx (CLI and --import forms) and drops the rest', () => {
    expect(loaderArgs(['--require', '/n/tsx/dist/preflight.cjs', '--import', 'file:///n/tsx/dist/loader.mjs'], '/app'))
      .toEqual(['--require', '/n/tsx/dist/preflight.cjs', '--import', 'file:///n/tsx/dist/loader.mjs']);
    expect(loaderArgs(['--import', 'tsx', '--max-old-space-size=100', '--conditions', 'development', '--inspect'], '/app'))
      .toEqual(['--import', 'tsx']);
    expect(loaderArgs(['--import=tsx', '--experimental-strip-types', '-r', 'ts-node/register'], '/app'))
      .toEqual(['--import', 'tsx', '--experimental-strip-types', '-r', 'ts-node/register']);
  });

  it('makes relative module paths absolute (workers may run in another directory)', () => {
    expect(loaderArgs(['--import', './hooks/register.mjs', '--require=../setup.cjs'], '/app/svc'))
      .toEqual(['--import', 'file:///app/svc/hooks/register.mjs', '--require', '/app/setup.cjs']);
  });

  it('a flag without its value at the end is dropped', () => {
    expect(loaderArgs(['--import'], '/app')).toEqual([]);
  });
});

describe('isTypeScriptFile', () => {
  it('knows the TypeScript extensions', () => {
    expect(['a.ts', 'a.mts', 'a.cts', 'a.tsx', 'file:///x/a.ts'].map(isTypeScriptFile)).toEqual([true, true, true, true, true]);
    expect(['a.js', 'a.mjs', 'a.d.ts.map', 'ts'].map(isTypeScriptFile)).toEqual([false, false, false, false]);
  });
});
