// Scheduling across the nodes of a real 2-node cluster (rayts/testing
// Cluster): a resource only node 2 has, tasks beyond the head's CPUs
// spilling back to node 2, the hybrid policy packing small tasks onto the
// head, SPREAD using both nodes, node affinity (hard and soft, to a live, an
// unknown and a dead node), actors placed by affinity, infeasible requests
// failing at once and listed by `rayts status`, and a large value made on
// the other node (or read there) pulled across (object_pull.test.ts has more).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { formatStatus } from '../../dist/esm/cluster/status.js';
import { until } from '../support/wait.js';

let cluster: Cluster;
let head: ClusterNode;
let n2: ClusterNode;

beforeAll(async () => {
  cluster = await Cluster.start({
    head: { numCpus: 2 },
    nodes: [{ numCpus: 2, resources: { a: 1 } }],
    healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
  });
  [head, n2] = cluster.nodes as [ClusterNode, ClusterNode];
  await ray.init({ address: cluster.address });
  // The head has heard of node 2 (the GCS sends the nodes' views every 100 ms).
  await until(async () => (await ray.debugStats()).node.viewNodes === 2, 5_000, 'node 2 in the head\'s cluster view');
}, 90_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
}, 30_000);

/** The node a task runs on, after holding its resources for `ms`. */
const where = ray.remote(async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return (await import('rayts')).getRuntimeContext().nodeId;
});

/** Placement depends on what is free: wait until the leases of the previous test went back. */
async function allFree(): Promise<void> {
  await until(async () => (await ray.availableResources()).CPU === 4, 10_000, 'every CPU of the cluster free');
}

describe('scheduling across nodes', () => {
  it('a task needing a resource only node 2 has runs there', async () => {
    expect(ray.getRuntimeContext().nodeId).toBe(head.nodeId);
    expect(await where.options({ resources: { a: 1 } }).remote(0)).toBe(n2.nodeId);
  });

  it('tasks beyond the head\'s CPUs spill back to node 2', async () => {
    // Each needs a whole node: the second cannot fit on the head while the first runs.
    await allFree();
    const spilled = (await ray.debugStats()).node.spilledLeases ?? 0;
    const ids = await ray.get([0, 1].map(() => where.options({ numCpus: 2 }).remote(800)));
    expect(new Set(ids)).toEqual(new Set([head.nodeId, n2.nodeId]));
    expect((await ray.debugStats()).node.spilledLeases).toBeGreaterThan(spilled);
  });

  it('the hybrid policy packs small tasks onto the head, SPREAD uses both nodes', async () => {
    // 0.5 CPU each: the head stays below half its CPUs in use, so both stay there.
    await allFree();
    const packed = await ray.get([0, 1].map(() => where.options({ numCpus: 0.5 }).remote(600)));
    expect(packed).toEqual([head.nodeId, head.nodeId]);
    const spread = await ray.get([0, 1].map(() => where.options({ numCpus: 0.5, schedulingStrategy: 'SPREAD' }).remote(600)));
    expect(new Set(spread)).toEqual(new Set([head.nodeId, n2.nodeId]));
  });

  it('hard node affinity runs on that node; an unknown node fails at once, naming it', async () => {
    const on2 = where.options({ schedulingStrategy: { nodeId: n2.nodeId } });
    expect(await ray.get([on2.remote(0), on2.remote(0)])).toEqual([n2.nodeId, n2.nodeId]);
    const unknown = 'ab'.repeat(16);
    const t0 = performance.now();
    const err = await ray.get(where.options({ schedulingStrategy: { nodeId: unknown, soft: false } }).remote(0),
      { timeoutMs: 10_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RaySystemError);
    expect(err.message).toContain(unknown);
    expect(err.message).toMatch(/not a node of this cluster/);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('an actor placed by node affinity runs there', async () => {
    const A = ray.remote(class A { async node(): Promise<string> { return (await import('rayts')).getRuntimeContext().nodeId; } });
    const a = A.options({ schedulingStrategy: { nodeId: n2.nodeId }, numCpus: 0 }).remote();
    expect(await a.node.remote()).toBe(n2.nodeId);
    ray.kill(a);
  });

  it('affinity to a dead node: hard fails naming it, soft runs elsewhere', async () => {
    const n3 = await cluster.addNode({ numCpus: 1 });
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === n3.nodeId && n.alive), 10_000, 'node 3 alive');
    await cluster.removeNode(n3);
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === n3.nodeId && !n.alive), 5_000, 'node 3 dead');
    const err = await ray.get(where.options({ schedulingStrategy: { nodeId: n3.nodeId } }).remote(0), { timeoutMs: 10_000 })
      .catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RaySystemError);
    expect(err.message).toContain(n3.nodeId);
    const soft = await where.options({ schedulingStrategy: { nodeId: n3.nodeId, soft: true } }).remote(0);
    expect([head.nodeId, n2.nodeId]).toContain(soft);
  });

  it('a request no node could ever run rejects at once and rayts status lists it as infeasible', async () => {
    const t0 = performance.now();
    const err = await ray.get(where.options({ numCpus: 64 }).remote(0), { timeoutMs: 10_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.RaySystemError);
    expect(err.message).toMatch(/no node of the cluster/);
    expect(err.message).toMatch(/CPU: 64/);
    expect(performance.now() - t0).toBeLessThan(5_000);
    await until(async () => (await cluster.status()).nodes.some((n) =>
      n.infeasibleDemand.some((d) => d.shape.CPU === 64 && d.count >= 1)), 5_000, 'infeasible demand reported');
    expect(formatStatus(await cluster.status())).toMatch(/\{CPU: 64\}: \d+ infeasible/);
  });

  it('a large value made on node 2 is pulled to the driver', async () => {
    const big = ray.remote({ resources: { a: 1 } }, () => new Float64Array(1 << 17).fill(1));  // 1 MiB: plasma
    const v = await ray.get(big.remote(), { timeoutMs: 10_000 });
    expect(v.length).toBe(1 << 17);
    expect(v.every((x) => x === 1)).toBe(true);
    // Small values cross both ways inline.
    expect(await ray.remote({ resources: { a: 1 } }, (x: number[]) => x.length).remote([1, 2, 3])).toBe(3);
  });

  it('a large object of the head is read on node 2 (task argument, nested ref, actor call)', async () => {
    const big = ray.put(new Float64Array(1 << 17).fill(1));
    const len = ray.remote({ resources: { a: 1 } }, (x: Float64Array) => x.length);
    expect(await ray.get(len.remote(big), { timeoutMs: 10_000 })).toBe(1 << 17);
    const nested = ray.remote({ resources: { a: 1 } }, async (refs: Array<ray.ObjectRef<Float64Array>>) =>
      (await (await import('rayts')).get(refs[0] as ray.ObjectRef<Float64Array>)).length);
    expect(await ray.get(nested.remote([big]), { timeoutMs: 10_000 })).toBe(1 << 17);
    const A = ray.remote(class A { len(x: Float64Array): number { return x.length; } });
    const a = A.options({ schedulingStrategy: { nodeId: n2.nodeId }, numCpus: 0 }).remote();
    expect(await ray.get(a.len.remote(big), { timeoutMs: 10_000 })).toBe(1 << 17);
    expect(await a.len.remote(new Float64Array(4))).toBe(4);
    ray.kill(a);
  });
});
