#!/usr/bin/env node
// Packs rayts (npm pack), installs the tarball into a fresh folder as a user
// would, and runs a task and an actor call from ESM, CommonJS and
// TypeScript (tsx, with ray.importModule() of a .ts module).
//
//   node scripts/test-package.mjs              the tarball's prebuilt addon must load
//                                              (run `sudo bash scripts/prebuild.sh` first)
//   node scripts/test-package.mjs --addon FILE installs (install step skipped), then
//                                              puts FILE where the prebuilt addon of
//                                              this platform goes (e.g.
//                                              build/Release/rayts_native.node in a
//                                              checkout without prebuilds; what CI runs)
//   node scripts/test-package.mjs --from-source
//                                              no prebuilt addon: the install step
//                                              builds one (minutes)
//   --keep                                     leaves the folder for a look
//
// Needs dist/ (npm run build:ts). Dependencies come from the npm registry
// (or npm's cache); rayts itself only from the local tarball. Prints one
// line per check and ends with "N passed, N failed".
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const fromSource = args.includes('--from-source');
const keep = args.includes('--keep');
const addonIdx = args.indexOf('--addon');
const addon = addonIdx >= 0 ? path.resolve(args[addonIdx + 1] ?? '') : undefined;
for (const a of args) {
  if (a.startsWith('--') && !['--from-source', '--keep', '--addon'].includes(a)) {
    console.error(`test-package: unknown option '${a}' (known: --addon FILE, --from-source, --keep)`);
    process.exit(2);
  }
}
if (addon !== undefined && !existsSync(addon)) {
  console.error(`test-package: --addon ${addon} does not exist`);
  process.exit(2);
}
if (!existsSync(path.join(repo, 'dist', 'esm', 'index.js'))) {
  console.error('test-package: dist/ is missing; run: npm run build:ts');
  process.exit(2);
}
const platformDir = `${process.platform}-${process.arch}`;
const prebuilt = path.join('prebuilds', platformDir, 'rayts_native.node');

let passed = 0;
let failed = 0;
function check(name, fn) {
  const t0 = Date.now();
  try {
    const detail = fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)${detail ? `: ${detail}` : ''}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
function run(cmd, argv, opts = {}) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000, ...opts });
}
function runOrExplain(cmd, argv, opts) {
  try {
    return run(cmd, argv, opts);
  } catch (e) {
    throw new Error(`${cmd} ${argv.join(' ')} failed: ${e.stderr || e.message}`, { cause: e });
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'rayts-package-'));
const app = path.join(dir, 'app');
mkdirSync(app);
let tarball;

