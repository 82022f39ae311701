// Installing rayts: which native addon loads on which platform, what the
// error says when none does, and what a build from source reports missing.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addonCandidates, buildFromSourceCommand, compareVersions, noAddonMessage, PREBUILT_TARGETS, type PlatformInfo,
} from '../../ts/runtime/addon_locator.js';
import { missingRequirements, missingRequirementsMessage, type RequirementProbe } from '../../ts/cli/native_build.js';

const root = '/opt/app/node_modules/rayts';

describe('addonCandidates', () => {
  it('tries the build from source first, then the prebuilt addon of the platform', () => {
    for (const arch of ['x64', 'arm64']) {
      expect(addonCandidates(root, { platform: 'linux', arch })).toEqual([
        { file: path.join(root, 'build/Release/rayts_native.node'), kind: 'source build' },
        { file: path.join(root, `prebuilds/linux-${arch}/rayts_native.node`), kind: 'prebuilt' },
      ]);
    }
  });

  it('marks the prebuilt candidate unfit on a platform without a prebuilt addon', () => {
    const [src, pre] = addonCandidates(root, { platform: 'darwin', arch: 'arm64' });
    expect(src!.unfit).toBeUndefined();
    expect(pre!.unfit).toBe('no prebuilt addon for darwin-arm64 (prebuilt: linux-x64, linux-arm64)');
  });

  it('prebuilt targets are exactly linux x64 and arm64, glibc 2.31', () => {
    expect(PREBUILT_TARGETS).toEqual([
      { platform: 'linux', arch: 'x64', minGlibc: '2.31' },
      { platform: 'linux', arch: 'arm64', minGlibc: '2.31' },
    ]);
  });
});

describe('compareVersions', () => {
  it('orders glibc versions numerically, not as text', () => {
    expect(compareVersions('2.31', '2.31')).toBe(0);
    expect(compareVersions('2.9', '2.31')).toBe(-1);
    expect(compareVersions('2.36', '2.31')).toBe(1);
    expect(compareVersions('2.31.1', '2.31')).toBe(1);
    expect(compareVersions('3', '2.99')).toBe(1);
  });
});

describe('noAddonMessage', () => {
  const tried = (info: PlatformInfo): Array<{ candidate: ReturnType<typeof addonCandidates>[number]; reason: string }> =>
    addonCandidates(root, info).map((c) => ({ candidate: c, reason: c.unfit ?? `missing (${c.kind})` }));

  it('names the platform, each file tried and the build command of an installed package', () => {
    const info = { platform: 'linux', arch: 'x64', glibc: '2.36' };
    const msg = noAddonMessage(info, tried(info), buildFromSourceCommand(root, false));
    expect(msg.split('\n')).toEqual([
      'rayts: no native addon loads on this platform (linux-x64, glibc 2.36).',
      `  ${root}/build/Release/rayts_native.node: missing (source build)`,
      `  ${root}/prebuilds/linux-x64/rayts_native.node: missing (prebuilt)`,
      `Build one from source: node ${root}/scripts/install.mjs --build-from-source`,
      '(it needs cmake, make, a C++20 compiler, flatc and the FlatBuffers and Asio headers, and names any that are missing)',
    ]);
    expect(msg).not.toContain('npm run build');
  });

  it('says when the glibc is older than the prebuilt addon needs', () => {
    const info = { platform: 'linux', arch: 'arm64', glibc: '2.28' };
    const t = [{ candidate: addonCandidates(root, info)[1]!, reason: 'failed to load (prebuilt): GLIBC_2.29 not found' }];
    expect(noAddonMessage(info, t, 'x')).toContain(
      'prebuilds/linux-arm64/rayts_native.node: failed to load (prebuilt): GLIBC_2.29 not found; needs glibc 2.31 or newer; this system has glibc 2.28');
  });

  it('says when the C library is not glibc (musl)', () => {
    const info = { platform: 'linux', arch: 'x64', glibc: undefined };
    const msg = noAddonMessage(info, tried(info), 'x');
    expect(msg).toContain('(linux-x64, C library not glibc)');
    expect(msg).toContain('the prebuilt addons need glibc; this C library is not glibc (musl?)');
  });

  it('a checkout builds with npm run build:native', () => {
    expect(buildFromSourceCommand('/src/rayts', true)).toBe('npm run build:native');
  });
});

describe('missingRequirements', () => {
  const probe = (have: string[]): RequirementProbe => ({
    onPath: (c) => have.includes(c),
    hasHeader: (h) => have.includes(h),
    npmPackageDir: (n) => (have.includes(n) ? `/x/${n}` : undefined),
  });

  it('finds nothing missing when everything is there', () => {
    expect(missingRequirements(probe(['cmake', 'make', 'g++', 'flatc', 'flatbuffers/flatbuffers.h', 'asio.hpp', 'node/uv.h',
      'node-addon-api', 'node-api-headers']))).toEqual([]);
  });

  it('names each missing piece with its package, and one command that installs them', () => {
    const missing = missingRequirements(probe(['make', 'c++', 'flatbuffers/flatbuffers.h', 'node/uv.h', 'node-addon-api', 'node-api-headers']));
    expect(missing.map((m) => m.apt)).toEqual(['cmake', 'flatbuffers-compiler', 'libasio-dev']);
    const msg = missingRequirementsMessage(missing, root, false);
    expect(msg.split('\n')).toEqual([
      'rayts: cannot build the native addon from source; missing:',
      '  - cmake (3.18 or newer): Debian/Ubuntu package cmake',
      '  - flatc, the FlatBuffers compiler: Debian/Ubuntu package flatbuffers-compiler',
      '  - the standalone Asio headers (asio.hpp): Debian/Ubuntu package libasio-dev',
      'Install them: sudo apt-get install -y cmake flatbuffers-compiler libasio-dev',
      `Then build: node ${root}/scripts/install.mjs --build-from-source`,
    ]);
    expect(missingRequirementsMessage(missing, root, true)).toContain('Install them: apt-get install -y cmake flatbuffers-compiler libasio-dev');
  });

  it("names Node's own headers (uv.h) when they are missing", () => {
    const missing = missingRequirements(probe(['cmake', 'make', 'g++', 'flatc', 'flatbuffers/flatbuffers.h', 'asio.hpp',
      'node-addon-api', 'node-api-headers']));
    expect(missing.map((m) => m.apt)).toEqual(['libnode-dev']);
    expect(missing[0]!.what).toContain('node/uv.h');
  });

  it('names missing npm packages with npm install', () => {
    const missing = missingRequirements(probe(['cmake', 'make', 'g++', 'flatc', 'flatbuffers/flatbuffers.h', 'asio.hpp', 'node/uv.h']));
    expect(missing.map((m) => m.npm)).toEqual(['node-addon-api', 'node-api-headers']);
    expect(missingRequirementsMessage(missing, root, true)).toContain('Install them: npm install node-addon-api node-api-headers');
  });
});
