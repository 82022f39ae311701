// Objects and placement across the nodes of a real 2-node cluster
// (rayts/testing Cluster), the driver on the head:
// - locality-aware leasing: a task whose large argument lives on node 2
//   runs on node 2 (the head has room: without locality it would stay);
// - ray.wait fetchLocal: true pulls a ready object made on node 2 to the
//   head before counting it ready, false counts it at once and pulls nothing;
// - a pull of an object whose primary is spilled on node 2 is served from
//   its spill file (not restored there), byte-identical.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { twoNodeCluster } from '../support/cluster.js';

const MiB = 1 << 20;
const c = twoNodeCluster({
    head: { numCpus: 2, objectStoreMemory: 256 * MiB },
    nodes: [{ numCpus: 4, objectStoreMemory: 64 * MiB }],
});

const onN2 = (): { schedulingStrategy: { nodeId: string } } => ({ schedulingStrategy: { nodeId: c.n2.nodeId } });
const n2Stats = ray.remote(async () => (await (await import('rayts')).debugStats()).node);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** `n` bytes of `seed`, made by a task (its result is stored on the node that runs it). */
const make = ray.remote((n: number, seed: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
});
function expected(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

describe('objects and placement across nodes', () => {
  it('a task whose large argument lives on node 2 runs on node 2 (locality-aware leasing)', async () => {
    const big = make.options(onN2()).remote(8 * MiB, 1);
    await ray.wait([big], { fetchLocal: false, timeoutMs: 30_000 });
    const where = ray.remote(async (b: Uint8Array) => [b.length, (await import('rayts')).getRuntimeContext().nodeId] as const);
    const before = await n2Stats.options(onN2()).remote();
    // The head has free CPUs: without locality the hybrid policy keeps the task there.
    const [len, node] = await ray.get(where.remote(big), { timeoutMs: 30_000 });
    expect(len).toBe(8 * MiB);
    expect(node).toBe(c.n2.nodeId);
    const after = await n2Stats.options(onN2()).remote();
    expect(after.pullsStarted).toBe(before.pullsStarted); // read where it lies: no transfer
    // An argument on the head: the task stays on the head.
    const local = ray.put(new Uint8Array(8 * MiB));
    const [, node2] = await ray.get(where.remote(local), { timeoutMs: 30_000 });
    expect(node2).toBe(c.cluster.head.nodeId);
    big.release();
    local.release();
  }, 60_000);

  it('wait({ fetchLocal: true }) pulls a ready remote object before counting it; fetchLocal: false does not pull', async () => {
    const ref = make.options(onN2()).remote(16 * MiB, 2);
    const [ready0] = await ray.wait([ref], { fetchLocal: false, timeoutMs: 30_000 });
    expect(ready0).toHaveLength(1);
    const s0 = (await ray.debugStats()).node;
    // Ready without a pull: it exists on node 2.
    const [again] = await ray.wait([ref], { fetchLocal: false, timeoutMs: 0 });
    expect(again).toHaveLength(1);
    expect((await ray.debugStats()).node.pullsStarted).toBe(s0.pullsStarted);

    const [ready1] = await ray.wait([ref], { fetchLocal: true, timeoutMs: 30_000 });
    expect(ready1).toHaveLength(1);
    const s1 = (await ray.debugStats()).node;
    // Counted ready only once it was on the head: the pull had completed.
    expect(s1.pullsCompleted! - s0.pullsCompleted!).toBe(1);
    expect(s1.pulledBytes! - s0.pulledBytes!).toBeGreaterThanOrEqual(16 * MiB);
    // The get reads the local copy: no second pull.
    expect(sha(await ray.get(ref))).toBe(sha(expected(16 * MiB, 2)));
    expect((await ray.debugStats()).node.pullsStarted).toBe(s1.pullsStarted);
    ref.release();
  }, 60_000);

  it('an object whose primary is spilled on node 2 is pulled from its spill file, byte-identical', async () => {
    // Node 2's store holds 64 MiB: the third 24 MiB result spills an earlier one (primaries are pinned).
    const seeds = [3, 4, 5];
    const refs: ray.ObjectRef<Uint8Array>[] = [];
    for (const seed of seeds) {
      refs.push(make.options(onN2()).remote(24 * MiB, seed));
      await ray.wait([refs[refs.length - 1]!], { fetchLocal: false, timeoutMs: 30_000 });
    }
    const n2Store = ray.remote(async () => (await (await import('rayts')).storeStats()).objects);
    const spilled = (await n2Store.options(onN2()).remote()).filter((o) => o.location === 'spilled').map((o) => o.id);
    const i = refs.findIndex((r) => spilled.includes(r.id));
    expect(i, `spilled on node 2: ${spilled.join(', ')}`).toBeGreaterThanOrEqual(0);
    const before = await n2Stats.options(onN2()).remote();
    expect(before.spillCount).toBeGreaterThanOrEqual(1);
    const got = await ray.get(refs[i]!, { timeoutMs: 30_000 });
    expect(got.length).toBe(24 * MiB);
    expect(sha(got)).toBe(sha(expected(24 * MiB, seeds[i]!)));
    const after = await n2Stats.options(onN2()).remote();
    expect(after.servedSpilledChunks! - before.servedSpilledChunks!).toBeGreaterThanOrEqual(5); // 24 MiB in 5 MiB chunks
    expect(after.restoreCount).toBe(before.restoreCount); // read from the file, not restored
    for (const r of refs) r.release();
  }, 60_000);
});