check('npm pack', () => {
  const out = runOrExplain('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo });
  const info = JSON.parse(out)[0];
  tarball = path.join(dir, info.filename);
  const files = new Set(info.files.map((f) => f.path));
  for (const f of ['dist/esm/index.js', 'dist/cjs/index.js', 'dist/esm/index.d.ts', 'scripts/install.mjs', 'CMakeLists.txt']) {
    if (!files.has(f)) throw new Error(`the tarball lacks ${f}`);
  }
  if (!fromSource && addon === undefined && !files.has(prebuilt)) {
    throw new Error(`the tarball has no ${prebuilt}: build it first (sudo bash scripts/prebuild.sh), or pass --addon FILE or --from-source`);
  }
  const prebuilds = [...files].filter((f) => f.startsWith('prebuilds/')).join(', ') || 'none';
  return `${info.filename}, ${(info.size / 1e6).toFixed(2)} MB packed, ${(info.unpackedSize / 1e6).toFixed(2)} MB unpacked, ` +
    `${info.entryCount} files; prebuilt: ${prebuilds}`;
});

const versionOf = (name) => JSON.parse(readFileSync(path.join(repo, 'node_modules', name, 'package.json'), 'utf8')).version;
const tsxVersion = versionOf('tsx');
const typesNodeVersion = versionOf('@types/node');
// "type": "module" for the TS driver. allowScripts lets npm 11 run rayts's install
// step when rayts comes from the registry; for a local tarball npm 11 matches
// another identity and skips it (--from-source then runs it as users would).
writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({
  name: 'rayts-package-test', private: true, version: '1.0.0', type: 'module', allowScripts: { rayts: true },
}, null, 2)}\n`);

check('npm install of the tarball into a fresh folder', () => {
  if (tarball === undefined) throw new Error('no tarball');
  const env = { ...process.env };
  if (fromSource) env.RAYTS_BUILD_FROM_SOURCE = '1';
  else delete env.RAYTS_BUILD_FROM_SOURCE;
  // --addon: the addon is put in place after the install, so the install step (which would build one) is skipped.
  runOrExplain('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...(addon !== undefined ? ['--ignore-scripts'] : []), tarball, `tsx@${tsxVersion}`, `@types/node@${typesNodeVersion}`],
    { cwd: app, env });
  const pkg = path.join(app, 'node_modules', 'rayts');
  if (addon !== undefined) {
    mkdirSync(path.join(pkg, 'prebuilds', platformDir), { recursive: true });
    copyFileSync(addon, path.join(pkg, prebuilt));
  }
  if (fromSource) {
    // Where npm ran the install step, it built the addon; where it did not (npm 11
    // without an approval), run it as the loader's error says.
    if (!existsSync(path.join(pkg, 'build', 'Release', 'rayts_native.node'))) {
      runOrExplain(process.execPath, [path.join(pkg, 'scripts', 'install.mjs'), '--build-from-source'], { cwd: app, env });
    }
    return `built from source: ${statSync(path.join(pkg, 'build', 'Release', 'rayts_native.node')).size} bytes`;
  }
  if (existsSync(path.join(pkg, 'build'))) throw new Error('the install built from source although a prebuilt addon was there');
  return `uses ${prebuilt}`;
});

// One driver per module system; each prints one JSON line.
const checkResult = (out) => {
  const r = JSON.parse(out.trim().split('\n').at(-1));
  if (r.sum !== 42 || r.count !== 3 || r.workerPid === r.driverPid) throw new Error(`wrong results: ${out}`);
  return out.trim().split('\n').at(-1);
};
writeFileSync(path.join(app, 'esm.mjs'), `import * as ray from 'rayts';
await ray.init({ numCpus: 1, objectStoreMemory: 32 * 1024 * 1024 });
const add = ray.remote((a, b) => ({ sum: a + b, pid: process.pid }));
const Counter = ray.remote(class Counter { n = 0; inc(by) { return (this.n += by); } });
const c = Counter.remote();
await c.inc.remote(1);
const r = await add.remote(20, 22);
console.log(JSON.stringify({ sum: r.sum, count: await c.inc.remote(2), workerPid: r.pid, driverPid: process.pid }));
await ray.shutdown();
`);
writeFileSync(path.join(app, 'cjs.cjs'), `const ray = require('rayts');
(async () => {
  await ray.init({ numCpus: 1, objectStoreMemory: 32 * 1024 * 1024 });
  const add = ray.remote((a, b) => ({ sum: a + b, pid: process.pid }));
  const Counter = ray.remote(class Counter { n = 0; inc(by) { return (this.n += by); } });
  const c = Counter.remote();
  await c.inc.remote(1);
  const r = await add.remote(20, 22);
  console.log(JSON.stringify({ sum: r.sum, count: await c.inc.remote(2), workerPid: r.pid, driverPid: process.pid }));
  await ray.shutdown();
})().catch((e) => { console.error(e); process.exit(1); });
`);
writeFileSync(path.join(app, 'tasks.ts'), `export function add(a: number, b: number): { sum: number; pid: number } {
  return { sum: a + b, pid: process.pid };
}
export class Counter {
  constructor(private n: number = 0) {}
  inc(by: number): number { return (this.n += by); }
}
`);
writeFileSync(path.join(app, 'driver.ts'), `import * as ray from 'rayts';
type Tasks = typeof import('./tasks.js');
await ray.init({ numCpus: 1, objectStoreMemory: 32 * 1024 * 1024 });
const mod = ray.importModule<Tasks>(new URL('./tasks.ts', import.meta.url));
const c = mod.Counter.remote(0);
await c.inc.remote(1);
const r: { sum: number; pid: number } = await mod.add.remote(20, 22);
const count: number = await c.inc.remote(2);
console.log(JSON.stringify({ sum: r.sum, count, workerPid: r.pid, driverPid: process.pid }));
await ray.shutdown();
`);
writeFileSync(path.join(app, 'tsconfig.json'), `${JSON.stringify({
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false },
  files: ['driver.ts', 'tasks.ts'],
}, null, 2)}\n`);

check('ESM: import * as ray from "rayts"', () => checkResult(runOrExplain(process.execPath, ['esm.mjs'], { cwd: app })));
check('CommonJS: require("rayts")', () => checkResult(runOrExplain(process.execPath, ['cjs.cjs'], { cwd: app })));
check('TypeScript: tsx driver.ts with importModule of tasks.ts', () =>
  checkResult(runOrExplain(path.join(app, 'node_modules', '.bin', 'tsx'), ['driver.ts'], { cwd: app })));
check('TypeScript: the package types compile (tsc --noEmit, strict)', () => {
  const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  runOrExplain(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app });
  return '';
});

if (keep) console.log(`test-package: left ${dir}`);
else rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
