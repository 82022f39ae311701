// Long-running loops stay flat: many iterations of `await f.remote(i)`, of
// `ray.put(x)` whose ref is simply dropped (collected by GC), and of
// `ray.put(x)` + `.release()`. The driver's RSS (embedded mode: the node
// server and its object store bookkeeping live in this process too) and the
// store usage are sampled along the way; the last quarter may not sit far
// above the second quarter, and the store drains to (near) empty at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { MiB, report, rssOf, scaled } from './helpers.js';
import { obtainGc } from '../support/gc.js';
import { storeUsed } from '../support/stats.js';

const SAMPLES = 40;
// ci scale: ~2,300 tasks/s and ~5,000-10,000 puts/s measured here, so the
// three loops take ~30 s of the ci suite's 3 minute budget.
const N_TASKS = scaled(100_000, 30_000);
const N_PUTS = scaled(100_000, 30_000);

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 128 * MiB }));
afterAll(() => ray.shutdown());

const gc = obtainGc();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Trace {
  rss: number[];
  store: number[];
}

/**
 * Runs `body(i)` for i in [0, n), sampling RSS and store usage SAMPLES
 * times, then checks flatness and that the store drains. Returns figures.
 */
async function runFlat(name: string, n: number, body: (i: number) => Promise<void> | void): Promise<Record<string, number>> {
  gc();
  const baseStore = await storeUsed();
  const baseCore = (await ray.debugStats()).core;
  const startRss = rssOf();
  const t: Trace = { rss: [], store: [] };
  const every = Math.max(1, Math.floor(n / SAMPLES));
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    await body(i);
    if ((i + 1) % every === 0) {
      // Sample what is retained, not garbage waiting for V8: without a
      // collection here, V8 (which does not see the native side of a ref)
      // lets tens of thousands of dead refs and their memory-store entries
      // pile up between major GCs (measured: 53,000, RSS swinging by ~100 MiB).
      gc();
      t.rss.push(rssOf());
      t.store.push(await storeUsed());
    }
  }
  const seconds = (Date.now() - t0) / 1000;
  const q = Math.floor(t.rss.length / 4);
  const second = median(t.rss.slice(q, 2 * q));
  const last = median(t.rss.slice(3 * q));
  // Flat: the last quarter's median RSS at most max(+25%, +64 MiB) above
  // the second quarter's. The first quarter is warm-up (JIT, V8 heap and
  // malloc arenas growing to their working size). The slack absorbs V8's
  // lazy heap sizing and GC timing (RSS of a ~150 MiB node process moves by
  // tens of MiB even right after a collection, as malloc arenas and V8
  // spaces are not returned at once); a real per-iteration leak of 1 KiB
  // over 100,000 iterations (~100 MiB) would exceed it, and the store and
  // ref-count checks below catch leaked objects of any size.
  const bound = Math.max(second * 1.25, second + 64 * MiB);
  expect(last, `${name}: RSS last-quarter median ${last} vs second-quarter ${second}`).toBeLessThanOrEqual(bound);

  // The store drains: every object of the loop is freed (dropped refs once
  // collected). Bounded wait: frees are asynchronous messages.
  let final = await storeUsed();
  const end = Date.now() + 20_000;
  while (final > baseStore + 1 * MiB && Date.now() < end) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
    final = await storeUsed();
  }
  expect(final, `${name}: store usage ${final} bytes at the end (baseline ${baseStore})`).toBeLessThanOrEqual(baseStore + 1 * MiB);
  // No ref or memory-store entry of the loop survives (their finalizers run
  // after the collection: bounded wait).
  let core = (await ray.debugStats()).core;
  const coreEnd = Date.now() + 20_000;
  while ((core.ownedRefs! > baseCore.ownedRefs! + 8 || core.memoryStoreObjects! > baseCore.memoryStoreObjects! + 8) && Date.now() < coreEnd) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
    core = (await ray.debugStats()).core;
  }
  expect(core.ownedRefs, `${name}: owned refs at the end`).toBeLessThanOrEqual(baseCore.ownedRefs! + 8);
  expect(core.memoryStoreObjects, `${name}: memory-store objects at the end`).toBeLessThanOrEqual(baseCore.memoryStoreObjects! + 8);
  const figures = {
    iterations: n,
    seconds,
    startRss,
    peakRss: Math.max(...t.rss),
    secondQuarterMedianRss: second,
    lastQuarterMedianRss: last,
    finalRss: rssOf(),
    baseStoreUsed: baseStore,
    peakStoreUsed: Math.max(...t.store),
    finalStoreUsed: final,
    finalOwnedRefs: core.ownedRefs!,
  };
  report(`long_running_${name}`, figures);
  return figures;
}

describe('long-running loops stay flat', () => {
  it(`await f.remote(i): ${N_TASKS} tasks, one at a time`, async () => {
    const f = ray.remote((i: number) => i * 3 + 1);
    let wrong = 0;
    await runFlat('tasks', N_TASKS, async (i) => {
      if ((await f.remote(i)) !== i * 3 + 1) wrong++;
    });
    expect(wrong).toBe(0);
  }, 1_200_000);

  // 160 KB per put: above the inline limit, so every put is a plasma object;
  // 100,000 of them are ~16 GB through a 128 MiB store.
  const big = new Float64Array(20_000).fill(1.5);

  it(`ray.put(x) dropped without release: ${N_PUTS} plasma puts`, async () => {
    let kept = 0;
    await runFlat('put_drop', N_PUTS, async (i) => {
      const r = ray.put(big);
      if (r.id.length === 40) kept++;
      if (i % 100 === 99) await new Promise((res) => setImmediate(res)); // let finalizers run
    });
    expect(kept).toBe(N_PUTS);
    // Dropped garbage was freed, not written to disk.
    expect((await ray.storeStats()).spillUsed).toBe(0);
  }, 1_200_000);

  it(`ray.put(x) + release(): ${N_PUTS} plasma puts`, async () => {
    let kept = 0;
    await runFlat('put_release', N_PUTS, async (i) => {
      const r = ray.put(big);
      if (r.id.length === 40) kept++;
      r.release();
      if (i % 100 === 99) await new Promise((res) => setImmediate(res));
    });
    expect(kept).toBe(N_PUTS);
    expect((await ray.storeStats()).spillUsed).toBe(0);
  }, 1_200_000);
});
