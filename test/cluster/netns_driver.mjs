// The driver of netns.test.ts, run inside the head's network namespace
// (`ip netns exec`): attaches to the cluster at argv[2], runs tasks on the
// node named by argv[3] (in the other namespace, reached over the veth
// pair), moves a 16 MiB object each way, and prints one JSON line with what
// it saw (the test checks it).
import { createHash } from 'node:crypto';
import * as ray from 'rayts';

const [address, otherNode] = process.argv.slice(2);
const MiB = 1 << 20;

/** Deterministic bytes (xorshift32 from `seed`), the same here and in a task (no captures). */
function pattern(n, seed) {
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    w[i] = x;
  }
  return out;
}
const sha = (b) => createHash('sha256').update(b).digest('hex');

await ray.init({ address });
try {
  const on = { schedulingStrategy: { nodeId: otherNode } };
  const where = ray.remote(async (i) => [i * 2, (await import('rayts')).getRuntimeContext().nodeId]);
  const tasks = await ray.get(Array.from({ length: 20 }, (_, i) => where.options(on).remote(i)), { timeoutMs: 30_000 });

  const hashOf = ray.remote(async (b) => {
    const { createHash } = await import('node:crypto');
    return [createHash('sha256').update(b).digest('hex'), (await import('rayts')).getRuntimeContext().nodeId];
  });
  const bytes = pattern(16 * MiB, 9);
  const ref = ray.put(bytes);
  const [pulledThere, hashNode] = await ray.get(hashOf.options(on).remote(ref), { timeoutMs: 30_000 });

  const make = ray.remote(pattern);
  const back = await ray.get(make.options(on).remote(16 * MiB, 13), { timeoutMs: 30_000 });

  const nodes = await ray.nodes();
  process.stdout.write(`${JSON.stringify({
    tasks,
    put: { expected: sha(bytes), there: pulledThere, node: hashNode },
    result: { expected: sha(pattern(16 * MiB, 13)), got: sha(back), length: back.length },
    nodes: nodes.map((n) => ({ nodeId: n.nodeId, alive: n.alive, nodeIp: n.nodeIp, nodeManagerAddress: n.nodeManagerAddress })),
    pulled: (await ray.debugStats()).node.pullsCompleted,
  })}\n`);
  ref.release();
} finally {
  await ray.shutdown();
}
