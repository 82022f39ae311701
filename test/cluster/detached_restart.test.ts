// A detached actor whose creator has exited, on a real 3-node cluster
// (rayts/testing Cluster): when its node is SIGKILLed the GCS itself
// creates it again on another node (its restart budget allowing), a second
// driver that got it with getActor reaches the new instance, and the next
// node death, past the budget, fails its calls with ActorDiedError naming
// that node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { runDriver } from '../support/cluster.js';
import { until } from '../support/wait.js';

const DRIVER = fileURLToPath(new URL('../fixtures/actor_driver.mjs', import.meta.url));

let cluster: Cluster;
let head: ClusterNode;
let b: ClusterNode;
let c: ClusterNode;

beforeAll(async () => {
  cluster = await Cluster.start({
    head: { numCpus: 1 },
    // `p`: the two nodes the actor may live on (never the head, which hosts the GCS).
    nodes: [{ numCpus: 1, resources: { p: 1 } }, { numCpus: 1, resources: { p: 1 } }],
    healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
  });
  [head, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  await ray.init({ address: cluster.address });
  await until(async () => (await ray.debugStats()).node.viewNodes === 3, 10_000, 'every node in the head\'s cluster view');
}, 90_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
}, 30_000);

/** Runs test/fixtures/actor_driver.mjs through `node` (its own process); resolves with its JSON line. */
function firstDriver(node: ClusterNode, mode: string, ...rest: string[]): Promise<Record<string, unknown>> {
  return runDriver(cluster, node, DRIVER, mode, ...rest);
}

interface Phoenix {
  inc: { remote(): ray.ObjectRef<number> };
  node: { remote(): ray.ObjectRef<string> };
  restarted: { remote(): ray.ObjectRef<boolean> };
}

describe('a detached actor whose creator is gone', () => {
  it('restarts on another node when its node dies, then dies naming the node past maxRestarts', async () => {
    const made = await firstDriver(head, 'phoenix', 'fire', b.nodeId);
    expect(made).toMatchObject({ inc: 3, node: b.nodeId });
    // Driver 1 has exited: this process (driver 2) finds the actor by name, with its state.
    const h = await ray.getActor('phoenix', { namespace: 'fire' }) as unknown as Phoenix;
    expect(await h.inc.remote()).toBe(4);

    await cluster.removeNode(b, { graceful: false });
    const killedAt = performance.now();
    // Made while nobody but the GCS can restart it (or cut off by the node's
    // death, then resent: maxTaskRetries -1): answered by the new instance.
    expect(await ray.get(h.inc.remote(), { timeoutMs: 30_000 })).toBe(1);
    console.log(`detached actor restarted by the GCS ${(performance.now() - killedAt).toFixed(0)} ms after its node was killed`);
    expect(await h.node.remote()).toBe(c.nodeId);
    expect(await h.restarted.remote()).toBe(true);
    expect(await h.inc.remote()).toBe(2);
    // The GCS's actor table: one restart, its name still held (getActor finds the new one too).
    const again = await ray.getActor('phoenix', { namespace: 'fire' }) as unknown as Phoenix;
    expect(await again.inc.remote()).toBe(3);
    const [b1] = (await ray.nodes()).filter((n) => n.nodeId === b.nodeId);
    expect(b1?.alive).toBe(false);

    // Its one restart used up (num_restarts 1 of maxRestarts 1): the next node death is its end.
    await cluster.removeNode(c, { graceful: false });
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === c.nodeId && !n.alive), 10_000, 'node C dead');
    const last = await ray.get(h.inc.remote(), { timeoutMs: 30_000 }).catch((e: unknown) => e) as Error;
    expect(last).toBeInstanceOf(ray.ActorDiedError);
    expect(last.message).toContain(`its node ${c.nodeId} died`);
    const later = await ray.get(h.inc.remote(), { timeoutMs: 5_000 }).catch((e: unknown) => e) as Error;
    expect(later).toBeInstanceOf(ray.ActorDiedError);
    await until(async () => {
      try { await ray.getActor('phoenix', { namespace: 'fire' }); return false; } catch { return true; }
    }, 10_000, 'the dead actor\'s name to be free');
  }, 90_000);
});
