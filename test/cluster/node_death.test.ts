// A node dies (SIGKILL of its daemon) in a 3-node cluster of real daemons:
// the GCS's health checks mark it dead and tell every node (NodeDied), and
// what depended on it is dealt with (docs/reliability.md, "When a node
// dies"): the node shows dead with its reason in ray.nodes(); an object
// whose primary copy was there is rebuilt from lineage, or fails with
// ObjectLostError naming the node's death when it has none (maxRetries 0);
// an object owned by a process of that node fails with OwnerDiedError; a
// worker of a surviving node leased by an owner of that node ends and its
// CPU comes back; tasks running there (and lease requests waiting there)
// are retried on live nodes, and a task without retries fails with an
// error naming the node's death. One cluster for all of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { tempDir } from '../support/fs.js';
import { alive } from '../support/process.js';
import { until, waitForFile } from '../support/wait.js';

let cluster: Cluster;
let b: ClusterNode;
let c: ClusterNode;
let dir: string;

beforeAll(async () => {
  dir = tempDir('node-death');
  cluster = await Cluster.start({
    head: { numCpus: 1 },
    nodes: [{ numCpus: 2, resources: { b: 1 } }, { numCpus: 2, resources: { c: 1 } }],
    healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
  });
  [, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  await ray.init({ address: cluster.address });
}, 60_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
}, 30_000);

async function deadInNodes(node: ClusterNode): Promise<ray.NodeInfo | undefined> {
  return (await ray.nodes()).find((n) => n.nodeId === node.nodeId && !n.alive);
}

