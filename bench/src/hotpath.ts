// Hot-path micro-suite (`npm run bench:hotpath`): each piece of a task's or
// an object's path measured alone with benny, so that a change to one piece
// can be measured without the noise of a whole round trip. Cases:
//   serialize / deserialize a small value (the codec, no runtime)
//   submit one task that stays queued (the owner's submit path only: the
//     node's one `slot` is held by a blocker task, so nothing runs)
//   submit + cancel a queued task
//   ray.put of a small value (its ref dropped at once)
//   ray.get of one ready ref, and of a batch of 1,000 ready refs
//   ray.get of a ready 64-byte Buffer value (decoded out of the value arena)
//   ray.put of a fresh 8 MiB typed array (plasma; huge-page read advice), released
//   ray.put(0), its ref dropped (the "single client put calls" row's body)
//   ray.get of a value holding 10,000 refs, the refs dropped (the "get
//     object containing 10k refs" row: decode, registration, collection)
// Prints benny's table (ops/s, margin of error) on stdout; --json FILE also
// writes the results.
import { writeFileSync } from 'node:fs';
import b from 'benny';
import * as ray from 'rayts';
import { deserialize, serializeToBytes } from '../../dist/esm/codec/serialization.js';
import type { RefHooks } from '../../dist/esm/codec/serialization.js';

const noRefs: RefHooks = {
  isRef: () => false,
  encodeRef: () => new Uint8Array(0),
  decodeRef: () => ({}),
};
const small = { id: 42, name: 'task', tags: ['a', 'b'], score: 0.5 };
const smallBytes = serializeToBytes(small, noRefs);

const jsonIndex = process.argv.indexOf('--json');
const jsonPath = jsonIndex > 0 ? process.argv[jsonIndex + 1] : undefined;
const results: { name: string; ops: number; margin: number }[] = [];
const options = { minSamples: 5, maxTime: 1, initCount: 1000 };

async function main(): Promise<void> {
  await ray.init({ numCpus: 1, resources: { slot: 1 } });
  const hold = ray.remote({ numCpus: 0, resources: { slot: 1 } }, async () => {
    await new Promise<void>((resolve) => { setTimeout(resolve, 600_000); });
  });
  const queued = ray.remote({ numCpus: 0, resources: { slot: 1 } }, () => 1);
  const quick = ray.remote(() => 1);
  const blocker = hold.remote();
  const pending: ray.ObjectRef<number>[] = [];
  const ready = Array.from({ length: 1000 }, () => quick.remote());
  await ray.get(ready);
  const one = ready[0]!;
  const bufRef = ray.put(Buffer.alloc(64, 7));
  const inner = Array.from({ length: 10_000 }, () => ray.put(1));
  const manyRefs = ray.put(inner);
  for (const r of inner) r.release(); // held by manyRefs

  await b.suite(
    'rayts hot path',
    b.add('serialize a small value', () => { serializeToBytes(small, noRefs); }),
    b.add('deserialize a small value', () => { deserialize(smallBytes, noRefs); }),
    // Before the queue grows: cancel removes the task from its key's queue.
    b.add('submit + cancel a queued task', () => { ray.cancel(queued.remote()); }),
    b.add('submit one task (stays queued)', () => { pending.push(queued.remote()); }),
    b.add('ray.put of a small value (ref dropped)', () => { ray.put(small); }),
    b.add('ray.get of one ready ref', async () => { await ray.get(one); }),
    b.add('ray.get of 1,000 ready refs', async () => { await ray.get(ready); }),
    b.add('ray.get of a ready 64-byte Buffer', async () => { await ray.get(bufRef); }),
    b.add('ray.put(0) (ref dropped)', () => { ray.put(0); }),
    b.add('ray.get of a value holding 10,000 refs (dropped)', async () => { await ray.get(manyRefs); }),
    b.add('ray.put of a fresh 8 MiB typed array (released)', () => { ray.put(new Float64Array(1024 * 1024)).release(); }),
    b.cycle((r) => {
      results.push({ name: r.name, ops: r.ops, margin: r.margin });
      return `${r.name}: ${Math.round(r.ops).toLocaleString('en-US')} ops/s ± ${r.margin.toFixed(1)} %`;
    }),
    b.configure({ cases: options }),
  );
  for (const r of pending) ray.cancel(r);
  ray.cancel(blocker, { force: true });
  await ray.shutdown();
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(results, null, 2));
}

await main();
