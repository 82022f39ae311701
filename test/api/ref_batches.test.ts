// Refs decoded out of one value are registered for collection as one batch
// (ts/api/ref_batches.ts): one FinalizationRegistry cell for the holder
// instead of one per ref. Each ref must still be counted down exactly once,
// and on its own: dropping all of them frees them; keeping one lets the
// others go once the batch is split; a ref released by hand is not counted
// down again when its batch is collected or split.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { obtainGc } from '../support/gc.js';
import { until } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 1 }));
afterAll(() => ray.shutdown());

const gc = obtainGc();
const N = 200; // above BATCH_MIN: one batch

/** The local counts of `ids` in this process (0 when the object is not listed). */
async function localCounts(ids: string[]): Promise<number[]> {
  const objects = (await ray.memorySummary()).objects;
  const byId = new Map(objects.map((o) => [o.id, o.references.local]));
  return ids.map((id) => byId.get(id) ?? 0);
}

/** Full collections, with a turn between them so finalizers (and the batch canary) run. */
async function collect(): Promise<void> {
  gc();
  await new Promise((r) => setImmediate(r));
}

/** `n` puts, their ids, and an outer put holding their refs (the puts' own handles released). */
function nested(n: number): { outer: ray.ObjectRef<ray.ObjectRef<number>[]>; ids: string[] } {
  const inner = Array.from({ length: n }, (_, i) => ray.put(i));
  const outer = ray.put(inner);
  const ids = inner.map((r) => r.id);
  for (const r of inner) r.release();
  return { outer, ids };
}

describe('refs decoded as one batch', () => {
  it('all dropped: every one is counted down once the holder is collected', async () => {
    const { outer, ids } = nested(N);
    let got: ray.ObjectRef<number>[] | undefined = await ray.get(outer);
    expect(got).toHaveLength(N);
    expect(await localCounts(ids)).toEqual(ids.map(() => 1));
    got = undefined;
    await until(async () => {
      await collect();
      return (await localCounts(ids)).every((c) => c === 0);
    }, 20_000, 'the decoded refs to be counted down');
    // Still held by the outer object: a new get gives working handles again.
    const again = await ray.get(outer);
    expect(await ray.get(again[N - 1]!)).toBe(N - 1);
  });

  it('one kept: the others are counted down (the batch is split); the kept one stays counted and readable', async () => {
    const { outer, ids } = nested(N);
    const got = await ray.get(outer);
    const kept = got[7]!;
    got.length = 0; // the array, and with it every other handle, is garbage
    await until(async () => {
      await collect();
      const counts = await localCounts(ids);
      return counts.every((c, i) => (i === 7 ? c === 1 : c === 0));
    }, 20_000, 'every decoded ref but the kept one to be counted down');
    expect(await ray.get(kept)).toBe(7);
    // More collections: the kept one is not counted down while reachable.
    await collect();
    await collect();
    expect((await localCounts([ids[7]!]))[0]).toBe(1);
    kept.release();
    expect((await localCounts([ids[7]!]))[0]).toBe(0);
  });

  it('released by hand: counted down at release, and not again when the batch is collected', async () => {
    const { outer, ids } = nested(N);
    // Two decodes of the same value: two handles per object, two counts.
    const a = await ray.get(outer);
    let b: ray.ObjectRef<number>[] | undefined = await ray.get(outer);
    expect(await localCounts(ids.slice(0, 3))).toEqual([2, 2, 2]);
    for (let i = 0; i < 3; i++) b[i]!.release();
    expect(await localCounts(ids.slice(0, 3))).toEqual([1, 1, 1]);
    b = undefined;
    await until(async () => {
      await collect();
      return (await localCounts(ids)).every((c) => c === 1);
    }, 20_000, 'the second batch to be counted down');
    // The first batch's handles still count once each (none went twice).
    await collect();
    expect(await localCounts(ids)).toEqual(ids.map(() => 1));
    expect(await ray.get(a[0]!)).toBe(0);
    for (const r of a) r.release();
    expect((await localCounts(ids)).every((c) => c === 0)).toBe(true);
  });
});
