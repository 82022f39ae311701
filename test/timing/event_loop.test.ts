// A driver's event loop keeps moving while it submits a burst of 10,000
// tasks and gets their 10,000 results, the first burst right after init()
// included: monitorEventLoopDelay (1 ms resolution) p99 and max stay under
// 20 ms. The burst is submitted as 10 synchronous runs of 1,000 .remote()
// calls, one per macrotask: a single synchronous loop of 10,000 calls holds
// the thread for 10,000 times the cost of a call (reported below), which no
// runtime can yield inside. ray.get of the 10,000 refs reads and waits in
// slices (ts/runtime/list_get.ts), and results reach JS in one batch of
// events per loop turn (256 at most in the runs measured here).
//
// A shared machine preempts this process, so a stall is counted as what
// the loop itself spent: the JS thread's CPU time during it
// (/proc/self/task/<tid>/schedstat), plus the time it slept, up to the CPU
// time the process's other threads used meanwhile (what it may have been
// waiting for: V8's GC helpers, the node server's thread). What is left out
// is the machine's load: time the kernel kept the JS thread runnable but off
// the CPU (its run-queue wait), and sleeps while the threads it waited for
// were themselves waiting for a CPU. On an idle machine these are ~0 and the
// figures agree; both are printed, and monitorEventLoopDelay's own p99/max
// are held to the bound too when the JS thread waited for a CPU less than 5%
// of the burst.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';

const N = 10_000;
const CHUNK = 1_000;
const BOUND_MS = 20;

/** The JS thread's CPU time and run-queue wait so far, in ms (the main thread's tid is the pid). */
const schedstat = `/proc/self/task/${process.pid}/schedstat`;
function jsThread(): { cpu: number; wait: number } {
  const f = readFileSync(schedstat, 'latin1').split(' ');
  return { cpu: Number(f[0]) / 1e6, wait: Number(f[1]) / 1e6 };
}
/** CPU time of every thread of this process so far, in ms. */
const processCpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

interface Stalls { raw: number[]; own: number[]; runQueueMs: number; ms: number }

/** Loop stalls, sampled every ms: each sample's lateness, raw and as the loop's own (see the top). */
function sampleStalls(): { stop: () => Stalls } {
  const raw: number[] = [];
  const own: number[] = [];
  const t0 = performance.now();
  const js0 = jsThread();
  let last = t0;
  let lastJs = js0;
  let lastCpu = processCpu();
  const t = setInterval(() => {
    const now = performance.now();
    const js = jsThread();
    const cpu = processCpu();
    const late = Math.max(0, now - last - 1);
    const jsCpu = js.cpu - lastJs.cpu;
    const others = Math.max(0, cpu - lastCpu - jsCpu);
    const slept = Math.max(0, late - (js.wait - lastJs.wait) - jsCpu);
    raw.push(late);
    own.push(Math.min(late, jsCpu + Math.min(slept, others)));
    last = now;
    lastJs = js;
    lastCpu = cpu;
  }, 1);
  return {
    stop: () => {
      clearInterval(t);
      return { raw, own, runQueueMs: jsThread().wait - js0.wait, ms: performance.now() - t0 };
    },
  };
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))] ?? 0;
const max = (xs: number[]): number => xs.reduce((a, b) => Math.max(a, b), 0);

async function burst(f: { remote(x: number): ray.ObjectRef<number> }): Promise<Stalls & { eldP99: number; eldMax: number }> {
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  await new Promise((r) => setTimeout(r, 5)); // the histogram drops its first sample
  eld.reset();
  await new Promise((r) => setTimeout(r, 5));
  const sampler = sampleStalls();
  const refs: ray.ObjectRef<number>[] = new Array(N);
  for (let i = 0; i < N; i++) {
    // Each run of CHUNK calls is a macrotask of its own (the first too: run
    // from the timer above, it would share a loop turn with the second).
    if (i % CHUNK === 0) await new Promise((r) => setImmediate(r));
    refs[i] = f.remote(i);
  }
  const values = await ray.get(refs, { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 5));
  const s = sampler.stop();
  eld.disable();
  expect(values.length).toBe(N);
  for (let i = 0; i < N; i += 997) expect(values[i]).toBe(i + 1);
  expect(values[N - 1]).toBe(N);
  return { ...s, eldP99: eld.percentile(99) / 1e6, eldMax: eld.max / 1e6 };
}

describe('the event loop during a burst of 10,000 tasks', () => {
  beforeAll(async () => { await ray.init({ numCpus: 2 }); });
  afterAll(async () => { await ray.shutdown(); });

  it('first burst right after init() and a warm one: p99 and max loop delay under 20 ms', async () => {
    const f = ray.remote((x: number) => x + 1);
    for (const which of ['first', 'warm']) {
      const r = await burst(f);
      const idle = r.runQueueMs < 0.05 * r.ms;
      console.log(`${which} burst (${r.ms.toFixed(0)} ms, JS thread waited ${r.runQueueMs.toFixed(0)} ms for a CPU): ` +
        `monitorEventLoopDelay p99 ${r.eldP99.toFixed(1)} ms, max ${r.eldMax.toFixed(1)} ms` +
        `${idle ? '' : ' (not held to the bound: the machine is loaded)'}; sampled stalls p99 ${p99(r.raw).toFixed(1)} / ` +
        `max ${max(r.raw).toFixed(1)} ms, the loop's own p99 ${p99(r.own).toFixed(1)} / max ${max(r.own).toFixed(1)} ms ` +
        `(${r.raw.length} samples)`);
      expect(p99(r.own)).toBeLessThanOrEqual(BOUND_MS);
      expect(max(r.own)).toBeLessThanOrEqual(BOUND_MS);
      if (idle) {
        expect(r.eldP99).toBeLessThanOrEqual(BOUND_MS);
        expect(r.eldMax).toBeLessThanOrEqual(BOUND_MS);
      }
    }
  }, 120_000);

  it('.remote() costs the caller a few microseconds (median over 10,000 calls)', async () => {
    const f = ray.remote((x: number) => x);
    const times = new Float64Array(N);
    const refs: ray.ObjectRef<number>[] = new Array(N);
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      refs[i] = f.remote(i);
      times[i] = performance.now() - t0;
    }
    await ray.get(refs, { timeoutMs: 60_000 });
    times.sort();
    const median = times[N >> 1]! * 1000;
    console.log(`.remote(): median ${median.toFixed(2)} us, p90 ${(times[Math.floor(N * 0.9)]! * 1000).toFixed(2)} us per call`);
    expect(median).toBeGreaterThan(0);
    expect(median).toBeLessThan(15); // a few us here, 3-4 us with the machine loaded ~20
  }, 120_000);
});
