#!/usr/bin/env node
// Run before `npm publish` (prepublishOnly): every prebuilt addon the loader
// knows (ts/runtime/addon_locator.ts PREBUILT_TARGETS) is in prebuilds/ and
// is an ELF shared object for its architecture, so that a published package
// never lacks one (an install would then need a compiler). Usage:
//   node scripts/check-prebuilds.mjs [package-root]
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(process.argv[2] ?? repo);
const { PREBUILT_TARGETS, prebuiltPath } = await import(pathToFileURL(path.join(repo, 'dist', 'esm', 'runtime', 'addon_locator.js')).href);

// ELF e_machine of each Node arch (elf.h: EM_X86_64, EM_AARCH64).
const MACHINE = { x64: 62, arm64: 183 };

/** Why `file` is not a 64-bit little-endian ELF shared object for `arch`, or undefined. */
function elfProblem(file, arch) {
  const head = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF file';
  if (head[4] !== 2 || head[5] !== 1) return 'not a 64-bit little-endian ELF file';
  if (head.readUInt16LE(16) !== 3) return 'not a shared object';
  const machine = head.readUInt16LE(18);
  return machine === MACHINE[arch] ? undefined : `built for ELF machine ${machine}, not ${arch} (${MACHINE[arch]})`;
}

const problems = [];
for (const t of PREBUILT_TARGETS) {
  const file = prebuiltPath(root, t.platform, t.arch);
  if (!existsSync(file)) problems.push(`${path.relative(root, file)}: missing`);
  else {
    const p = elfProblem(file, t.arch);
    if (p !== undefined) problems.push(`${path.relative(root, file)}: ${p}`);
  }
}
if (problems.length > 0) {
  console.error(`check-prebuilds: the package would ship without its prebuilt addons:\n  ${problems.join('\n  ')}\n` +
    'Build them: sudo bash scripts/prebuild.sh --check');
  process.exit(1);
}
console.log(`check-prebuilds: ok (${PREBUILT_TARGETS.map((t) => `${t.platform}-${t.arch}`).join(', ')})`);
