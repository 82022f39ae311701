// Fair leases: while one function's long queue keeps every CPU busy, a task
// of another function still starts soon, because a lease goes back to the
// node at most 500 ms after its grant when tasks queue behind it (Ray's
// worker_lease_timeout_milliseconds), and the node gives the worker to the
// request that waited. For 5 ms tasks (one in flight per worker) and for
// 2 ms tasks, which the owner pipelines: a lease past its hold first drains
// what it holds on its worker (at most 50 ms of work, however the replies
// of a batch arrive: see NormalTaskSubmitter's service time).
// The probes start once the batch runs on every CPU: before, a probe also
// waits for the prestarted workers to come up (over a second on a loaded
// machine), which is not what this measures.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { until } from '../support/wait.js';

const CPUS = 2;
const PROBES = 20;

async function probeDelays(taskMs: number, queued: number): Promise<{ waits: number[]; done: number; batch: ray.ObjectRef<number>[] }> {
  const busy = ray.remote((ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) { /* a CPU-bound task */ }
    return 0;
  });
  const probe = ray.remote(() => Date.now());
  const batch = Array.from({ length: queued }, () => busy.remote(taskMs));
  await until(async () => (await ray.debugStats()).node.leased === CPUS, 60_000, `the batch to hold all ${CPUS} CPUs`);
  const waits: number[] = [];
  for (let i = 0; i < PROBES; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const sent = Date.now();
    const started = await ray.get(probe.remote(), { timeoutMs: 10_000 });
    waits.push(started - sent);
  }
  const [done] = await ray.wait(batch, { numReturns: batch.length, timeoutMs: 0 });
  return { waits, done: done.length, batch };
}

function report(taskMs: number, waits: number[]): number {
  const sorted = [...waits].sort((a, b) => a - b);
  const p99 = sorted[sorted.length - 1]!; // p99 of 20 probes: the largest
  console.log(`${taskMs} ms tasks: probe start delay median ${sorted[PROBES / 2]} ms, max ${p99} ms (${PROBES} probes)`);
  return p99;
}

describe('fair scheduling across functions', () => {
  beforeEach(async () => { await ray.init({ numCpus: CPUS }); });
  afterEach(async () => { await ray.shutdown(); });

  it('a task of another function starts within 1 s while 10,000 queued 5 ms tasks of one function run (p99 of 20 probes)', async () => {
    const { waits, done, batch } = await probeDelays(5, 10_000);
    expect(done).toBeGreaterThan(0); // the batch was running meanwhile,
    expect(done).toBeLessThan(batch.length); // and still queued at the last probe
    expect(report(5, waits)).toBeLessThan(1000);
    await ray.get(batch, { timeoutMs: 180_000 });
  }, 260_000);

  it('and so it does while 20,000 queued 2 ms tasks run, pipelined on an idle machine (p99 of 20 probes)', async () => {
    const { waits, done, batch } = await probeDelays(2, 20_000);
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(batch.length);
    expect(report(2, waits)).toBeLessThan(1000);
    // The rest is not awaited: shutdown ends it (ray.shutdown with a queue).
  }, 120_000);
});