describe('a node dies', () => {
  it('objects stored or owned there, and workers leased by its owners elsewhere', async () => {
    const onC = { schedulingStrategy: { nodeId: c.nodeId, soft: true } } as const;
    // 256 KiB results: in C's object store, owned by the driver.
    const make = ray.remote({ ...onC, maxRetries: 2 }, async (n: number) => {
      const r = await import('rayts');
      return { node: r.getRuntimeContext().nodeId, data: new Float64Array(n).fill(7) };
    });
    const rebuilt = make.remote(1 << 15);
    const lost = make.options({ maxRetries: 0 }).remote(1 << 15);
    const [ready] = await ray.wait([rebuilt, lost], { numReturns: 2, fetchLocal: false, timeoutMs: 20_000 });
    expect(ready).toHaveLength(2);
    // Owned on C: an actor there puts an object and hands out the ref.
    const Holder = ray.remote(class Holder {
      async hold(): Promise<ray.ObjectRef<Float64Array>[]> {
        const r = await import('rayts');
        return [r.put(new Float64Array(1 << 15).fill(3))];
      }
    });
    const holder = Holder.options({ schedulingStrategy: { nodeId: c.nodeId }, numCpus: 0 }).remote();
    const [owned] = await holder.hold.remote();
    // A task on C leases a worker on B (hard affinity) that runs on and on.
    const spawn = ray.remote({ schedulingStrategy: { nodeId: c.nodeId }, maxRetries: 0 },
      async (bNode: string, out: string) => {
        const r = await import('rayts');
        const forever = r.remote({ schedulingStrategy: { nodeId: bNode } }, async (file: string) => {
          (await import('node:fs')).writeFileSync(file, String(process.pid));
          await new Promise((res) => setTimeout(res, 120_000));
          return 0;
        });
        return await r.get(forever.remote(out));
      });
    const spawned = spawn.remote(b.nodeId, path.join(dir, 'orphan.pid'));
    const orphan = Number(await waitForFile(path.join(dir, 'orphan.pid'), 20_000));
    expect(alive(orphan)).toBe(true);

    const killedAt = performance.now();
    await cluster.removeNode(c, { graceful: false });
    await until(async () => (await deadInNodes(c)) !== undefined, 10_000, 'node C to be marked dead');
    console.log(`node C marked dead ${(performance.now() - killedAt).toFixed(0)} ms after its SIGKILL`);
    expect((await deadInNodes(c))?.deathReason).toMatch(/health checks/);

    // Rebuilt from lineage on a live node; the same value.
    const again = await ray.get(rebuilt, { timeoutMs: 20_000 });
    expect(again.node).not.toBe(c.nodeId);
    expect(again.data.length).toBe(1 << 15);
    expect(again.data.every((x) => x === 7)).toBe(true);
    expect((await ray.memorySummary()).lineage.reconstructions).toBeGreaterThanOrEqual(1);
    // No lineage (maxRetries 0): lost, and the error says why.
    const lostErr = await ray.get(lost, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(lostErr).toBeInstanceOf(ray.ObjectLostError);
    expect((lostErr as Error).message).toContain(`node ${c.nodeId} died`);
    // Owned by a process of C: OwnerDiedError, promptly.
    const t0 = performance.now();
    const ownerErr = await ray.get(owned, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(ownerErr).toBeInstanceOf(ray.OwnerDiedError);
    expect(performance.now() - t0).toBeLessThan(5_000);
    // The spawner ran on C: its worker died with the node, and it had no retries.
    const spawnErr = await ray.get(spawned, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(spawnErr).toBeInstanceOf(ray.WorkerCrashedError);
    expect((spawnErr as Error).message).toMatch(/died with its node: node [0-9a-f]+ died \(failed 3 health checks/);
    // Its worker on B, leased by an owner on C, ends; B's CPUs come back.
    await until(() => !alive(orphan), 10_000, "the orphaned worker on B to end");
    await until(async () => (await ray.availableResources()).CPU === 3, 10_000, "B's CPUs to be free again");
  }, 60_000);

  it('tasks running there and requests waiting there are retried elsewhere', async () => {
    const d = await cluster.addNode({ numCpus: 2 });
    await cluster.waitForNodes(3);
    const onB = { schedulingStrategy: { nodeId: b.nodeId, soft: true } } as const;
    // On B a task outlasts the kill (it dies with B); elsewhere it is quick.
    const work = ray.remote({ ...onB, maxRetries: 3 }, async (name: string, out: string, bNode: string) => {
      const r = await import('rayts');
      const node = r.getRuntimeContext().nodeId;
      (await import('node:fs')).writeFileSync(`${out}/start-${name}-${process.pid}`, node);
      await new Promise((res) => setTimeout(res, node === bNode ? 60_000 : 200));
      return [name, node];
    });
    // B has 2 CPUs: `once` and one more run there, the other two wait there.
    const once = work.options({ maxRetries: 0 }).remote('once', dir, b.nodeId);
    const started = (name: string): boolean => fs.readdirSync(dir).some((f) => f.startsWith(`start-${name}-`));
    await until(() => started('once'), 20_000, '`once` running on B');
    const retried = ['t0', 't1', 't2'].map((n) => work.remote(n, dir, b.nodeId));
    await until(() => ['t0', 't1', 't2'].some(started), 20_000, 'a retriable task running on B');

    const killedAt = performance.now();
    await cluster.removeNode(b, { graceful: false });
    const results = await ray.get(retried, { timeoutMs: 30_000 });
    console.log(`3 tasks done on live nodes ${(performance.now() - killedAt).toFixed(0)} ms after B's SIGKILL`);
    for (const [i, [name, node]] of results.entries()) {
      expect(name).toBe(`t${i}`);
      expect([cluster.head.nodeId, d.nodeId]).toContain(node);
    }
    const onceErr = await ray.get(once, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(onceErr).toBeInstanceOf(ray.WorkerCrashedError);
    expect((onceErr as Error).message).toContain(`died with its node: node ${b.nodeId} died`);
    expect((await deadInNodes(b))?.deathReason).toMatch(/health checks/);
    // The cluster goes on: new work runs on the live nodes.
    const where = ray.remote(async () => (await import('rayts')).getRuntimeContext().nodeId);
    for (const n of await ray.get(Array.from({ length: 8 }, () => where.remote()))) {
      expect([cluster.head.nodeId, d.nodeId]).toContain(n);
    }
  }, 60_000);
});
