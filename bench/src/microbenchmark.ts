// `rayts microbenchmark`: runs the Ray-shaped rows (ray_perf.ts) with Ray's
// timer (timeit.ts) on an embedded local cluster, prints each row as Ray
// does (`name per second mean +- std`) on stdout, and optionally writes the
// results as JSON. Notes, progress and skipped rows go to stderr.
//
// A row that throws or overruns its time limit is skipped with a message;
// the cluster is then restarted so the remaining rows run on a clean one.
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as ray from 'rayts';
import { formatRow, timeit, TimeitAborted } from './timeit.js';
import { rayPerfRows, REFERENCE, type BenchContext, type BenchRow, type Unit } from './ray_perf.js';
import { CLUSTER_SHAPE, clusterRows } from './cluster_rows.js';

export interface MicrobenchmarkOptions {
  /** Write the results here as a JSON array of {name, mean, std, unit}. */
  json?: string;
  /** Run only rows whose name contains this (Ray: TESTS_TO_RUN). */
  filter?: string;
  /** Skip rows whose name contains this (Ray: TESTS_TO_SKIP). */
  skip?: string;
  /** Length of each of the 4 measured runs; Ray: 2000. */
  durationMs?: number;
  /** Idle time before each row; Ray sleeps 10 s. */
  sleepMs?: number;
  /** Per-row limit (setup + timer); default: the timer's own length + 60 s. */
  rowTimeoutMs?: number;
  numCpus?: number;
  objectStoreMemory?: number;
  /** Put rows release each put's ref at once (see BenchContext.releaseRefs). */
  releaseRefs?: boolean;
  /** Print the comparison with Ray / piscina reference figures at the end (stderr). */
  summary?: boolean;
  /**
   * Also run the cluster rows (a 2-node cluster on this machine, started and
   * stopped by the run). Off by default; a filter matching a cluster row's
   * name runs it too.
   */
  cluster?: boolean;
}

export interface RowResult {
  name: string;
  mean: number | null;
  std: number | null;
  unit: Unit;
  /** Present when the row was skipped. */
  error?: string;
}

const GiB = 1024 ** 3;
/** This module's directory (bench/dist when built): piscina_task.js is beside it. */
const here = path.dirname(fileURLToPath(import.meta.url));

class RowTimeout extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'RowTimeout';
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

type Pool = { run(task: unknown): Promise<unknown>; destroy(): Promise<void> };

