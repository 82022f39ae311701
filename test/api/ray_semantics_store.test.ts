// A full store, as Ray's test_object_spilling.py expects it: restoring a
// spilled object, or creating a task result, waits (bounded) for releases
// already on their way instead of failing with ObjectStoreFullError while
// the memory is held by views that are about to be dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import * as ray from 'rayts';
import { tempDir } from '../support/fs.js';
import { waitForFile } from '../support/wait.js';

const MiB = 1 << 20;

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 40 * MiB }));
afterAll(() => ray.shutdown());

/** Reads a value in its own scope, so the view is garbage once this returns. */
async function firstByte(ref: ray.ObjectRef<Uint8Array>): Promise<number> {
  const v = await ray.get(ref, { timeoutMs: 30_000 });
  return v[0]! + v[v.length - 1]!;
}

describe('a full store waits for releases on their way', () => {
  // Ray: python/ray/tests/test_object_spilling.py::test_spill_during_get (ray#12040: objects
  // released slowly must not make a restore fail).
  it('gets that restore spilled results while other results are being created all succeed', async () => {
    const make = ray.remote((i: number) => new Uint8Array(10 << 20).fill(i + 1));
    const refs = Array.from({ length: 10 }, (_, i) => make.remote(i));
    const seen: number[] = [];
    for (const r of refs) seen.push(await firstByte(r));
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => 2 * (i + 1)));
  }, 60_000);

  it('a restore waits while a worker still maps the object that must make room, then succeeds', async () => {
    const a = ray.put(new Uint8Array(24 * MiB).fill(1));
    const b = ray.put(new Uint8Array(24 * MiB).fill(2)); // a is spilled to make room for b
    // A task maps b (zero-copy) for 3 s: b can be neither spilled nor evicted meanwhile.
    const started = path.join(tempDir('restore-wait'), 'mapped');
    const holder = ray.remote(async (x: Uint8Array, started: string) => {
      (await import('node:fs')).writeFileSync(started, String(x[0]));
      await new Promise((r) => setTimeout(r, 3000));
      return x[0];
    }).remote(b, started);
    const stats = await ray.storeStats();
    expect(stats.objects.find((o) => o.id === a.id)?.location).toBe('spilled');
    expect(await waitForFile(started)).toBe('2'); // the task has b mapped
    const t0 = Date.now();
    // Restoring a needs b's room: it waits for the task to end and drop its view
    // (before, it failed after a 2 s wait in place with "in use by clients").
    expect(await firstByte(a)).toBe(2);
    expect(Date.now() - t0).toBeGreaterThan(1500);
    expect(await holder).toBe(2);
    a.release();
    b.release();
  }, 60_000);
});
