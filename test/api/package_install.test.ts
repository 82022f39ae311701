// The package as a user gets it: scripts/test-package.mjs packs the project,
// installs the tarball into a fresh folder and runs a task and an actor from
// ESM, CommonJS and TypeScript (tsx, importModule of a .ts module). Without
// prebuilt addons in the checkout (CI) the installed package gets this
// checkout's build/Release addon in their place.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');

describe('npm pack, install into a fresh folder, run', () => {
  it('runs a task from ESM, CommonJS and tsx, and the package types compile', () => {
    const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'rayts_native.node');
    const args = existsSync(prebuilt) ? [] : ['--addon', path.join(root, 'build', 'Release', 'rayts_native.node')];
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'test-package.mjs'), ...args],
      { cwd: root, encoding: 'utf8', timeout: 240_000 });
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('FAIL')), r.stderr).toEqual([]);
    expect(lines.filter((l) => l.startsWith('ok ')).map((l) => /^ok {3}(.*?) \(\d+ ms\)/.exec(l)?.[1])).toEqual([
      'npm pack',
      'npm install of the tarball into a fresh folder',
      'ESM: import * as ray from "rayts"',
      'CommonJS: require("rayts")',
      'TypeScript: tsx driver.ts with importModule of tasks.ts',
      'TypeScript: the package types compile (tsc --noEmit, strict)',
    ]);
    expect(lines.at(-1)).toBe('6 passed, 0 failed');
    expect(r.status).toBe(0);
  }, 240_000);
});