export async function runMicrobenchmark(opts: MicrobenchmarkOptions = {}): Promise<RowResult[]> {
  const durationMs = opts.durationMs ?? 2000;
  const sleepMs = opts.sleepMs ?? 0;
  const warmupMs = Math.min(1000, durationMs);
  const rowTimeoutMs = opts.rowTimeoutMs ?? sleepMs + warmupMs + 4 * durationMs + 60_000;
  const numCpus = opts.numCpus ?? os.availableParallelism();
  const objectStoreMemory = opts.objectStoreMemory ?? 2 * GiB;
  const filter = opts.filter ?? process.env.TESTS_TO_RUN ?? '';
  const skip = opts.skip ?? process.env.TESTS_TO_SKIP ?? '';

  // Cluster rows last: one cluster for all of them, after the embedded one is shut down.
  const wanted = (r: BenchRow): boolean => (!filter || r.name.includes(filter)) && (!skip || !r.name.includes(skip));
  const rows = [
    ...rayPerfRows().filter(wanted),
    ...clusterRows().filter((r) => wanted(r) && (opts.cluster === true || filter !== '')),
  ];
  const results: RowResult[] = [];
  if (rows.length === 0) {
    log(`rayts microbenchmark: no row matches filter '${filter}'`);
    return results;
  }

  log(`rayts microbenchmark: numCpus=${numCpus}, objectStoreMemory=${(objectStoreMemory / GiB).toFixed(2)} GiB, ` +
    `timer: ${warmupMs} ms warm-up + 4 x ${durationMs} ms (Ray: 1 s + 4 x 2 s), sleep ${sleepMs} ms before each row (Ray: 10 s)`);
  if (opts.releaseRefs) log('note: --release-refs: put rows call ref.release() on every put (Ray\'s shape drops the ref by refcounting; JS default is GC)');
  const load = os.loadavg()[0]!;
  log(`rayts microbenchmark: load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores`);
  if (load > os.availableParallelism() / 2) {
    log(`WARNING: the machine is busy (1-minute load ${load.toFixed(2)}); rows will be slow and noisy`);
  }
  log('Tip: use --filter SUBSTR (or TESTS_TO_RUN) to run a subset of benchmarks');

  // A rejection left behind by an aborted row must not end the process.
  const onStrayRejection = (e: unknown): void => log(`rayts microbenchmark: stray rejection after a skipped row: ${describe(e)}`);
  process.on('unhandledRejection', onStrayRejection);

  let clusterUp = false;
  const startCluster = async (): Promise<void> => {
    const t0 = performance.now();
    await ray.init({ numCpus, objectStoreMemory });
    clusterUp = true;
    log(`rayts microbenchmark: cluster up in ${(performance.now() - t0).toFixed(0)} ms`);
  };
  const stopCluster = async (): Promise<void> => {
    if (!clusterUp) return;
    clusterUp = false;
    await ray.shutdown();
  };
  // The cluster rows' 2-node cluster (rayts/testing), the driver attached to its head.
  let multi: { shutdown(): Promise<void> } | undefined;
  const startMulti = async (): Promise<void> => {
    await stopCluster();
    const t0 = performance.now();
    const { Cluster } = await import('rayts/testing');
    const nodeCpus = Math.max(1, Math.floor(numCpus));
    const c = await Cluster.start({
      head: { numCpus: 1, objectStoreMemory: CLUSTER_SHAPE.head.objectStoreMemory },
      nodes: [{ numCpus: nodeCpus, objectStoreMemory: CLUSTER_SHAPE.other.objectStoreMemory }],
    });
    multi = c;
    await ray.init({ address: c.address });
    ctx.cluster = { headNodeId: c.head.nodeId, otherNodeId: c.nodes[1]!.nodeId };
    log(`rayts microbenchmark: 2-node cluster up in ${(performance.now() - t0).toFixed(0)} ms ` +
      `(head: 1 CPU, ${(CLUSTER_SHAPE.head.objectStoreMemory / GiB).toFixed(2)} GiB store; other node: ${nodeCpus} CPUs, ` +
      `${(CLUSTER_SHAPE.other.objectStoreMemory / GiB).toFixed(2)} GiB store; both on this machine, TCP over 127.0.0.1)`);
  };
  const stopMulti = async (): Promise<void> => {
    if (!multi) return;
    const c = multi;
    multi = undefined;
    delete ctx.cluster;
    await ray.shutdown();
    await c.shutdown();
  };

  let pool: Pool | undefined;
  const ctx: BenchContext = {
    ray,
    releaseRefs: opts.releaseRefs ?? false,
    async piscina() {
      if (!pool) {
        const { Piscina } = await import('piscina');
        pool = new Piscina({ filename: pathToFileURL(path.join(here, 'piscina_task.js')).href }) as unknown as Pool;
      }
      return pool;
    },
  };

  try {
    for (const row of rows) {
      if (row.kind === 'rayts' && !clusterUp) await startCluster();
      if (row.kind === 'cluster' && !multi) await startMulti();
      if (row.note) log(`note: ${row.name}: ${row.note}`);
      let aborted = false;
      let timer: NodeJS.Timeout | undefined;
      const attempt = (async () => {
        const fn = await setupRow(row, ctx);
        return timeit(row.name, fn, row.multiplier, { durationMs, warmupMs, sleepMs, aborted: () => aborted });
      })();
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RowTimeout(rowTimeoutMs)), rowTimeoutMs);
      });
      try {
        const r = await Promise.race([attempt, deadline]);
        process.stdout.write(`${formatRow(r.name, r.mean, r.std)}\n`);
        results.push({ name: row.name, mean: r.mean, std: r.std, unit: row.unit });
      } catch (e) {
        aborted = true;
        attempt.catch(() => undefined);
        const why = e instanceof TimeitAborted ? 'aborted' : describe(e);
        log(`rayts microbenchmark: SKIPPED '${row.name}': ${why}`);
        results.push({ name: row.name, mean: null, std: null, unit: row.unit, error: why });
        if (row.kind === 'rayts') {
          log('rayts microbenchmark: restarting the cluster for the remaining rows');
          await stopCluster();
        } else if (row.kind === 'cluster') {
          log('rayts microbenchmark: restarting the 2-node cluster for the remaining rows');
          await stopMulti();
        } else if (pool) {
          const p = pool;
          pool = undefined;
          await p.destroy().catch(() => undefined);
        }
      } finally {
        clearTimeout(timer);
        await row.teardown?.();
      }
    }
  } finally {
    await stopCluster();
    await stopMulti();
    if (pool) await pool.destroy().catch(() => undefined);
    // Let stray rejections of aborted rows surface before detaching the handler.
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onStrayRejection);
  }

  log(`rayts microbenchmark: done; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
    log(`rayts microbenchmark: wrote ${results.length} rows to ${opts.json}`);
  }
  if (opts.summary ?? true) printSummary(results);
  return results;
}

async function setupRow(row: BenchRow, ctx: BenchContext): Promise<() => unknown> {
  return row.setup(ctx);
}

function fmt(x: number | undefined): string {
  if (x === undefined) return '—';
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(2);
}

function printSummary(results: RowResult[]): void {
  const lines: string[][] = [['row', 'rayts', 'Ray 2.58', 'piscina 5.3']];
  for (const r of results) {
    const ref = REFERENCE[r.name] ?? {};
    const unit = r.unit === 'GB/s' ? ' GB/s' : '';
    lines.push([r.name, r.mean === null ? 'SKIPPED' : fmt(r.mean) + unit, fmt(ref.ray), fmt(ref.piscina)]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  log('\nsummary: rayts in this run; Ray 2.58 (`ray microbenchmark`, ray_perf.py) and piscina 5.3 measured earlier');
  log('on a 2-core, 24 GiB Linux machine (ops/s unless noted; piscina rows above are from this run):');
  for (const l of lines) log(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  // The same trivial task on both, same run: the ratio.
  const mean = (name: string): number | null | undefined => results.find((r) => r.name === name)?.mean;
  for (const kind of ['sync', 'async']) {
    const ours = mean(`single client tasks ${kind}`);
    const theirs = mean(`piscina tasks ${kind}`);
    if (typeof ours === 'number' && typeof theirs === 'number' && theirs > 0) {
      log(`tasks ${kind}, this run: rayts ${fmt(ours)}/s, piscina ${fmt(theirs)}/s: rayts at ${(ours / theirs).toFixed(2)}x piscina`);
    }
  }
  const xfer = mean('object transfer between nodes gigabytes (1 GiB object)');
  const loop = mean('object transfer between nodes: loopback TCP limit gigabytes (1 GiB)');
  if (typeof xfer === 'number' && typeof loop === 'number' && loop > 0) {
    log(`object transfer between nodes, this run: ${fmt(xfer)} GB/s against ${fmt(loop)} GB/s over loopback TCP ` +
      `(${((100 * xfer) / loop).toFixed(0)} % of it)`);
  }
}
