// Footprint of an embedded cluster in a long-lived host: init()/shutdown()
// in a loop gives back every fd, thread, store mapping and worker process,
// and an idle cluster commits memory as it is used, not up front.
// RAYTS_TEST_CYCLES sets the number of cycles (default 100, the requirement;
// ~30-70 s here).
import { afterAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { footprint, type Footprint } from '../support/proc.js';
import { until } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IDLE_DRIVER = fileURLToPath(new URL('../fixtures/idle_driver.mjs', import.meta.url));

const CYCLES = Number(process.env.RAYTS_TEST_CYCLES ?? 100);

afterAll(() => ray.shutdown());

async function oneCycle(): Promise<void> {
  await ray.init({ numCpus: 1 });
  const inc = ray.remote((x: number) => x + 1);
  expect(await inc.remote(1)).toBe(2);
  // A plasma object read back as a zero-copy view, dropped before shutdown.
  const big = ray.put(new Float64Array(1 << 20).fill(3));
  expect((await ray.get(big))[12345]).toBe(3);
  await ray.shutdown();
}

describe('init/shutdown cycles', () => {
  it(`${CYCLES} cycles: fds, threads, store mappings and workers return to their start; RSS stays flat`, async () => {
    const before = footprint();
    const t0 = performance.now();
    await oneCycle();
    const first = footprint();
    // The first cycle may load the addon and start lazily made threads of
    // the host (libuv pool): later cycles are held to what it left.
    expect(first.fds).toBeLessThanOrEqual(before.fds + 2);
    expect(first.storeMaps).toBe(0);
    expect(first.children).toEqual([]);
    const seen: Footprint[] = [first];
    for (let i = 1; i < CYCLES; i++) {
      await oneCycle();
      const f = footprint();
      seen.push(f);
      const where = `after cycle ${i + 1}: ${JSON.stringify(f)} (first: ${JSON.stringify(first)})`;
      expect(Math.abs(f.fds - first.fds), where).toBeLessThanOrEqual(2);
      expect(f.threads, where).toBe(first.threads);
      expect(f.storeMaps, where).toBe(0);
      expect(f.children, where).toEqual([]);
      expect(f.rssMb - first.rssMb, where).toBeLessThan(50);
    }
    const last = seen[seen.length - 1]!;
    console.log(`${CYCLES} init/shutdown cycles in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
      `fds ${before.fds} -> ${first.fds} -> ${last.fds}, threads ${before.threads} -> ${first.threads} -> ${last.threads}, ` +
      `RSS ${before.rssMb.toFixed(0)} -> ${first.rssMb.toFixed(0)} -> ${last.rssMb.toFixed(0)} MB`);
  }, 60_000 + CYCLES * 3_000);
});

describe('views across shutdown', () => {
  it('a zero-copy view still reachable at shutdown stays readable, and the store is let go', async () => {
    await ray.init({ numCpus: 1 });
    const kept = await ray.get(ray.put(new Uint8Array(1 << 20).fill(7)));
    await ray.shutdown();
    expect(footprint().storeMaps).toBe(0);
    expect(kept[0]).toBe(7);
    expect(kept[(1 << 20) - 1]).toBe(7);
    expect(kept.every((b) => b === 7)).toBe(true);
  });
});

describe('idle footprint', () => {
  it('an idle init() with the default store: driver + prestarted workers <= 250 MB RSS, the store commits <= 64 MB', async () => {
    const r = spawnSync(process.execPath, [IDLE_DRIVER], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      prestart: number; driverRssMb: number; workers: { pid: number; rssMb: number }[];
      storeCapacity: number; committed: number; storeFileBytes: number; shmemDeltaMb: number;
    };
    const total = m.driverRssMb + m.workers.reduce((a, w) => a + w.rssMb, 0);
    console.log(`idle 10 s: driver ${m.driverRssMb.toFixed(0)} MB + ${m.workers.length} workers ` +
      `(${m.workers.map((w) => w.rssMb.toFixed(0)).join(', ')} MB) = ${total.toFixed(0)} MB RSS; store commits ` +
      `${(m.committed / 2 ** 20).toFixed(0)} of ${(m.storeCapacity / 2 ** 20).toFixed(0)} MB ` +
      `(file ${(m.storeFileBytes / 2 ** 20).toFixed(0)} MB); system Shmem ${m.shmemDeltaMb >= 0 ? '+' : ''}${m.shmemDeltaMb.toFixed(0)} MB`);
    expect(m.workers.length).toBeGreaterThanOrEqual(m.prestart);
    expect(m.storeCapacity).toBeGreaterThan(64 * 2 ** 20);  // the default store is larger than what it commits
    expect(total).toBeLessThanOrEqual(250);
    expect(m.committed).toBeLessThanOrEqual(64 * 2 ** 20);
    // The store's share of the machine's Shmem (other processes move the
    // system figure, so it is printed, not asserted).
    expect(m.storeFileBytes).toBeGreaterThan(0);
    expect(m.storeFileBytes).toBeLessThanOrEqual(64 * 2 ** 20);
  }, 90_000);

  it('a large put commits ahead of what the store hands out, in the background', async () => {
    await ray.init({ numCpus: 1 });
    const before = (await ray.debugStats()).node.prefaulted!;
    const big = ray.put(new Uint8Array(96 << 20).fill(1));
    // The store prefaults up to twice what it has handed out.
    await until(async () => (await ray.debugStats()).node.prefaulted! >= 2 * (96 << 20), 20_000, 'the store to commit 192 MB');
    expect(before).toBeLessThan(96 << 20);
    expect((await ray.get(big))[(96 << 20) - 1]).toBe(1);
    await ray.shutdown();
  }, 60_000);
});
