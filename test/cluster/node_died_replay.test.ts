// A node that was away from the GCS when another node was marked dead hears
// of that death when its link registers again (the GCS replays NodeDied
// for the deaths since the node joined), and handles it once: a second
// reconnect replays it again and the node skips it. Node C's link is cut
// by its test hook (RAYTS_TEST_GCS_PAUSE_FILE: while the file exists the
// link is dropped and does not reconnect); the driver attaches through C
// and reads C's node stats (deadNodes: the deaths C has handled).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { tempDir } from '../support/fs.js';
import { until } from '../support/wait.js';

let cluster: Cluster;
let b: ClusterNode;
let c: ClusterNode;
let dir: string;
let pauseFile: string;

beforeAll(async () => {
  dir = tempDir('node-died-replay');
  pauseFile = path.join(dir, 'pause-gcs');
  cluster = await Cluster.start({
    head: { numCpus: 1 },
    nodes: [{ numCpus: 1 }, { numCpus: 1, env: { RAYTS_TEST_GCS_PAUSE_FILE: pauseFile } }],
    // C may be away for up to ~10 s before the GCS gives up on it.
    healthCheck: { initialDelayMs: 200, periodMs: 1000, timeoutMs: 1000, failureThreshold: 10 },
  });
  [, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  process.env.RAYTS_NODE_ID = c.nodeId; // the driver attaches through C
  await ray.init({ address: cluster.address });
}, 60_000);

afterAll(async () => {
  fs.rmSync(pauseFile, { force: true });
  delete process.env.RAYTS_NODE_ID;
  await ray.shutdown();
  await cluster?.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
}, 30_000);

async function deadNodesOnC(): Promise<number> {
  return (await ray.debugStats()).node.deadNodes ?? -1;
}

// GCS requests of C's clients are answered Unavailable while its link is down.
async function gcsReachable(): Promise<boolean> {
  try {
    await ray.nodes();
    return true;
  } catch {
    return false;
  }
}

async function cutCsLink(): Promise<void> {
  fs.writeFileSync(pauseFile, '');
  await until(async () => !(await gcsReachable()), 10_000, "C's GCS link to drop");
}

async function restoreCsLink(): Promise<void> {
  fs.rmSync(pauseFile);
  await until(gcsReachable, 15_000, "C's GCS link to come back");
}

describe('NodeDied replayed to a node that was away', () => {
  it('C hears of B\'s death when it registers again, once', async () => {
    expect(await deadNodesOnC()).toBe(0);
    await cutCsLink();
    await cluster.removeNode(b); // graceful: the GCS marks B dead at once and tells the nodes it reaches
    const nodes = (await cluster.status()).nodes;
    expect(nodes.find((n) => n.nodeId === b.nodeId)?.alive).toBe(false);
    expect(nodes.find((n) => n.nodeId === c.nodeId)?.alive).toBe(true); // still within its health checks
    expect(await deadNodesOnC()).toBe(0); // the live NodeDied never reached C

    const t0 = performance.now();
    await restoreCsLink();
    // The replay goes out right after the registration reply, before any
    // forwarded request is answered: by now C has handled it.
    await until(async () => (await deadNodesOnC()) === 1, 5_000, 'C to handle the replayed NodeDied');
    console.log(`C handled B's death ${(performance.now() - t0).toFixed(0)} ms after its link was let back`);
    const seen = (await ray.nodes()).find((n) => n.nodeId === b.nodeId);
    expect(seen?.alive).toBe(false);

    // Away and back again: the GCS replays B's death once more; C skips it.
    await cutCsLink();
    await restoreCsLink();
    expect(await deadNodesOnC()).toBe(1);
    expect((await cluster.status()).nodes.filter((n) => n.alive)).toHaveLength(2);
  }, 60_000);
});
