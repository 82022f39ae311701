// A 3-node cluster of real daemons runs 5,000 tasks (full scale 20,000)
// spread over its nodes; a fifth of the way in one node is SIGKILLed (its
// daemon, and with it its workers), and once the GCS has marked it dead a
// new node joins in its place. Every task completes with the right result
// (the ones running or waiting on the killed node are retried elsewhere,
// see docs/reliability.md "When a node dies"), and side effects keyed by
// task id show exactly one record per task.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as ray from 'rayts';
import { Cluster, type ClusterNode } from 'rayts/testing';
import { report, scaled, sideEffects } from './helpers.js';
import { until } from '../support/wait.js';

const N = scaled(20_000, 5_000);
let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rayts-chaos-node-'));
  cluster = await Cluster.start({
    head: { numCpus: 1 },
    nodes: [{ numCpus: 2 }, { numCpus: 2 }],
    healthCheck: { initialDelayMs: 200, periodMs: 200, timeoutMs: 500, failureThreshold: 3 },
  });
  await ray.init({ address: cluster.address });
}, 60_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

it(`${N} tasks survive a node SIGKILLed and replaced mid-run`, async () => {
  const [head, victim] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const work = ray.remote({ maxRetries: -1, schedulingStrategy: 'SPREAD' }, async (i: number, out: string) => {
    const r = (await import('rayts' as string)) as typeof ray;
    const fs = await import('node:fs');
    const p = await import('node:path');
    const node = r.getRuntimeContext().nodeId;
    fs.appendFileSync(p.join(out, r.getRuntimeContext().taskId!), `${i}\n`);
    await new Promise((res) => setTimeout(res, 10));
    return [i * 2 + 1, node] as const;
  });
  const t0 = performance.now();
  const refs = Array.from({ length: N }, (_, i) => work.remote(i, dir));
  const readyCount = async (): Promise<number> =>
    (await ray.wait(refs, { numReturns: refs.length, timeoutMs: 0, fetchLocal: false }))[0].length;
  await until(async () => (await readyCount()) >= N / 5, 60_000, `${N / 5} tasks done`);
  const killedAt = performance.now();
  await cluster.removeNode(victim, { graceful: false });
  await until(async () => (await ray.nodes()).some((n) => n.nodeId === victim.nodeId && !n.alive), 15_000,
    'the killed node to be marked dead');
  const deadAfterMs = performance.now() - killedAt;
  // Everything the killed node finished has been received by now.
  const doneAtKill = await readyCount();
  const added = await cluster.addNode({ numCpus: 2 });
  const readdedAfterMs = performance.now() - killedAt;

  const results = await ray.get(refs, { timeoutMs: 120_000 });
  const seconds = (performance.now() - t0) / 1000;
  let wrong = 0;
  const byNode = new Map<string, number>();
  for (const [i, [v, node]] of results.entries()) {
    if (v !== i * 2 + 1) wrong++;
    byNode.set(node, (byNode.get(node) ?? 0) + 1);
  }
  expect(results.length).toBe(N);
  expect(wrong).toBe(0);
  // One side-effect file per task, each naming only its own input.
  const { files, inputs: seen, mixed, reruns } = sideEffects(dir);
  expect(files).toBe(N);
  expect(mixed).toBe(0);
  expect(seen.size).toBe(N);
  // The killed node had run tasks, and work went on without it.
  expect(byNode.get(victim.nodeId) ?? 0).toBeGreaterThan(0);
  expect(byNode.get(victim.nodeId) ?? 0).toBeLessThanOrEqual(doneAtKill);
  expect(byNode.get(head.nodeId) ?? 0).toBeGreaterThan(0);
  expect(byNode.get(added.nodeId) ?? 0).toBeGreaterThan(0);
  report('node_kill', {
    tasks: N, resultsLost: N - seen.size, wrongResults: wrong, reExecutions: reruns, seconds,
    doneAtKill, deadAfterMs: Math.round(deadAfterMs), readdedAfterMs: Math.round(readdedAfterMs),
    onKilledNode: byNode.get(victim.nodeId) ?? 0, onReaddedNode: byNode.get(added.nodeId) ?? 0,
  });
}, 180_000);
