// The Ray microbenchmark timer, replicated from Ray's
// python/ray/_private/ray_microbenchmark_helpers.py (timeit / asyncio_timeit):
//
//   sleep(warmup_time_sec)                       # "avoid noisy neighbours"; Ray: 10 s
//   warm-up: call fn() until 1 s has passed, counting the calls
//   step = count // 10 + 1
//   4 times: call fn() in batches of `step` until >= 2 s have passed;
//            stat = multiplier * calls / elapsed
//   print(name, "per second", round(mean, 2), "+-", round(std, 2))   # np.std: population
//
// Differences, all for JavaScript's sake: `fn` may return a promise (awaited,
// as asyncio_timeit does); after each batch of `step` calls the loop yields
// one macrotask turn (setImmediate), so that garbage-collection callbacks
// (ObjectRef finalizers) and batched reference drops run, as Python's
// refcounting frees immediately. The 2 s run length and the pre-row sleep
// are options (Ray's defaults: 2000 ms and 10 s; our CLI default sleep is 0).

export interface TimeitOptions {
  /** Length of each of the 4 measured runs (Ray: 2 s). */
  durationMs?: number;
  /** Warm-up length (Ray: 1 s). Default min(1000, durationMs). */
  warmupMs?: number;
  /** Idle time before the warm-up (Ray: warmup_time_sec = 10 s). Default 0. */
  sleepMs?: number;
  /** Number of measured runs (Ray: 4). */
  runs?: number;
  /** Checked between calls; when it returns true the timer throws. */
  aborted?: () => boolean;
}

export interface TimeitResult {
  name: string;
  mean: number;
  std: number;
  /** Each run's rate (multiplier * calls / seconds). */
  stats: number[];
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

export class TimeitAborted extends Error {
  constructor() {
    super('timer aborted');
    this.name = 'TimeitAborted';
  }
}

/** Python's round(x, 2) printed the way Python prints a float. */
export function pyRound2(x: number): string {
  const r = Math.round(x * 100) / 100;
  if (!Number.isFinite(r)) return String(r);
  const s = String(r);
  return Number.isInteger(r) && !s.includes('e') ? `${s}.0` : s;
}

/** One output row, exactly as Ray prints it: `name per second mean +- std`. */
export function formatRow(name: string, mean: number, std: number): string {
  return `${name} per second ${pyRound2(mean)} +- ${pyRound2(std)}`;
}

/**
 * Times `fn` as Ray's timeit does and returns the mean and population
 * standard deviation of `multiplier * calls / second` over the runs.
 * `fn` must not return an ObjectRef (which is PromiseLike: it would be got).
 */
export async function timeit(name: string, fn: () => unknown, multiplier = 1, opts: TimeitOptions = {}): Promise<TimeitResult> {
  const durationMs = opts.durationMs ?? 2000;
  const warmupMs = opts.warmupMs ?? Math.min(1000, durationMs);
  const runs = opts.runs ?? 4;
  const aborted = opts.aborted ?? ((): boolean => false);
  if (opts.sleepMs) await sleep(opts.sleepMs);

  // Warm-up: as many calls as fit in warmupMs.
  let start = performance.now();
  let count = 0;
  while (performance.now() - start < warmupMs) {
    if (aborted()) throw new TimeitAborted();
    const r = fn();
    if (isThenable(r)) await r;
    count++;
    if ((count & 63) === 0) await yieldTurn();
  }
  await yieldTurn();

  const step = Math.floor(count / 10) + 1;
  const stats: number[] = [];
  for (let run = 0; run < runs; run++) {
    start = performance.now();
    count = 0;
    while (performance.now() - start < durationMs) {
      for (let i = 0; i < step; i++) {
        if (aborted()) throw new TimeitAborted();
        const r = fn();
        if (isThenable(r)) await r; // only async bodies pay for a microtask
      }
      count += step;
      await yieldTurn();
    }
    const end = performance.now();
    stats.push((multiplier * count) / ((end - start) / 1000));
  }
  const mean = stats.reduce((a, b) => a + b, 0) / stats.length;
  const std = Math.sqrt(stats.reduce((a, b) => a + (b - mean) ** 2, 0) / stats.length);
  return { name, mean, std, stats };
}
