// ray.init({ address }): attach this driver to a running cluster through a
// node on this machine (the head when it is here). The GCS at the address
// is asked over TCP, with the cluster token, for its nodes (a refused token
// fails here, saying so); the driver then connects to the chosen node's
// unix socket exactly as an embedded driver connects to its own node
// server. ray.shutdown() disconnects; the cluster keeps running.
import * as os from 'node:os';
import * as path from 'node:path';
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { RaySystemError } from '../api/errors.js';
import type { InitOptions } from '../api/options.js';
import { noTokenMessage, readToken } from '../cluster/auth.js';
import { findLocalCluster, readNodeFile } from '../cluster/node_files.js';
import { queryStatus, type ClusterNodeStatus } from '../cluster/status.js';
import { Runtime } from './runtime.js';

/** Options of an embedded cluster that a driver attaching to a running one cannot set. */
const NODE_OPTIONS = ['numCpus', 'numGpus', 'resources', 'objectStoreMemory', 'objectSpillingDirectory',
  'objectSpillingMaxBytes', 'memoryUsageThreshold', 'runtimeEnv'] as const;

/** 'auto' or host:port -> host:port of a GCS. */
export function resolveAddress(address: string): string {
  if (address !== 'auto') return address;
  const found = findLocalCluster();
  if (found === undefined) {
    throw new RaySystemError("ray.init({ address: 'auto' }): no cluster was started on this machine " +
      '(start one with `rayts start --head`, or give its address; RAYTS_ADDRESS also sets it)');
  }
  return found;
}

/**
 * The node of this machine to attach to: alive, its socket here, its node file naming it; the head first,
 * or the one RAYTS_NODE_ID names (a machine running several nodes).
 */
function localNode(nodes: ClusterNodeStatus[], address: string): ClusterNodeStatus | undefined {
  const host = os.hostname();
  const here = nodes.filter((n) => n.alive && n.hostname === host && existsSync(n.address) &&
    readNodeFile(n.sessionDir)?.nodeId === n.nodeId);
  const wanted = process.env.RAYTS_NODE_ID;
  if (wanted !== undefined && wanted !== '') {
    const node = here.find((n) => n.nodeId === wanted);
    if (node === undefined) {
      throw new RaySystemError(`ray.init({ address: '${address}' }): RAYTS_NODE_ID=${wanted} is not an alive node of ` +
        `the cluster on this machine (${here.map((n) => n.nodeId).join(', ') || 'none'})`);
    }
    return node;
  }
  return here.find((n) => n.isHead) ?? here[0];
}

export interface AttachedDriver {
  runtime: Runtime;
  address: string;
  nodeId: string;
  /** Removes what the driver left in the node's session directory (its listen socket). */
  cleanup(): void;
}

export async function attachToCluster(o: InitOptions): Promise<AttachedDriver> {
  for (const name of NODE_OPTIONS) {
    if (o[name] !== undefined) {
      throw new TypeError(`${name} cannot be given with address: the nodes of a running cluster have their own ` +
        'resources and settings (set them with `rayts start`)');
    }
  }
  const address = resolveAddress(o.address as string);
  const token = readToken();
  if (token === undefined) throw new RaySystemError(`ray.init: ${noTokenMessage(address)}`);
  let nodes: ClusterNodeStatus[];
  try {
    nodes = (await queryStatus(address, token)).nodes;
  } catch (e) {
    throw new RaySystemError(`ray.init({ address: '${address}' }): ${e instanceof Error ? e.message : String(e)}`);
  }
  const node = localNode(nodes, address);
  if (node === undefined) {
    const alive = nodes.filter((n) => n.alive).length;
    throw new RaySystemError(`ray.init({ address: '${address}' }): none of the cluster's ${alive} alive nodes runs on this ` +
      `machine (${os.hostname()}); a driver attaches to a node of its own machine: start one here with ` +
      `\`rayts start --address ${address}\``);
  }
  const listenPath = path.join(node.sessionDir, 'sockets', `driver_${process.pid}_${randomBytes(3).toString('hex')}.sock`);
  const runtime = new Runtime({
    nodeSocket: node.address, listenPath, isDriver: true, namespace: o.namespace ?? '', nodeIp: node.nodeIp,
    ...(o.lineageMaxBytes !== undefined ? { lineageMaxBytes: o.lineageMaxBytes } : {}),
  });
  return { runtime, address, nodeId: node.nodeId, cleanup: () => rmSync(listenPath, { force: true }) };
}
