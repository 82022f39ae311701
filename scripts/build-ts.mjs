// Builds dist/esm (ESM) and dist/cjs (CommonJS) from ts/ with tsc, then
// writes the per-format package.json markers and the module-location shim.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.cjs.json'], { stdio: 'inherit' });
mkdirSync('dist/esm', { recursive: true });
mkdirSync('dist/cjs', { recursive: true });
writeFileSync('dist/esm/package.json', '{ "type": "module" }\n');
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
// here.js tells each format where the package root is (import.meta is ESM-only).
writeFileSync('dist/esm/here.js',
  "import { fileURLToPath } from 'node:url';\nexport const distDir = fileURLToPath(new URL('.', import.meta.url));\n");
writeFileSync('dist/cjs/here.js', '"use strict";\nexports.distDir = __dirname;\n');
if (existsSync('dist/esm/cli.js')) chmodSync('dist/esm/cli.js', 0o755);
