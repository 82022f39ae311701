// A 2-node cluster on this machine (rayts/testing Cluster) with this
// process attached as the driver on the head, for the tests of objects and
// placement across nodes.
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
