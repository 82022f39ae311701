// Where the native addon of this platform is, and why none fits when none
// does. The package ships prebuilt addons per platform
// (prebuilds/<platform>-<arch>/rayts_native.node, made by scripts/prebuild.sh)
// and can build one from source into build/Release/ (scripts/install.mjs;
// `npm run build:native` in a checkout). A build from source wins: it was
// made on this machine, for this machine.
//
// Pure functions of the platform facts so that tests can ask about any
// platform; native.ts applies them to this process.
import * as path from 'node:path';

/** The facts about a platform that decide which addon can load. */
export interface PlatformInfo {
  /** process.platform */
  platform: string;
  /** process.arch */
  arch: string;
  /** glibc version of the running process ("2.36"); undefined when the C library is not glibc (musl). */
  glibc: string | undefined;
}

/** A platform the package ships a prebuilt addon for. */
export interface PrebuiltTarget {
  platform: string;
  arch: string;
  /** The oldest glibc the prebuilt addon loads on (scripts/prebuild.sh builds against it). */
  minGlibc: string;
}

/** The prebuilt targets: scripts/prebuild.sh builds these, and nothing else. */
export const PREBUILT_TARGETS: readonly PrebuiltTarget[] = [
  { platform: 'linux', arch: 'x64', minGlibc: '2.31' },
  { platform: 'linux', arch: 'arm64', minGlibc: '2.31' },
];

export const ADDON_FILE = 'rayts_native.node';

/** One place an addon may be, in the order they are tried. */
export interface AddonCandidate {
  file: string;
  kind: 'source build' | 'prebuilt';
  /** Set when this candidate cannot fit the platform whether or not the file exists. */
  unfit?: string;
}

/** The build from source, relative to the package root. */
export function sourceBuildPath(packageRoot: string): string {
  return path.join(packageRoot, 'build', 'Release', ADDON_FILE);
}

/** The prebuilt addon of a platform, relative to the package root. */
export function prebuiltPath(packageRoot: string, platform: string, arch: string): string {
  return path.join(packageRoot, 'prebuilds', `${platform}-${arch}`, ADDON_FILE);
}

/** -1, 0, 1 as version a is older than, equal to, newer than b ("2.31" vs "2.36"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((s) => Number.parseInt(s, 10) || 0);
  const pb = b.split('.').map((s) => Number.parseInt(s, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Why the prebuilt addon of `target` cannot load on `info`, or undefined when it can. */
export function prebuiltUnfitReason(target: PrebuiltTarget, info: PlatformInfo): string | undefined {
  if (info.glibc === undefined) return 'the prebuilt addons need glibc; this C library is not glibc (musl?)';
  if (compareVersions(info.glibc, target.minGlibc) < 0) {
    return `needs glibc ${target.minGlibc} or newer; this system has glibc ${info.glibc}`;
  }
  return undefined;
}

/** The places to look for an addon on a platform, in order (the glibc version is not needed). */
export function addonCandidates(packageRoot: string, info: Pick<PlatformInfo, 'platform' | 'arch'>): AddonCandidate[] {
  const out: AddonCandidate[] = [{ file: sourceBuildPath(packageRoot), kind: 'source build' }];
  const file = prebuiltPath(packageRoot, info.platform, info.arch);
  if (prebuiltTarget(info) === undefined) {
    const known = PREBUILT_TARGETS.map((t) => `${t.platform}-${t.arch}`).join(', ');
    out.push({ file, kind: 'prebuilt', unfit: `no prebuilt addon for ${info.platform}-${info.arch} (prebuilt: ${known})` });
  } else {
    out.push({ file, kind: 'prebuilt' });
  }
  return out;
}

/** The prebuilt target of a platform, if the package has one. */
export function prebuiltTarget(info: Pick<PlatformInfo, 'platform' | 'arch'>): PrebuiltTarget | undefined {
  return PREBUILT_TARGETS.find((t) => t.platform === info.platform && t.arch === info.arch);
}

/** A candidate that did not load, and why. */
export interface TriedAddon {
  candidate: AddonCandidate;
  reason: string;
}

/** The command that builds the addon from source for this package root. */
export function buildFromSourceCommand(packageRoot: string, isCheckout: boolean): string {
  if (isCheckout) return 'npm run build:native';
  return `node ${path.join(packageRoot, 'scripts', 'install.mjs')} --build-from-source`;
}

/**
 * The error text when no candidate loaded: the platform, each place tried and
 * why it did not load (with the glibc the prebuilt addon needs when this
 * system's is older or not glibc), and the command that builds one from source.
 */
export function noAddonMessage(info: PlatformInfo, tried: readonly TriedAddon[], buildCommand: string): string {
  const libc = info.glibc === undefined ? 'C library not glibc' : `glibc ${info.glibc}`;
  const lines = [`rayts: no native addon loads on this platform (${info.platform}-${info.arch}, ${libc}).`];
  const target = prebuiltTarget(info);
  for (const t of tried) {
    const unfit = t.candidate.kind === 'prebuilt' && target !== undefined ? prebuiltUnfitReason(target, info) : undefined;
    lines.push(`  ${t.candidate.file}: ${t.reason}${unfit !== undefined ? `; ${unfit}` : ''}`);
  }
  lines.push(`Build one from source: ${buildCommand}`);
  lines.push('(it needs cmake, make, a C++20 compiler, flatc and the FlatBuffers and Asio headers, and names any that are missing)');
  return lines.join('\n');
}
