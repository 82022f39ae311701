// Building the native addon from source in an installed package
// (scripts/install.mjs): where no prebuilt addon fits this platform, or when
// asked. Checks what the build needs first and, when something is missing,
// names each piece, the package that provides it and the command that
// installs it. The build itself is cmake on the shipped sources (core/,
// bindings/, CMakeLists.txt) into build/Release, where the loader looks first.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildFromSourceCommand } from '../runtime/addon_locator.js';
import { loadAddon } from '../runtime/native.js';

/** One thing a build from source needs and this machine lacks. */
export interface MissingRequirement {
  what: string;
  /** The Debian/Ubuntu package that provides it. */
  apt?: string;
  /** The npm package that provides it. */
  npm?: string;
}

/** How requirements are looked up; injectable for tests. */
export interface RequirementProbe {
  onPath(command: string): boolean;
  hasHeader(header: string): boolean;
  npmPackageDir(name: string): string | undefined;
}

/** Where headers are looked for: the system's, and the include dir of this Node installation (node/uv.h, node/node.h). */
const INCLUDE_DIRS = ['/usr/include', '/usr/local/include', path.join(path.dirname(process.execPath), '..', 'include')];

/** Node's own C headers (libuv's uv.h among them), which the addon's event-loop code includes. */
function nodeHeadersDir(): string | undefined {
  return INCLUDE_DIRS.map((d) => path.join(d, 'node')).find((d) => existsSync(path.join(d, 'uv.h')));
}

/** This machine, for `packageRoot` (npm packages resolve from there). */
export function systemProbe(packageRoot: string): RequirementProbe {
  const req = createRequire(path.join(packageRoot, 'package.json'));
  return {
    onPath: (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0,
    hasHeader: (header) => INCLUDE_DIRS.some((d) => existsSync(path.join(d, header))),
    npmPackageDir: (name) => {
      try {
        return path.dirname(req.resolve(`${name}/package.json`));
      } catch {
        return undefined;
      }
    },
  };
}

/** What a build from source needs that `probe` does not find, in a fixed order. */
export function missingRequirements(probe: RequirementProbe): MissingRequirement[] {
  const missing: MissingRequirement[] = [];
  if (!probe.onPath('cmake')) missing.push({ what: 'cmake (3.18 or newer)', apt: 'cmake' });
  if (!probe.onPath('make')) missing.push({ what: 'make', apt: 'make' });
  if (!probe.onPath('c++') && !probe.onPath('g++')) missing.push({ what: 'a C++20 compiler (g++ 10 or newer)', apt: 'g++' });
  if (!probe.onPath('flatc')) missing.push({ what: 'flatc, the FlatBuffers compiler', apt: 'flatbuffers-compiler' });
  if (!probe.hasHeader('flatbuffers/flatbuffers.h')) missing.push({ what: 'the FlatBuffers headers (flatbuffers/flatbuffers.h)', apt: 'libflatbuffers-dev' });
  if (!probe.hasHeader('asio.hpp')) missing.push({ what: 'the standalone Asio headers (asio.hpp)', apt: 'libasio-dev' });
  if (!probe.hasHeader('node/uv.h')) {
    missing.push({ what: "Node's own C headers (node/uv.h: libuv), installed with Node from nodejs.org or by the distribution", apt: 'libnode-dev' });
  }
  for (const name of ['node-addon-api', 'node-api-headers']) {
    if (probe.npmPackageDir(name) === undefined) missing.push({ what: `the Node-API headers of the npm package ${name}`, npm: name });
  }
  return missing;
}

/** The error text for missing requirements: each one, then the commands that install them and the build. */
export function missingRequirementsMessage(missing: readonly MissingRequirement[], packageRoot: string, isRoot: boolean): string {
  const lines = ['rayts: cannot build the native addon from source; missing:'];
  for (const m of missing) lines.push(`  - ${m.what}: ${m.apt !== undefined ? `Debian/Ubuntu package ${m.apt}` : `npm package ${m.npm ?? '?'}`}`);
  const apt = missing.flatMap((m) => (m.apt !== undefined ? [m.apt] : []));
  const npm = missing.flatMap((m) => (m.npm !== undefined ? [m.npm] : []));
  if (apt.length > 0) lines.push(`Install them: ${isRoot ? '' : 'sudo '}apt-get install -y ${apt.join(' ')}`);
  if (npm.length > 0) lines.push(`Install them: npm install ${npm.join(' ')}`);
  lines.push(`Then build: ${buildFromSourceCommand(packageRoot, false)}`);
  return lines.join('\n');
}

/** cmake configure + build of the addon into build/Release; throws on a missing requirement or a failed build. */
export function buildAddonFromSource(packageRoot: string, log: (line: string) => void): void {
  const probe = systemProbe(packageRoot);
  const missing = missingRequirements(probe);
  if (missing.length > 0) throw new Error(missingRequirementsMessage(missing, packageRoot, process.getuid?.() === 0));
  const buildDir = path.join(packageRoot, 'build');
  const addonApi = probe.npmPackageDir('node-addon-api')!;
  const napiHeaders = path.join(probe.npmPackageDir('node-api-headers')!, 'include');
  log(`rayts: building the native addon from source in ${buildDir} (a few minutes)`);
  const cmake = (args: string[]): void => {
    execFileSync('cmake', args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: packageRoot });
  };
  try {
    cmake(['-S', packageRoot, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', '-DRAYTS_BUILD_TESTS=OFF', '-DRAYTS_TEST_HOOKS=OFF',
      `-DCMAKE_JS_INC=${napiHeaders};${nodeHeadersDir()!}`, `-DNODE_ADDON_API_DIR=${addonApi}`,
      `-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=${path.join(buildDir, 'Release')}`]);
    cmake(['--build', buildDir, '--target', 'rayts_native', '--parallel', String(Math.max(1, os.availableParallelism()))]);
  } catch (e) {
    throw new Error(`rayts: the build of the native addon from source failed (cmake's output is above): ${(e as Error).message}`, { cause: e });
  }
}

/** Null when an addon loads in this process, else the loader's error text. */
export function addonLoadError(): string | null {
  try {
    loadAddon();
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * The install step: nothing when an addon loads (and `force` is false),
 * else a build from source and a check that its result loads. Returns the
 * exit code; errors go to `log`.
 */
export function ensureAddon(packageRoot: string, force: boolean, log: (line: string) => void): number {
  if (!force) {
    const err = addonLoadError();
    if (err === null) return 0;
    log(`${err}\nrayts: no prebuilt addon loads here; building one from source`);
  }
  try {
    buildAddonFromSource(packageRoot, log);
  } catch (e) {
    log((e as Error).message);
    return 1;
  }
  const err = addonLoadError();
  if (err !== null) {
    log(`rayts: the addon built from source does not load:\n${err}`);
    return 1;
  }
  log('rayts: native addon built from source');
  return 0;
}
