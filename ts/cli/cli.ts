#!/usr/bin/env node
// The `rayts` command line. Subcommands: start, status, stop (cluster
// daemons, cluster_commands.ts), microbenchmark, memory.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { distDir } from '../here.js';
import { addClusterCommands } from './cluster_commands.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(distDir, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * The microbenchmark (bench/src, built by `npm run build:bench` into
 * bench/dist) is not shipped in the package: it runs from a source checkout.
 */
interface MicrobenchmarkOptions {
  json?: string; filter?: string; skip?: string; durationMs?: number; sleepMs?: number;
  rowTimeoutMs?: number; numCpus?: number; objectStoreMemory?: number; releaseRefs?: boolean; summary?: boolean;
  cluster?: boolean;
}
type RunMicrobenchmark = (opts: MicrobenchmarkOptions) => Promise<Array<{ mean: number | null }>>;

const benchModule = path.join(distDir, '..', '..', 'bench', 'dist', 'microbenchmark.js');

function nonNegativeInt(name: string): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

function positiveNumber(name: string): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
    return n;
  };
}

const program = new Command();
program
  .name('rayts')
  .description('Ray for TypeScript: command line tools')
  .version(packageVersion());

addClusterCommands(program);

program
  .command('microbenchmark')
  .description("Ray's microbenchmark (task and object rows, Ray's shapes and timer) on an embedded local cluster, with piscina side by side for the task rows")
  .option('--json <file>', 'also write the results to FILE as a JSON array of {name, mean, std, unit}')
  .option('--filter <substr>', 'run only the rows whose name contains SUBSTR (Ray: TESTS_TO_RUN)')
  .option('--skip <substr>', 'skip the rows whose name contains SUBSTR (Ray: TESTS_TO_SKIP)')
  .option('--duration-ms <n>', 'length of each of the 4 measured runs (Ray: 2000)', nonNegativeInt('--duration-ms'))
  .option('--sleep-ms <n>', 'idle time before each row (Ray sleeps 10000)', nonNegativeInt('--sleep-ms'), 0)
  .option('--row-timeout-ms <n>', 'skip a row that takes longer than this (default: timer length + 60000)', nonNegativeInt('--row-timeout-ms'))
  .option('--num-cpus <n>', 'CPUs of the local cluster (default: os.availableParallelism())', positiveNumber('--num-cpus'))
  .option('--object-store-memory <bytes>', 'object store size (default: 2 GiB)', nonNegativeInt('--object-store-memory'))
  .option('--release-refs', "put rows call ref.release() on each put's ref instead of leaving it to garbage collection (deviation from Ray's shape)")
  .option('--no-summary', 'do not print the comparison with Ray, piscina and the targets')
  .option('--cluster', 'also run the cluster rows (not in the default run: they start a 2-node cluster on this machine ' +
    'and move 1 GiB objects): multi node tasks async, 1:1 actor calls async (actor on the other node), object transfer ' +
    'between nodes (1 GiB) and the loopback TCP limit beside it; a --filter naming one of them runs it without --cluster')
  .action(async (o: {
    json?: string; filter?: string; skip?: string; durationMs?: number; sleepMs: number;
    rowTimeoutMs?: number; numCpus?: number; objectStoreMemory?: number; summary: boolean; releaseRefs?: boolean;
    cluster?: boolean;
  }) => {
    if (!existsSync(benchModule)) {
      process.stderr.write('rayts microbenchmark: the benchmark is not part of the installed package; it runs from a source ' +
        `checkout of rayts (npm run build, then npm run bench). Missing: ${benchModule}\n`);
      process.exitCode = 2;
      return;
    }
    const { runMicrobenchmark } = (await import(pathToFileURL(benchModule).href)) as { runMicrobenchmark: RunMicrobenchmark };
    const opts: MicrobenchmarkOptions = {
      sleepMs: o.sleepMs, summary: o.summary, releaseRefs: o.releaseRefs === true, cluster: o.cluster === true,
    };
    if (o.json !== undefined) opts.json = o.json;
    if (o.filter !== undefined) opts.filter = o.filter;
    if (o.skip !== undefined) opts.skip = o.skip;
    if (o.durationMs !== undefined) opts.durationMs = o.durationMs;
    if (o.rowTimeoutMs !== undefined) opts.rowTimeoutMs = o.rowTimeoutMs;
    if (o.numCpus !== undefined) opts.numCpus = o.numCpus;
    if (o.objectStoreMemory !== undefined) opts.objectStoreMemory = o.objectStoreMemory;
    const results = await runMicrobenchmark(opts);
    process.exitCode = results.some((r) => r.mean === null) ? 1 : 0;
  });

