// Actors on a real 3-node cluster (rayts/testing Cluster): placement across
// nodes (SPREAD, node affinity, a resource one node has), named actors found
// by a second driver attached through another node (per namespace), a
// detached actor outliving the driver that made it, and actors whose node
// is SIGKILLed: restarted on another node while maxRestarts allows (calls
// retried per maxTaskRetries), then failing with ActorDiedError naming the
// node's death; a detached actor there whose creator is gone is ended by
// the GCS once the node is marked dead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { runDriver } from '../support/cluster.js';
import { until } from '../support/wait.js';

const DRIVER = fileURLToPath(new URL('../fixtures/actor_driver.mjs', import.meta.url));

let cluster: Cluster;
let head: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;

beforeAll(async () => {
  cluster = await Cluster.start({
    head: { numCpus: 1 },
    // `r`: on the two nodes an actor may restart between; `only3`: node 3 alone.
    nodes: [{ numCpus: 2, resources: { r: 2 } }, { numCpus: 2, resources: { r: 2, only3: 1 } }],
    healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
  });
  [head, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  await ray.init({ address: cluster.address });
  await until(async () => (await ray.debugStats()).node.viewNodes === 3, 10_000, 'every node in the head\'s cluster view');
}, 90_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
}, 30_000);

/** Runs test/fixtures/actor_driver.mjs through `node` (its own process); resolves with its JSON line. */
function secondDriver(node: ClusterNode, mode: string, ...rest: string[]): Promise<Record<string, unknown>> {
  return runDriver(cluster, node, DRIVER, mode, ...rest);
}

const Where = ray.remote(class Where {
  n = 0;
  inc(): number { return ++this.n; }
  async node(): Promise<string> { return (await import('rayts')).getRuntimeContext().nodeId; }
  async restarted(): Promise<boolean> { return (await import('rayts')).getRuntimeContext().wasCurrentActorReconstructed === true; }
  async slow(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    return (await import('rayts')).getRuntimeContext().nodeId;
  }
});

