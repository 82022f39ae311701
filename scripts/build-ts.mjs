// Builds dist/esm (ESM) and dist/cjs (CommonJS) from ts/ with tsc, then
// writes the per-format package.json markers and the module-location shim.
// Builds into dist.tmp-<pid> and swaps it in, so a running program never
// sees a half-written dist/.
import { execFileSync } from 'node:child_process';
import { writeFileSync, rmSync, chmodSync, existsSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const out = `dist.tmp-${process.pid}`;
rmSync(out, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--outDir', `${out}/esm`], { stdio: 'inherit' });
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.cjs.json', '--outDir', `${out}/cjs`], { stdio: 'inherit' });
} catch {
  rmSync(out, { recursive: true, force: true });
  process.exit(1);
}
writeFileSync(`${out}/esm/package.json`, '{ "type": "module" }\n');
writeFileSync(`${out}/cjs/package.json`, '{ "type": "commonjs" }\n');
// here.js tells each format where the package root is (import.meta is ESM-only).
writeFileSync(`${out}/esm/here.js`,
  "import { fileURLToPath } from 'node:url';\nexport const distDir = fileURLToPath(new URL('.', import.meta.url));\n");
writeFileSync(`${out}/cjs/here.js`, '"use strict";\nexports.distDir = __dirname;\n');
if (existsSync(`${out}/esm/cli/cli.js`)) chmodSync(`${out}/esm/cli/cli.js`, 0o755);
const old = `dist.old-${process.pid}`;
if (existsSync('dist')) renameSync('dist', old);
renameSync(out, 'dist');
rmSync(old, { recursive: true, force: true });
