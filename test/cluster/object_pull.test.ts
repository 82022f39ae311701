// Objects across the nodes of a real 2-node cluster (rayts/testing
// Cluster): a large object held by one node and needed on the other is
// pulled into that node's store in chunks (core/raylet/object_pull.h) and
// read there as a local one. Byte-identical both ways (a SHA-256 of the
// bytes), a large argument passed by value, two tasks needing one object
// pulling it once (node stats), the pulled copy being a secondary one, and
// two pulls that do not fit together admitted one after the other.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { twoNodeCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const MiB = 1 << 20;
const c = twoNodeCluster({
    head: { numCpus: 2, objectStoreMemory: 256 * MiB },
    nodes: [{ numCpus: 2, objectStoreMemory: 256 * MiB }],
});

/** Deterministic bytes (xorshift32 from `seed`), the same in the driver and in a task (no captures). */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    w[i] = x;
  }
  return out;
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

const onN2 = (): { schedulingStrategy: { nodeId: string } } => ({ schedulingStrategy: { nodeId: c.n2.nodeId } });

/** Node 2's node-server stats, read by a task running there. */
const n2Stats = ray.remote(async () => (await (await import('rayts')).debugStats()).node);

/** The SHA-256 of a byte argument, and the node that computed it. */
const hashOf = ray.remote(async (b: Uint8Array) => {
  const { createHash } = await import('node:crypto');
  return [createHash('sha256').update(b).digest('hex'), (await import('rayts')).getRuntimeContext().nodeId] as const;
});

