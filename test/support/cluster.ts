// A 2-node cluster on this machine (rayts/testing Cluster) with this
// process attached as the driver on the head, for the tests of objects and
// placement across nodes.
import { afterAll, beforeAll } from 'vitest';
import * as ray from 'rayts';
import { Cluster, type ClusterNode, type ClusterOptions } from 'rayts/testing';
import { until } from './wait.js';

/** Starts `opts` (a head and one node), attaches to it and waits until the head's view holds both nodes. */
export async function attachTwoNodes(opts: ClusterOptions): Promise<{ cluster: Cluster; n2: ClusterNode }> {
  const cluster = await Cluster.start(opts);
  await ray.init({ address: cluster.address });
  await until(async () => (await ray.debugStats()).node.viewNodes === 2, 10_000, 'node 2 in the head\'s cluster view');
  return { cluster, n2: cluster.nodes[1] as ClusterNode };
}

/**
 * The same as the file's cluster: started (and this process attached) in
 * beforeAll, detached and stopped in afterAll. Read `cluster` and `n2` in tests.
 */
export function twoNodeCluster(opts: ClusterOptions): { readonly cluster: Cluster; readonly n2: ClusterNode } {
  let started: { cluster: Cluster; n2: ClusterNode } | undefined;
  beforeAll(async () => {
    started = await attachTwoNodes(opts);
  }, 90_000);
  afterAll(async () => {
    await ray.shutdown();
    await started?.cluster.shutdown();
  }, 30_000);
  return {
    get cluster(): Cluster {
      if (!started) throw new Error('the cluster is not started (beforeAll failed)');
      return started.cluster;
    },
    get n2(): ClusterNode {
      if (!started) throw new Error('the cluster is not started (beforeAll failed)');
      return started.n2;
    },
  };
}
