// A cluster on this machine (rayts/testing Cluster) with this process
// attached as the driver on the head, for a test file: fileCluster, and the
// 2-node one of the tests of objects and placement across nodes.
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
 * The file's cluster: started by `start` (which attaches this process) in
 * beforeAll, detached and stopped in afterAll. Read `cluster` and `nodes`
 * (head first) in tests.
 */
export function fileCluster(start: () => Promise<Cluster>): { readonly cluster: Cluster; readonly nodes: ClusterNode[] } {
  let started: Cluster | undefined;
  beforeAll(async () => {
    started = await start();
  }, 90_000);
  afterAll(async () => {
    await ray.shutdown();
    await started?.shutdown();
  }, 30_000);
  const get = (): Cluster => {
    if (!started) throw new Error('the cluster is not started (beforeAll failed)');
    return started;
  };
  return {
    get cluster(): Cluster { return get(); },
    get nodes(): ClusterNode[] { return get().nodes; },
  };
}

/** fileCluster of attachTwoNodes(opts). Read `cluster` and `n2` in tests. */
export function twoNodeCluster(opts: ClusterOptions): { readonly cluster: Cluster; readonly n2: ClusterNode } {
  const f = fileCluster(async () => (await attachTwoNodes(opts)).cluster);
  return {
    get cluster(): Cluster { return f.cluster; },
    get n2(): ClusterNode { return f.nodes[1] as ClusterNode; },
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
