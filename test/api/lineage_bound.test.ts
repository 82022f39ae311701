// lineageMaxBytes: with no room for lineage, a task result whose plasma copy
// is lost cannot be recomputed, and the error says why.
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as path from 'node:path';
import * as ray from 'rayts';
import { tempDir } from '../support/fs.js';
import { waitForFile } from '../support/wait.js';
import { hasTestHooks, NEEDS_TEST_HOOKS } from '../support/hooks.js';

beforeAll(() => ray.init({ numCpus: 1, objectStoreMemory: 64 * 1024 * 1024, lineageMaxBytes: 0 }));
afterAll(() => ray.shutdown());

it.skipIf(!hasTestHooks)(`a lost task result whose lineage did not fit under lineageMaxBytes fails with ObjectLostError (${NEEDS_TEST_HOOKS})`, async () => {
  const make = ray.remote((n: number) => new Float64Array(n).fill(4));
  const r = make.remote(50_000);
  expect((await ray.get(r))[0]).toBe(4);
  const s = await ray.memorySummary();
  expect(s.lineage.maxBytes).toBe(0);
  expect(s.objects.find((o) => o.id === r.id)?.lineage).toBe(false);
  ray._internal.deleteFromStore(r);
  const err = await ray.get(r, { timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ray.ObjectLostError);
  expect((err as Error).message).toContain(r.id);
  expect((err as Error).message).toContain('lineageMaxBytes');
});

it('refs in the second of two returns are handed to the caller with that return', async () => {
  const two = ray.remote({ numReturns: 2 }, async (released: string) => {
    const ray = await import('rayts');
    const fs = await import('node:fs');
    const inner = ray.put(new Float64Array(20_000).fill(9));
    setTimeout(() => { // the worker's handle goes away right after the return
      inner.release();
      setImmediate(() => fs.writeFileSync(released, '')); // after the turn's frames are flushed
    }, 0);
    return [1, { inner }];
  });
  const released = path.join(tempDir('lineage-bound'), 'released');
  const [a, b] = two.remote(released) as [ray.ObjectRef<number>, ray.ObjectRef<{ inner: ray.ObjectRef<Float64Array> }>];
  expect(await a).toBe(1);
  const box = await ray.get(b);
  await waitForFile(released);
  expect((await ray.get(box.inner))[0]).toBe(9);
});