describe('actors across nodes', () => {
  it('SPREAD actors land on distinct nodes, affinity on the named node, a resource where it is', async () => {
    const spread = [0, 1, 2].map(() => Where.options({ schedulingStrategy: 'SPREAD' }).remote());
    const nodes = await ray.get(spread.map((a) => a.node.remote()), { timeoutMs: 20_000 });
    expect(new Set(nodes)).toEqual(new Set([head.nodeId, n2.nodeId, n3.nodeId]));
    const pinned = Where.options({ schedulingStrategy: { nodeId: n2.nodeId }, numCpus: 0 }).remote();
    expect(await pinned.node.remote()).toBe(n2.nodeId);
    const only = Where.options({ resources: { only3: 1 }, numCpus: 0 }).remote();
    expect(await only.node.remote()).toBe(n3.nodeId);
    for (const a of [...spread, pinned, only]) ray.kill(a);
  });

  it('a named actor is found by a driver attached through another node, in its namespace only', async () => {
    const shared = Where.options({ name: 'shared', namespace: 'team', schedulingStrategy: { nodeId: n3.nodeId }, numCpus: 0 }).remote();
    expect(await shared.inc.remote()).toBe(1);
    const seen = await secondDriver(n2, 'call', 'team', 'shared');
    expect(seen.nodeId).toBe(n2.nodeId);  // attached through node 2, not the head
    expect(seen.node).toBe(n3.nodeId);
    expect(seen.inc).toBe(2);  // the same instance
    expect(seen.other).toMatch(/no actor named 'shared' in namespace 'team-other'/);
    expect(await shared.inc.remote()).toBe(3);
    ray.kill(shared);
  });

  it('a detached actor outlives the driver that made it; a normal one does not', async () => {
    const made = await secondDriver(n2, 'create', 'lasting');
    expect(made).toMatchObject({ keeper: 1, plain: 1 });
    // That driver has exited: its normal actor died with it, the detached one lives on.
    await until(async () => {
      try { await ray.getActor('plain', { namespace: 'lasting' }); return false; } catch { return true; }
    }, 10_000, 'the normal actor of the exited driver to be gone');
    const keeper = await ray.getActor('keeper', { namespace: 'lasting' });
    expect(await keeper.inc.remote()).toBe(2);
    expect(await keeper.node.remote()).toBe(made.keeperNode);
    ray.kill(keeper);
    await until(async () => {
      try { await ray.getActor('keeper', { namespace: 'lasting' }); return false; } catch { return true; }
    }, 10_000, 'the killed detached actor to be gone');
  });

  it('an actor whose node dies restarts on another node, then dies naming the node', async () => {
    // Both on one of the `r` nodes: `again` may restart once, `once` not at all.
    const again = Where.options({ resources: { r: 1 }, numCpus: 0, maxRestarts: 1, maxTaskRetries: -1 }).remote();
    const first = await again.node.remote();
    expect([n2.nodeId, n3.nodeId]).toContain(first);
    const once = Where.options({ schedulingStrategy: { nodeId: first }, numCpus: 0 }).remote();
    expect(await once.node.remote()).toBe(first);
    const victim = first === n2.nodeId ? n2 : n3;
    const survivor = first === n2.nodeId ? n3 : n2;
    // A detached actor on that node whose creator has exited: nobody is left to restart it.
    const orphan = await secondDriver(head, 'create', 'orphaned', victim.nodeId);
    expect(orphan.keeperNode).toBe(victim.nodeId);
    expect(await (await ray.getActor('keeper', { namespace: 'orphaned' })).inc.remote()).toBe(2);

    // May restart too, but its calls are not retried (maxTaskRetries 0).
    const noRetry = Where.options({ schedulingStrategy: { nodeId: first, soft: true }, numCpus: 0, maxRestarts: 1 }).remote();
    expect(await noRetry.node.remote()).toBe(first);

    const inflight = again.slow.remote(2_000);  // cut off by the node's death, then retried
    const cutOff = noRetry.slow.remote(2_000);  // cut off, and failed
    await until(async () => ((await ray.debugStats()).core.inflightTasks ?? 0) >= 2, 5_000, 'the slow calls in flight');
    await cluster.removeNode(victim, { graceful: false });
    const killedAt = performance.now();
    const meanwhile = again.inc.remote();  // made while the actor restarts
    expect(await ray.get(meanwhile, { timeoutMs: 20_000 })).toBe(1);  // a fresh instance
    console.log(`actor restarted on another node ${(performance.now() - killedAt).toFixed(0)} ms after its node was killed`);
    expect(await ray.get(inflight, { timeoutMs: 20_000 })).toBe(survivor.nodeId);
    expect(await again.node.remote()).toBe(survivor.nodeId);
    expect(await again.restarted.remote()).toBe(true);
    const lost = await ray.get(cutOff, { timeoutMs: 20_000 }).catch((e: unknown) => e) as Error;
    expect(lost).toBeInstanceOf(ray.ActorDiedError);
    expect(lost.message).toMatch(/no retries left \(maxTaskRetries=0/);
    expect(lost.message).toContain(`its node ${victim.nodeId}`);
    expect(await noRetry.restarted.remote()).toBe(true);  // restarted elsewhere all the same
    expect(await noRetry.node.remote()).not.toBe(victim.nodeId);
    const err = await ray.get(once.inc.remote(), { timeoutMs: 20_000 }).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ray.ActorDiedError);
    expect(err.message).toContain(`its node ${victim.nodeId}`);
    expect(err.message).toMatch(/died/);
    await until(async () => (await ray.nodes()).some((n) => n.nodeId === victim.nodeId && !n.alive), 10_000, 'the killed node dead');
    // The GCS ended the orphan with its node: its name is free.
    await expect(ray.getActor('keeper', { namespace: 'orphaned' })).rejects.toThrow(/no actor named 'keeper'/);

    // Its restart used up: the next node death is its end.
    await cluster.removeNode(survivor, { graceful: false });
    const last = await ray.get(again.inc.remote(), { timeoutMs: 20_000 }).catch((e: unknown) => e) as Error;
    expect(last).toBeInstanceOf(ray.ActorDiedError);
    expect(last.message).toContain(`its node ${survivor.nodeId}`);
    // Later calls fail at once with the same cause.
    const later = await ray.get(again.inc.remote(), { timeoutMs: 5_000 }).catch((e: unknown) => e) as Error;
    expect(later).toBeInstanceOf(ray.ActorDiedError);
    expect(later.message).toContain(survivor.nodeId);
  }, 60_000);
});
