// The public types: remote functions and actor handles are typed from the
// function/class (a wrong argument type is a compile error).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');

describe('type-level API checks', () => {
  it('test/types compiles, and every @ts-expect-error there is a real type error', () => {
    const tsc = createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
    let out = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', path.join(root, 'test', 'types', 'tsconfig.json')], { cwd: root, encoding: 'utf8' });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(out).toBe('');
  }, 60_000);
});
