// Values holding many refs: ray_perf's "get object containing 10k refs"
// (a task returns 10,000 ray.put refs; the driver gets it again and again).
// Regression: each decoded ref went through msgpackr's typed-array extension
// (a slice and a new ArrayBuffer per ref), got its own id buffer, a HeldRef,
// an unregister token, and was counted with a string copy per ref: ~40 ms of
// driver CPU per get here (26/s in the issue).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';

beforeAll(() => ray.init({ numCpus: 1 }));
afterAll(() => ray.shutdown());

const makeRefs = ray.remote(async (n: number) => {
  const r = await import('rayts');
  const refs = [];
  for (let i = 0; i < n; i++) refs.push(r.put(i));
  return refs;
});

describe('a value holding 10,000 refs', () => {
  it('decodes to working, distinct handles: each gets its value; release and GC of some leave the rest readable', async () => {
    const outer = makeRefs.remote(10_000);
    const refs = await ray.get(outer);
    expect(refs).toHaveLength(10_000);
    expect(new Set(refs.map((r) => r.id)).size).toBe(10_000);
    expect(await ray.get([refs[0]!, refs[4321]!, refs[9999]!])).toEqual([0, 4321, 9999]);
    refs[1]!.release();
    expect(refs[1]!.released).toBe(true);
    const again = await ray.get(outer); // new handles of the same objects
    expect(again[1]!.id).toBe(refs[1]!.id);
    expect(await again[1]!).toBe(1);   // still held by the outer object and by this handle
    expect((await ray.wait(again.slice(0, 100), { numReturns: 100 }))[0]).toHaveLength(100);
  });

  // A CPU-time bound means nothing against the sanitized addon (the CI step
  // that loads it through RAYTS_ADDON_PATH): there it is skipped.
  it.skipIf(process.env.RAYTS_ADDON_PATH !== undefined)('gets of it cost under 25 ms of driver CPU each, garbage collection of the refs included (was ~40)', async () => {
    const outer = makeRefs.remote(10_000);
    await ray.get(outer);
    await ray.get(outer); // warm-up (JIT)
    const n = 20;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) expect(await ray.get(outer)).toHaveLength(10_000);
    const c = process.cpuUsage(c0);
    const ms = (c.user + c.system) / 1000 / n;
    console.log(`get of a value holding 10,000 refs: ${ms.toFixed(1)} ms driver CPU per get (mean of ${n})`);
    expect(ms).toBeLessThan(25);
  });
});
