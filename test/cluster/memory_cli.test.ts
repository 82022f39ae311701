// `rayts memory --address`: the memory summary of every process of every
// alive node of a cluster, per node. A driver attached through the head
// holds a put object; the command, run as a child process, lists it under
// the head's driver, and lists the other node with its workers. A node that
// does not answer (its daemon stopped with SIGSTOP) is reported within the
// timeout, and the command exits 1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ray from 'rayts';
import type { Cluster, ClusterNode } from 'rayts/testing';
import { attachTwoNodes } from '../support/cluster.js';
import type { ClusterMemory } from '../../dist/esm/cluster/cluster_memory.js';

const CLI = fileURLToPath(new URL('../../dist/esm/cli/cli.js', import.meta.url));
let cluster: Cluster;
let other: ClusterNode;

beforeAll(async () => {
  // Attached, and the head's view holds the other node (a hard affinity to a
  // node the view lacks fails at once).
  ({ cluster, n2: other } = await attachTwoNodes({ head: { numCpus: 1 }, nodes: [{ numCpus: 1 }] }));
}, 60_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
}, 30_000);

// The CLI as a child process (asynchronously: this process's CoreWorker must answer it).
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, RAYTS_AUTH_TOKEN: cluster.authToken, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`rayts ${args.join(' ')} took over 60 s`)); }, 60_000);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

describe('rayts memory --address', () => {
  it('lists every process of every node, a put object under the head\'s driver', async () => {
    const big = ray.put(new Float64Array(50_000)); // 400 KB: in the head's store
    const warm = ray.remote({ schedulingStrategy: { nodeId: other.nodeId } }, () => 1);
    expect(await ray.get(warm.remote())).toBe(1); // a worker of the other node has registered

    const out = await cli(['memory', '--address', cluster.address, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const m = JSON.parse(out.stdout) as ClusterMemory;
    expect(m.nodes.map((n) => n.nodeId).sort()).toEqual([cluster.head.nodeId, other.nodeId].sort());
    const head = m.nodes.find((n) => n.nodeId === cluster.head.nodeId);
    expect(head?.isHead).toBe(true);
    const driver = head?.processes.find((p) => p.isDriver && p.pid === process.pid);
    expect(driver, JSON.stringify(head)).toBeDefined();
    expect(driver?.objects.find((o) => o.id === big.id)?.location).toBe('plasma');
    const workers = m.nodes.find((n) => n.nodeId === other.nodeId)?.processes ?? [];
    expect(workers.length).toBeGreaterThan(0);
    expect(workers.every((p) => !p.isDriver)).toBe(true);

    // 'auto': the cluster started on this machine, found under the temp dir
    // its daemons use (<temp>/rayts-<uid>/session_*).
    const temp = path.dirname(path.dirname(cluster.head.sessionDir));
    const text = await cli(['memory', '--address', 'auto'], { TMPDIR: temp, RAYTS_ADDRESS: '' });
    expect(text.code, text.stderr).toBe(0);
    // The object's line comes after its node's header.
    const nodeAt = text.stdout.indexOf(`node ${cluster.head.nodeId}`);
    expect(nodeAt).toBeGreaterThanOrEqual(0);
    expect(text.stdout.indexOf(big.id, nodeAt)).toBeGreaterThan(nodeAt);
    expect(text.stdout).toContain(`node ${other.nodeId}`);
    big.release();
  }, 90_000);

  it('a node that does not answer is reported within the timeout', async () => {
    process.kill(other.pid, 'SIGSTOP'); // its node server accepts (the kernel does) but never answers
    try {
      const t0 = performance.now();
      const out = await cli(['memory', '--address', cluster.address, '--timeout-ms', '1500']);
      const ms = performance.now() - t0;
      expect(out.code).toBe(1);
      expect(out.stdout).toMatch(new RegExp(`node ${other.nodeId} .*did not answer \\(no answer within 1500 ms`));
      expect(out.stdout).toContain(`node ${cluster.head.nodeId}`);
      expect(ms).toBeLessThan(15_000);
      console.log(`rayts memory with one node stopped: ${ms.toFixed(0)} ms (timeout 1500 ms)`);
    } finally {
      process.kill(other.pid, 'SIGCONT');
    }
  }, 60_000);
});
