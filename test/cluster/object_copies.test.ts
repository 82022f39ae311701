// The owner keeps every copy of an object (Ray's owner-based object
// directory): a node that pulls a copy reports it to the owner in a batch
// (ObjectLocationsUpdate), the owner names it in its memory summary and in
// its answers to getters, and when the primary copy's node dies the copy
// elsewhere becomes the primary: `ray.get` returns the same bytes without
// running the task again. A 3-node cluster of real daemons.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { fileCluster } from '../support/cluster.js';
import { tempDir } from '../support/fs.js';
import { until } from '../support/wait.js';

const MiB = 1 << 20;
// Head, A (where the object is made) and B (where it is read); node deaths
// found within about a second.
const k = fileCluster(async () => {
  const cluster = await Cluster.start({
    head: { numCpus: 1 },
    nodes: [{ numCpus: 1, resources: { a: 1 } }, { numCpus: 1, resources: { b: 1 } }],
    healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
  });
  await ray.init({ address: cluster.address });
  return cluster;
});
const dir = tempDir('object-copies');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** 4 MiB of deterministic bytes made on the node it is pinned to; each run appends a line to `runs`. */
const make = ray.remote({ maxRetries: 2 }, async (runs: string, n: number) => {
  (await import('node:fs')).appendFileSync(runs, `${process.pid}\n`);
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer);
  let x = 12345;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    w[i] = x;
  }
  return out;
});

/** The SHA-256 of a byte argument, and the node that computed it. */
const hashOf = ray.remote(async (bytes: Uint8Array) => {
  const { createHash } = await import('node:crypto');
  return [createHash('sha256').update(bytes).digest('hex'), (await import('rayts')).getRuntimeContext().nodeId] as const;
});

async function summaryOf(id: string): Promise<ray.ObjectSummary | undefined> {
  return (await ray.memorySummary()).objects.find((o) => o.id === id);
}

describe('copies of an object on several nodes', () => {
  it('a copy pulled to node B is reported to the owner and survives the death of node A, where it was made', async () => {
    const [, a, b] = k.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const runs = path.join(dir, 'runs');
    const ref = make.options({ schedulingStrategy: { nodeId: a.nodeId } }).remote(runs, 4 * MiB);
    // Read on B: B pulls a secondary copy from A, and reports it to the driver.
    const [onB, nodeB] = await ray.get(hashOf.options({ schedulingStrategy: { nodeId: b.nodeId } }).remote(ref),
      { timeoutMs: 30_000 });
    expect(nodeB).toBe(b.nodeId);
    await until(async () => (await summaryOf(ref.id))?.copies.includes(b.nodeId) === true, 10_000,
      "the owner to learn of B's copy");
    const before = await summaryOf(ref.id);
    expect(before?.node).toBe(a.nodeId);
    expect(before?.copies).toEqual([b.nodeId]);
    const reconstructions = (await ray.memorySummary()).lineage.reconstructions;

    await k.cluster.removeNode(a, { graceful: false });
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === a.nodeId && !n.alive), 10_000,
      'node A to be marked dead');
    const bytes = await ray.get(ref, { timeoutMs: 30_000 });
    expect(bytes.length).toBe(4 * MiB);
    expect(sha(bytes)).toBe(onB);
    // Not run again: B's copy became the primary.
    expect(fs.readFileSync(runs, 'utf8').trim().split('\n')).toHaveLength(1);
    expect((await ray.memorySummary()).lineage.reconstructions).toBe(reconstructions);
    const after = await summaryOf(ref.id);
    expect(after?.node).toBe(b.nodeId);
    expect(after?.copies).not.toContain(a.nodeId);
    ref.release();
  }, 90_000);
});
