#!/usr/bin/env node
// The `rayts` command line. Subcommands: microbenchmark, memory.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { distDir } from './here.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(distDir, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

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
  .action(async (o: {
    json?: string; filter?: string; skip?: string; durationMs?: number; sleepMs: number;
    rowTimeoutMs?: number; numCpus?: number; objectStoreMemory?: number; summary: boolean; releaseRefs?: boolean;
  }) => {
    const { runMicrobenchmark } = await import('./bench/microbenchmark.js');
    const opts: Parameters<typeof runMicrobenchmark>[0] = { sleepMs: o.sleepMs, summary: o.summary, releaseRefs: o.releaseRefs === true };
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
  .description("Ray's `ray memory`: the objects of a running rayts program. Today every cluster is embedded in its driver process, so there is nothing to attach to from outside: call `await ray.memorySummary()` (typed) or print `ray.formatMemorySummary(await ray.memorySummary())` inside the program")
  .option('--address <host:port>', 'a running cluster to attach to (needs `rayts start`, not implemented yet)')
  .action((o: { address?: string }) => {
    const where = o.address !== undefined ? `the cluster at ${o.address}` : 'a running cluster';
    process.stderr.write(
      `rayts memory: cannot attach to ${where}: this version of rayts runs embedded clusters only (inside the driver ` +
      `process; \`rayts start\` does not exist yet), so no other process can read a program's objects.\n` +
      `Inside your program, use:\n  console.log(ray.formatMemorySummary(await ray.memorySummary()));\n` +
      `(objects with owner, size, location and reference kinds: local, submitted, contained, borrowed-by N, lineage).\n`);
    process.exitCode = 2;
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`rayts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
