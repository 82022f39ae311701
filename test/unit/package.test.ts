// What the npm package holds and what its install step does, cheaply (the
// full pack-install-run check is scripts/test-package.mjs; the prebuilt
// addons come from scripts/prebuild.sh).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PREBUILT_TARGETS } from '../../ts/runtime/addon_locator.js';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string>; files: string[];
};

describe('the npm package', () => {
  it('holds the built code, the install step and the sources to build from, and nothing of the checkout', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    for (const f of ['package.json', 'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts',
      'dist/esm/cli/native_build.js', 'scripts/install.mjs', 'CMakeLists.txt', 'core/protocol/messages.fbs']) {
      expect(files, f).toContain(f);
    }
    expect(files.some((f) => f.startsWith('bindings/') && f.endsWith('.cc'))).toBe(true);
    const stray = files.filter((f) => /^(ts|test|build|build-[^/]*|node_modules|bench|docs)\//.test(f) || f.startsWith('scripts/') && f !== 'scripts/install.mjs');
    expect(stray).toEqual([]);
    // Prebuilt addons present in the checkout are packed, and only for known targets.
    const known = PREBUILT_TARGETS.map((t) => `prebuilds/${t.platform}-${t.arch}/rayts_native.node`);
    const present = existsSync(path.join(root, 'prebuilds'))
      ? readdirSync(path.join(root, 'prebuilds')).map((d) => `prebuilds/${d}/rayts_native.node`).filter((f) => existsSync(path.join(root, f)))
      : [];
    expect(files.filter((f) => f.startsWith('prebuilds/')).sort()).toEqual(present.sort());
    for (const f of present) expect(known).toContain(f);
  });

  it('has what a build from source needs as dependencies, not devDependencies', () => {
    expect(pkg.scripts.install).toBe('node scripts/install.mjs');
    expect(Object.keys(pkg.dependencies)).toEqual(expect.arrayContaining(['node-addon-api', 'node-api-headers']));
    expect(Object.keys(pkg.devDependencies)).not.toContain('node-addon-api');
  });
});

describe('scripts/prebuild.sh', () => {
  const script = readFileSync(path.join(root, 'scripts', 'prebuild.sh'), 'utf8');

  it('is valid bash', () => {
    const r = spawnSync('bash', ['-n', path.join(root, 'scripts', 'prebuild.sh')], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('builds exactly the targets the loader knows, for the glibc it promises', () => {
    expect(/^\[ \$\{#targets\[@\]\} -gt 0 \] \|\| targets=\(([a-z0-9 ]+)\)$/m.exec(script)?.[1]?.split(' '))
      .toEqual(PREBUILT_TARGETS.map((t) => t.arch));
    expect(PREBUILT_TARGETS.every((t) => t.platform === 'linux')).toBe(true);
    const maxGlibc = /^MAX_GLIBC=([0-9.]+)$/m.exec(script)?.[1];
    expect(PREBUILT_TARGETS.map((t) => t.minGlibc)).toEqual(PREBUILT_TARGETS.map(() => maxGlibc));
  });
});

describe('scripts/check-prebuilds.mjs (prepublishOnly)', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rayts-prebuilds-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const check = (dir: string): { status: number | null; out: string } => {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'check-prebuilds.mjs'), dir], { encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  };
  // The first 20 bytes of an ELF header: 64-bit little-endian, shared object, machine.
  const elf = (machine: number): Buffer => {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2; b[5] = 1;
    b.writeUInt16LE(3, 16);
    b.writeUInt16LE(machine, 18);
    return b;
  };

  it('is run before npm publish', () => {
    expect(pkg.scripts.prepublishOnly).toBe('node scripts/check-prebuilds.mjs');
  });

  it('fails naming each missing or wrong addon, and passes when both are right', () => {
    const dir = path.join(tmp, 'pkg');
    expect(check(dir)).toEqual({ status: 1, out: expect.stringContaining(
      'prebuilds/linux-x64/rayts_native.node: missing\n  prebuilds/linux-arm64/rayts_native.node: missing\nBuild them: sudo bash scripts/prebuild.sh --check') });
    mkdirSync(path.join(dir, 'prebuilds', 'linux-x64'), { recursive: true });
    mkdirSync(path.join(dir, 'prebuilds', 'linux-arm64'), { recursive: true });
    writeFileSync(path.join(dir, 'prebuilds', 'linux-x64', 'rayts_native.node'), elf(62));
    writeFileSync(path.join(dir, 'prebuilds', 'linux-arm64', 'rayts_native.node'), elf(62));
    const wrongArch = check(dir);
    expect(wrongArch.status).toBe(1);
    expect(wrongArch.out).toContain('prebuilds/linux-arm64/rayts_native.node: built for ELF machine 62, not arm64 (183)');
    expect(wrongArch.out).not.toContain('linux-x64/rayts_native.node:');
    writeFileSync(path.join(dir, 'prebuilds', 'linux-arm64', 'rayts_native.node'), elf(183));
    expect(check(dir)).toEqual({ status: 0, out: 'check-prebuilds: ok (linux-x64, linux-arm64)\n' });
  });
});

describe('scripts/install.mjs', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rayts-install-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('does nothing in a checkout', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install.mjs')], { cwd: root, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('in an installed package without a loadable addon, names each missing tool, its package and the command', () => {
    // An installed layout: dist/ and the install step, no addon, no ts/.
    const app = path.join(tmp, 'app');
    const installed = path.join(app, 'node_modules', 'rayts');
    cpSync(path.join(root, 'dist'), path.join(installed, 'dist'), { recursive: true });
    cpSync(path.join(root, 'scripts', 'install.mjs'), path.join(installed, 'scripts', 'install.mjs'));
    cpSync(path.join(root, 'package.json'), path.join(installed, 'package.json'));
    for (const dep of Object.keys(pkg.dependencies).filter((d) => !d.startsWith('node-a'))) {
      cpSync(path.join(root, 'node_modules', dep), path.join(app, 'node_modules', dep), { recursive: true });
    }
    // No tool on PATH: cmake, make, the compiler and flatc are all missing.
    const r = spawnSync(process.execPath, [path.join(installed, 'scripts', 'install.mjs')],
      { cwd: app, encoding: 'utf8', env: { PATH: path.join(tmp, 'empty-path'), HOME: tmp } });
    expect(r.status).toBe(1);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toMatch(/^rayts: no native addon loads on this platform \(/);
    expect(lines).toContain(`  ${installed}/build/Release/rayts_native.node: missing (source build)`);
    expect(r.stderr).toContain('rayts: cannot build the native addon from source; missing:');
    for (const line of ['  - cmake (3.18 or newer): Debian/Ubuntu package cmake', '  - make: Debian/Ubuntu package make',
      '  - a C++20 compiler (g++ 10 or newer): Debian/Ubuntu package g++',
      '  - flatc, the FlatBuffers compiler: Debian/Ubuntu package flatbuffers-compiler',
      '  - the Node-API headers of the npm package node-addon-api: npm package node-addon-api',
      '  - the Node-API headers of the npm package node-api-headers: npm package node-api-headers']) {
      expect(lines).toContain(line);
    }
    expect(r.stderr).toMatch(/Install them: (sudo )?apt-get install -y cmake make g\+\+ flatbuffers-compiler( libflatbuffers-dev)?( libasio-dev)?\n/);
    expect(lines).toContain('Install them: npm install node-addon-api node-api-headers');
    expect(lines).toContain(`Then build: node ${installed}/scripts/install.mjs --build-from-source`);
    expect(existsSync(path.join(installed, 'build'))).toBe(false);
  });
});
