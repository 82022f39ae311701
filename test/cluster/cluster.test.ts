// A 3-node cluster of real daemons on this machine (rayts/testing Cluster):
// ray.nodes() from an attached driver lists every node, tasks run through
// the driver's daemon on the nodes of the cluster, a killed node is marked dead by the
// GCS's health checks, a node stopped gracefully is dead at once, and
// ray.shutdown() leaves the cluster running.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as ray from 'rayts';
import { Cluster } from 'rayts/testing';
import { alive } from '../support/process.js';
import { until } from '../support/wait.js';

let cluster: Cluster | undefined;

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
}, 30_000);

describe('Cluster', () => {
  it('three nodes: listed by ray.nodes(), tasks placed on them, a killed node marked dead', async () => {
    const t0 = performance.now();
    cluster = await Cluster.start({
      head: { numCpus: 1 },
      nodes: [{ numCpus: 1, resources: { a: 1 } }, { numCpus: 2 }],
      // Short health checks (Ray: 5 s / 3 s / 10 s / 5 failures).
      healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
    });
    console.log(`3-node cluster up in ${(performance.now() - t0).toFixed(0)} ms`);
    const [head, n1, n2] = cluster.nodes as [typeof cluster.head, typeof cluster.head, typeof cluster.head];
    // Every session directory and node socket is the owner's only.
    for (const n of cluster.nodes) {
      expect(statSync(n.sessionDir).mode & 0o777).toBe(0o700);
      expect(statSync(path.join(n.sessionDir, 'sockets', 'node.sock')).mode & 0o077).toBe(0);
    }

    // Node options belong to `rayts start`, not to a driver that attaches.
    await expect(ray.init({ address: cluster.address, numCpus: 2 })).rejects.toThrow(/numCpus cannot be given with address/);
    // 'auto' with nothing started on this machine's default temp dir: a clear error.
    const savedAddress = process.env.RAYTS_ADDRESS;
    process.env.RAYTS_ADDRESS = '';
    await expect(ray.init({ address: 'auto' })).rejects.toThrow(/no cluster was started on this machine|refused|cannot reach/);
    // 'auto' through RAYTS_ADDRESS.
    process.env.RAYTS_ADDRESS = cluster.address;
    await ray.init({ address: 'auto' });
    if (savedAddress === undefined) delete process.env.RAYTS_ADDRESS;
    else process.env.RAYTS_ADDRESS = savedAddress;
    await expect(ray.init({ address: cluster.address })).rejects.toThrow(/already initialized/);
    const nodes = await ray.nodes();
    expect(nodes.map((n) => n.nodeId).sort()).toEqual([head.nodeId, n1.nodeId, n2.nodeId].sort());
    expect(nodes.every((n) => n.alive)).toBe(true);
    expect(nodes.filter((n) => n.isHead).map((n) => n.nodeId)).toEqual([head.nodeId]);
    expect(await ray.clusterResources()).toMatchObject({ CPU: 4, a: 1 });
    // Free now: what the nodes reported (nothing is leased yet).
    await until(async () => (await ray.availableResources()).CPU === 4, 5_000, 'all 4 CPUs reported free');
    // The driver attached to the head (its machine's head); its tasks run on
    // the cluster's nodes (scheduling.test.ts says where and why).
    expect(ray.getRuntimeContext().nodeId).toBe(head.nodeId);
    const where = ray.remote(async () => (await import('rayts')).getRuntimeContext().nodeId);
    // Workers reach their node over its unix socket: the token is not in their environment.
    expect(await ray.remote(() => process.env.RAYTS_AUTH_TOKEN ?? 'none').remote()).toBe('none');
    const ids = await ray.get(Array.from({ length: 50 }, () => where.remote()));
    for (const id of ids) expect([head.nodeId, n1.nodeId, n2.nodeId]).toContain(id);
    // Objects through the daemon's store (8 MiB: plasma) and an actor, as
    // embedded: on the head, where the object is (object_pull.test.ts moves them between nodes).
    const onHead = { schedulingStrategy: { nodeId: head.nodeId } } as const;
    const big = Float64Array.from({ length: 1 << 20 }, (_, i) => i);
    const sum = ray.remote(onHead, (a: Float64Array) => a.reduce((x, y) => x + y, 0));
    expect(await sum.remote(ray.put(big))).toBe(((1 << 20) - 1) * (1 << 20) / 2);
    const back = await ray.get(ray.remote(onHead, (n: number) => new Float64Array(n).fill(2)).remote(1 << 20));
    expect(back.length).toBe(1 << 20);
    const Counter = ray.remote(class Counter { n = 0; inc(): number { return ++this.n; } });
    const counter = Counter.remote();
    await counter.inc.remote();
    expect(await counter.inc.remote()).toBe(2);
    // Requests waiting for the head's one CPU show as its pending demand.
    const slow = ray.remote({ numCpus: 1, ...onHead }, async () => { await new Promise((r) => setTimeout(r, 1500)); return 1; });
    const running = [slow.remote(), slow.remote(), slow.remote()];
    await until(async () => (await cluster!.status()).nodes.some((n) => n.nodeId === head.nodeId &&
      n.pendingDemand.some((d) => d.shape.CPU === 1 && d.count >= 1)), 5_000, 'pending demand on the head');
    expect(await ray.get(running)).toEqual([1, 1, 1]);

    // SIGKILL: the node stops reporting; the GCS's health checks mark it dead.
    const killedAt = performance.now();
    await cluster.removeNode(n2, { graceful: false });
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === n2.nodeId && !n.alive), 10_000, 'the killed node to be dead');
    console.log(`killed node marked dead after ${(performance.now() - killedAt).toFixed(0)} ms (health checks every 200 ms, 3 failures)`);
    const dead = (await ray.nodes()).find((n) => n.nodeId === n2.nodeId);
    expect(dead?.deathReason).toMatch(/health checks/);
    expect(await ray.clusterResources()).toMatchObject({ CPU: 2, a: 1 });

    // SIGTERM: the node unregisters as it stops; dead at once.
    await cluster.removeNode(n1);
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === n1.nodeId && !n.alive), 2_000, 'the stopped node to be dead');
    expect((await ray.nodes()).find((n) => n.nodeId === n1.nodeId)?.deathReason).toBe('stopped');
    expect(alive(n1.pid)).toBe(false);

    // A node added later joins.
    const n3 = await cluster.addNode({ numCpus: 1, resources: { b: 2 } });
    await cluster.waitForNodes(2);
    expect(await ray.clusterResources()).toMatchObject({ CPU: 2, b: 2 });
    expect((await ray.nodes()).find((n) => n.nodeId === n3.nodeId)?.alive).toBe(true);

    // shutdown() disconnects; the cluster keeps running.
    await ray.shutdown();
    const s = await cluster.status();
    expect(s.nodes.filter((n) => n.alive).map((n) => n.nodeId).sort()).toEqual([head.nodeId, n3.nodeId].sort());
    expect(() => ray.remote(() => 1).remote()).toThrow(/not initialized/);

    const pids = cluster.nodes.map((n) => n.pid);
    const dirs = cluster.nodes.map((n) => n.sessionDir);
    await cluster.shutdown();
    cluster = undefined;
    for (const p of pids) expect(alive(p)).toBe(false);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
  }, 90_000);
});
