#!/usr/bin/env node
// The package's install step: makes sure a native addon loads here.
//
// - An installed package whose prebuilt addon (prebuilds/<platform>-<arch>)
//   or earlier build from source (build/Release) loads: nothing to do.
// - Otherwise (no prebuilt addon for this platform, a glibc older than it
//   needs, a C library that is not glibc), or with --build-from-source /
//   RAYTS_BUILD_FROM_SOURCE=1: builds the addon from the shipped sources
//   with cmake into build/Release. When system packages are missing it names
//   each one and the command that installs it, and fails
//   (ts/cli/native_build.ts).
// - In a checkout of the repository (ts/ present) it does nothing:
//   `npm run build` builds the addon there.
//
// npm 11 runs a dependency's install script only when the project allows it
// (`npm install-scripts approve rayts`); without that, the same build runs
// as `node node_modules/rayts/scripts/install.mjs --build-from-source`, the
// command the loader's error names when no addon loads.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(path.join(root, 'ts', 'index.ts'))) {
  const force = process.argv.includes('--build-from-source') || process.env.RAYTS_BUILD_FROM_SOURCE === '1';
  const { ensureAddon } = await import(pathToFileURL(path.join(root, 'dist', 'esm', 'cli', 'native_build.js')).href);
  process.exitCode = ensureAddon(root, force, (line) => console.error(line));
}
