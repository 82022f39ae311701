// A 2-node cluster on this machine (rayts/testing Cluster) with this
// process attached as the driver on the head, for the tests of objects and
// placement across nodes.
import { afterAll, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs the driver script `script` as its own process, attached to `cluster`
 * through `node` (RAYTS_NODE_ID), with argv [mode, address, ...rest];
 * resolves with the JSON of its last stdout line once it exited 0 (killed
 * after 30 s).
 */
export function runDriver(cluster: Cluster, node: ClusterNode, script: string, mode: string,
  ...rest: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, mode, cluster.address, ...rest], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RAYTS_NODE_ID: node.nodeId },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || line === '') reject(new Error(`driver ${mode} exited with ${code ?? signal}: ${err}${out}`));
      else resolve(JSON.parse(line) as Record<string, unknown>);
    });
  });
}
