// rayts demo: an embedded local cluster, remote tasks, objects in shared memory.
import * as ray from '../dist/esm/index.js';

const t0 = performance.now();
await ray.init();
const square = ray.remote((x) => x * x);
const sum = ray.remote((...xs) => xs.reduce((a, b) => a + b, 0));
const squares = Array.from({ length: 10 }, (_, i) => square.remote(i));
const total = await sum.remote(...squares);
console.log(`sum of squares 0..9 = ${total}  (init + tasks: ${(performance.now() - t0).toFixed(0)} ms)`);

const big = ray.put(new Float64Array(4_000_000).fill(1.5)); // 32 MB, written once to shared memory
const mean = ray.remote((a) => a.reduce((s, v) => s + v, 0) / a.length);
console.log(`mean of a 32 MB array computed in a worker: ${await mean.remote(big)}`);

const refs = Array.from({ length: 10_000 }, (_, i) => square.remote(i));
const t1 = performance.now();
await ray.get(refs);
console.log(`10,000 tasks in ${(performance.now() - t1).toFixed(0)} ms`);
console.log('cluster:', await ray.clusterResources());
await ray.shutdown();