describe('objects across nodes', () => {
  it('a 64 MiB typed array put on the head is read, byte-identical, by a task pinned to node 2', async () => {
    const before = await n2Stats.options(onN2()).remote();
    const bytes = pattern(64 * MiB, 7);
    const ref = ray.put(bytes);
    const [h, node] = await ray.get(hashOf.options(onN2()).remote(ref), { timeoutMs: 60_000 });
    expect(node).toBe(c.n2.nodeId);
    expect(h).toBe(sha(bytes));
    const after = await n2Stats.options(onN2()).remote();
    expect(after.pullsCompleted! - before.pullsCompleted!).toBe(1);
    expect(after.pulledBytes! - before.pulledBytes!).toBeGreaterThanOrEqual(64 * MiB);
    ref.release();
  }, 90_000);

  it('a 64 MiB result made on node 2 is got, byte-identical, by the driver on the head', async () => {
    const make = ray.remote(pattern);  // self-contained: shipped by source
    const before = (await ray.debugStats()).node;
    const ref = make.options(onN2()).remote(64 * MiB, 11);
    const got = await ray.get(ref, { timeoutMs: 60_000 });
    expect(got.length).toBe(64 * MiB);
    expect(sha(got)).toBe(sha(pattern(64 * MiB, 11)));
    const after = (await ray.debugStats()).node;
    expect(after.pullsCompleted! - before.pullsCompleted!).toBe(1);
    // A second get reads the local copy: no second pull.
    expect(sha(await ray.get(ref))).toBe(sha(got));
    expect((await ray.debugStats()).node.pullsStarted).toBe(after.pullsStarted);
    // Freeing it frees the primary on node 2 too (FreeObjects through the head's node server).
    const n2Used = (await n2Stats.options(onN2()).remote()).storeUsed!;
    expect(n2Used).toBeGreaterThanOrEqual(64 * MiB);
    ref.release();
    await until(async () => (await n2Stats.options(onN2()).remote()).storeUsed! <= n2Used - 64 * MiB, 10_000,
      'node 2 to free the primary copy of the released result');
  }, 90_000);

  it('a large argument passed by value reaches a task on node 2 intact', async () => {
    const bytes = pattern(8 * MiB, 3);
    const [h, node] = await ray.get(hashOf.options(onN2()).remote(bytes), { timeoutMs: 60_000 });
    expect(node).toBe(c.n2.nodeId);
    expect(h).toBe(sha(bytes));
  }, 60_000);

  it('an object made on node 2 and passed to a task on node 2 is read there without a pull', async () => {
    const make = ray.remote(() => new Uint8Array(4 << 20).fill(5));
    const before = await n2Stats.options(onN2()).remote();
    const ref = make.options(onN2()).remote();
    const [h] = await ray.get(hashOf.options(onN2()).remote(ref), { timeoutMs: 60_000 });
    expect(h).toBe(sha(new Uint8Array(4 << 20).fill(5)));
    const after = await n2Stats.options(onN2()).remote();
    expect(after.pullsStarted).toBe(before.pullsStarted);
    ref.release();
  }, 60_000);

  it('two tasks on node 2 needing the same object pull it once', async () => {
    const bytes = pattern(32 * MiB, 5);
    const ref = ray.put(bytes);
    const before = await n2Stats.options(onN2()).remote();
    const both = await ray.get([0, 1].map(() => hashOf.options({ ...onN2(), numCpus: 1 }).remote(ref)), { timeoutMs: 60_000 });
    for (const [h, node] of both) {
      expect(node).toBe(c.n2.nodeId);
      expect(h).toBe(sha(bytes));
    }
    const after = await n2Stats.options(onN2()).remote();
    expect(after.pullsStarted! - before.pullsStarted!).toBe(1);
    // Once: the value's bytes (32 MiB and its small header), not twice that.
    expect(after.pulledBytes! - before.pulledBytes!).toBeGreaterThanOrEqual(32 * MiB);
    expect(after.pulledBytes! - before.pulledBytes!).toBeLessThan(33 * MiB);
    ref.release();
  }, 60_000);

  it('two pulls that together exceed a small store wait for each other and both succeed', async () => {
    // 48 MiB store: one 30 MiB copy fits, two do not (and pulls under way hold at most 3/4 of it).
    const small = await c.cluster.addNode({ numCpus: 2, objectStoreMemory: 48 * MiB });
    try {
      await until(async () => (await ray.debugStats()).node.viewNodes === 3, 10_000, 'node 3 in the head\'s cluster view');
      const on3 = { schedulingStrategy: { nodeId: small.nodeId }, numCpus: 1 };
      const stats3 = ray.remote(async () => (await (await import('rayts')).debugStats()).node);
      const before = await stats3.options(on3).remote();
      // Each task keeps its argument (the pulled copy) in use until a pull
      // has queued on its node: the first holds the store until the second
      // pull has waited behind it.
      const hold = ray.remote(async (b: Uint8Array, queuedBefore: number) => {
        const ray = await import('rayts');
        const { createHash } = await import('node:crypto');
        const h = createHash('sha256').update(b).digest('hex');
        const deadline = Date.now() + 20_000;
        while ((await ray.debugStats()).node.pullsQueued! <= queuedBefore) {
          if (Date.now() > deadline) throw new Error('no pull queued behind this one within 20 s');
          await new Promise((r) => setTimeout(r, 20));
        }
        return [h, b.byteLength] as const;
      });
      const bytes = [pattern(30 * MiB, 21), pattern(30 * MiB, 22)];
      const refs = bytes.map((b) => ray.put(b));
      const got = await ray.get(refs.map((r) => hold.options(on3).remote(r, before.pullsQueued!)), { timeoutMs: 60_000 });
      expect(got.map(([h]) => h)).toEqual(bytes.map(sha));
      expect(got.map(([, n]) => n)).toEqual([30 * MiB, 30 * MiB]);
      const after = await stats3.options(on3).remote();
      expect(after.pullsQueued! - before.pullsQueued!).toBeGreaterThanOrEqual(1);
      expect(after.pullsCompleted! - before.pullsCompleted!).toBe(2);
      expect(after.pullsFailed).toBe(before.pullsFailed);
      for (const r of refs) r.release();
    } finally {
      await c.cluster.removeNode(small);
    }
  }, 120_000);

  it('a pull into a node whose store cannot hold the object fails with ObjectStoreFullError naming it', async () => {
    const small = await c.cluster.addNode({ numCpus: 1, objectStoreMemory: 16 * MiB });
    try {
      await until(async () => (await ray.debugStats()).node.viewNodes === 3, 10_000, 'node 3 in the head\'s cluster view');
      const ref = ray.put(pattern(32 * MiB, 1));
      const t0 = performance.now();
      const err = await ray.get(hashOf.options({ schedulingStrategy: { nodeId: small.nodeId } }).remote(ref), { timeoutMs: 60_000 })
        .catch((e: unknown) => e) as Error;
      expect(err).toBeInstanceOf(ray.RayError);
      const full = err instanceof ray.ObjectStoreFullError || (err.cause as { name?: string } | undefined)?.name === 'ObjectStoreFullError';
      expect(full, `${err.name}: ${err.message}`).toBe(true);
      expect(err.message).toContain(ref.id);
      expect(performance.now() - t0).toBeLessThan(30_000);
      ref.release();
    } finally {
      await c.cluster.removeNode(small);
    }
  }, 90_000);
});
