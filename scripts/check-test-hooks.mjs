#!/usr/bin/env node
// Proves that a build without the test hooks (-DRAYTS_TEST_HOOKS=OFF: what
// users get, the prebuilt addons of scripts/prebuild.sh and a build from
// source at install, ts/cli/native_build.ts) has none of them: no
// PlasmaLose handler in the node's plasma service, no PlasmaLose sender in
// the plasma client, no loseFromStore in the addon. Part of `npm run lint`.
//
// How: every source of core/ and bindings/ that mentions RAYTS_TEST_HOOKS
// or a hook is run through the C++ preprocessor twice, as the build compiles it
// (same include paths and definitions), with and without
// -DRAYTS_TEST_HOOKS=1; the lines that come from the repository's own
// files (the line markers name them; system and generated headers are left
// out) must name a hook with the define (else this check could not fail)
// and none without. Then the two release builds must pass
// -DRAYTS_TEST_HOOKS=OFF. Needs the generated FlatBuffers headers of a
// prior build (build/generated), like check-thread-safety. Takes a few
// seconds. Usage: node scripts/check-test-hooks.mjs
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repo);
const HOOK = /PlasmaLose|LoseFromStore|loseFromStore/;
const fail = (msg) => {
  console.error(`check-test-hooks: ${msg}`);
  process.exit(1);
};
const gen = 'build/generated';
if (!existsSync(path.join(gen, 'protocol', 'messages_generated.h'))) fail(`${gen} is missing; run npm run build:native first`);

const sources = execFileSync('git', ['ls-files', 'core/*.cc', 'bindings/*.cc'], { encoding: 'utf8' }).split('\n')
  .filter((f) => f && (readFileSync(f, 'utf8').includes('RAYTS_TEST_HOOKS') || HOOK.test(readFileSync(f, 'utf8'))));
if (sources.length === 0) fail('no source mentions RAYTS_TEST_HOOKS: update this check');

const base = ['-std=c++20', '-E', '-I.', `-I${gen}`, '-DASIO_STANDALONE', '-DASIO_NO_DEPRECATED', '-DASIO_HAS_STD_ALIGNED_ALLOC=1', '-DNDEBUG'];
// The addon's headers: N-API, node-addon-api, and libuv from this Node's own include directory.
const nodeInclude = path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node');
const napi = ['-Inode_modules/node-api-headers/include', '-Inode_modules/node-addon-api', `-I${nodeInclude}`, '-DBUILDING_NODE_EXTENSION',
  '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED'];

/** The lines of `file` preprocessed that come from the repository's core/ and bindings/ files, with their origin. */
function ownLines(file, hooks) {
  const args = [...base, ...(file.startsWith('bindings/') ? napi : []), ...(hooks ? ['-DRAYTS_TEST_HOOKS=1'] : []), file];
  let out;
  try {
    out = execFileSync(process.env.CXX ?? 'g++', args, { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    fail(`preprocessing ${file} failed:\n${e.stderr ?? e.message}`);
  }
  const lines = [];
  let origin = '';
  for (const line of out.split('\n')) {
    const m = /^# \d+ "([^"]*)"/.exec(line);
    if (m) {
      const f = path.normalize(m[1]);
      origin = f.startsWith('core/') || f.startsWith('bindings/') ? f : '';
      continue;
    }
    if (origin && line.trim() !== '') lines.push({ origin, line });
  }
  return lines;
}

const found = [];
for (const f of sources) {
  const release = ownLines(f, false).filter((l) => HOOK.test(l.line));
  if (release.length > 0) {
    fail(`${f} without RAYTS_TEST_HOOKS still has test-hook code:\n  ${release.map((l) => `${l.origin}: ${l.line.trim()}`).join('\n  ')}`);
  }
  const hooked = ownLines(f, true).filter((l) => HOOK.test(l.line));
  found.push(...hooked.map((l) => `${l.origin}: ${l.line.trim().slice(0, 60)}`));
}
// With the define the hooks are there: otherwise the pattern above went stale.
for (const want of ['proto::Body::PlasmaLose', 'CreatePlasmaLose', '"loseFromStore"']) {
  if (!found.some((l) => l.includes(want))) fail(`no '${want}' even with RAYTS_TEST_HOOKS=1 in ${sources.join(', ')}: update this check`);
}
for (const f of ['scripts/prebuild.sh', 'ts/cli/native_build.ts']) {
  if (!readFileSync(f, 'utf8').includes('-DRAYTS_TEST_HOOKS=OFF')) fail(`${f} builds a release addon without -DRAYTS_TEST_HOOKS=OFF`);
}
console.log(`check-test-hooks: ok (${sources.length} files without RAYTS_TEST_HOOKS have no hook; with it: ${found.length} hook lines; ` +
  'prebuild.sh and native_build.ts build with it OFF)');