program
  .command('memory')
  .description("Ray's `ray memory`: the objects of running rayts programs, per process (driver and workers): owner, size, " +
    'location and what keeps each alive. Without --address: the embedded clusters of this machine; with --address: every ' +
    'process of every alive node of that cluster, per node')
  .option('--session <dir>', 'only this session directory (default: every running session of this user under <tmpdir>/rayts-<uid>)')
  .option('--json', 'print the summaries as JSON')
  .option('--address <host:port>', "a cluster's GCS ('auto': the cluster started on this machine): ask each of its alive nodes " +
    'over TCP, with the auth token (RAYTS_AUTH_TOKEN or ~/.rayts/auth_token)')
  .option('--timeout-ms <n>', 'with --address: how long to wait for the GCS, each node and each process', positiveNumber('--timeout-ms'), 5000)
  .action(async (o: { session?: string; json?: boolean; address?: string; timeoutMs: number }) => {
    if (o.address !== undefined) {
      process.exitCode = await clusterMemory(o.address, Math.ceil(o.timeoutMs), o.json === true);
      return;
    }
    const { findSessions, formatMemorySummary, querySession } = await import('../api/memory.js');
    const { sessionRootPath } = await import('../api/session.js');
    const dirs = o.session !== undefined ? [o.session] : findSessions();
    if (dirs.length === 0) {
      process.stderr.write('rayts memory: no running rayts program found on this machine (no live session under ' +
        `${sessionRootPath()}). Start one with ray.init(), give --address for a cluster, or call ray.memorySummary() inside your program\n`);
      process.exitCode = 2;
      return;
    }
    const sessions = dirs.map((d) => querySession(d));
    if (o.json) {
      process.stdout.write(`${JSON.stringify(sessions, null, 2)}\n`);
      return;
    }
    for (const s of sessions) {
      process.stdout.write(`session ${s.sessionDir}: ${s.processes.length} processes\n`);
      for (const p of s.processes) process.stdout.write(`${formatMemorySummary(p)}\n\n`);
      for (const u of s.unreachable) process.stdout.write(`(no answer from ${u})\n`);
    }
  });

/** `rayts memory --address`: the exit code (1 when a node did not answer, 2 when the cluster cannot be asked). */
async function clusterMemory(given: string, timeoutMs: number, json: boolean): Promise<number> {
  const { findLocalCluster } = await import('../cluster/node_files.js');
  const { noTokenMessage, readToken } = await import('../cluster/auth.js');
  const address = given === 'auto' ? findLocalCluster() : given;
  if (address === undefined) {
    process.stderr.write("rayts memory: --address auto: no cluster runs on this machine (start one with rayts start --head)\n");
    return 2;
  }
  const token = readToken();
  if (token === undefined) {
    process.stderr.write(`rayts memory: ${noTokenMessage(address)}\n`);
    return 2;
  }
  const { formatClusterMemory, queryClusterMemory } = await import('../cluster/cluster_memory.js');
  try {
    const m = await queryClusterMemory(address, token, timeoutMs);
    process.stdout.write(json ? `${JSON.stringify(m, null, 2)}\n` : formatClusterMemory(m));
    return m.nodes.some((n) => n.error !== undefined) ? 1 : 0;
  } catch (e) {
    process.stderr.write(`rayts memory: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`rayts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
