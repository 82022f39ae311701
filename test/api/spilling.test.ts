// Object spilling: a program that holds more than the object store keeps
// working (objects move to disk and come back byte-identical), task returns
// spill too, and a full disk is a clear ObjectStoreFullError, never a hang.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from 'rayts';
import { eventually } from '../support/wait.js';

const MiB = 1024 * 1024;
const STORE = 64 * MiB;

/** FNV-1a over every byte: cheap, and any changed byte changes it (almost surely). */
function checksum(a: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i]!, 0x01000193) >>> 0;
  return h;
}

describe('spilling with the default directory and limit', () => {
  beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: STORE }));
  afterAll(() => ray.shutdown());

  it('holds 4x the store in puts and reads every value back byte-identical', async () => {
    const n = 64; // 64 x 4 MiB = 256 MiB through a 64 MiB store
    const refs: ray.ObjectRef<Uint8Array>[] = [];
    const sums: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = randomFillSync(new Uint8Array(4 * MiB));
      sums.push(checksum(a));
      refs.push(ray.put(a));
    }
    const mid = await ray.storeStats();
    expect(mid.storeCapacity).toBe(STORE);
    expect(mid.storeUsed).toBeLessThanOrEqual(STORE);
    expect(mid.spillCount).toBeGreaterThanOrEqual(n - STORE / (4 * MiB));
    expect(mid.spillUsed).toBeGreaterThanOrEqual(mid.spilledObjects * 4 * MiB);
    expect(mid.spillLimit).toBeGreaterThan(0);
    // The default spill directory is inside the session directory.
    expect(mid.spillDir.startsWith(path.join(os.tmpdir(), `rayts-${process.getuid!()}`, 'session_'))).toBe(true);
    expect(existsSync(mid.spillDir)).toBe(true);
    const ours = new Set(refs.map((r) => r.id));
    const listed = mid.objects.filter((o) => ours.has(o.id));
    expect(listed).toHaveLength(n);
    expect(listed.filter((o) => o.location === 'spilled').length).toBeGreaterThanOrEqual(n - STORE / (4 * MiB));
    // ray.memorySummary() says where each of the owner's objects lives.
    const summary = await ray.memorySummary();
    const mine = summary.objects.filter((o) => ours.has(o.id));
    expect(mine).toHaveLength(n);
    const spilledHere = mine.filter((o) => o.location === 'spilled');
    expect(spilledHere.length).toBeGreaterThanOrEqual(n - STORE / (4 * MiB));
    expect(mine.every((o) => o.location === 'spilled' || o.location === 'plasma')).toBe(true);
    expect(summary.totals.spilledBytes).toBe(spilledHere.reduce((t, o) => t + o.size, 0));
    for (const o of listed) {
      expect(o.size).toBeGreaterThan(4 * MiB);
      expect(o.sealed).toBe(true);
      expect(o.pinned).toBe(true);
    }

    // A worker reading a spilled argument restores it through its own plasma channel.
    const spilledIdx = refs.findIndex((r) => listed.find((o) => o.id === r.id)!.location === 'spilled');
    expect(spilledIdx).toBeGreaterThanOrEqual(0);
    const sumInWorker = ray.remote((a: Uint8Array) => {
      let h = 0x811c9dc5;
      for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i]!, 0x01000193) >>> 0;
      return h;
    });
    const [ready] = await ray.wait([refs[spilledIdx]!], { numReturns: 1, timeoutMs: 10_000 });
    expect(ready).toHaveLength(1); // spilled objects are ready
    const restoresBefore = (await ray.storeStats()).restoreCount;
    expect(await ray.get(sumInWorker.remote(refs[spilledIdx]!), { timeoutMs: 30_000 })).toBe(sums[spilledIdx]);
    expect((await ray.storeStats()).restoreCount).toBeGreaterThan(restoresBefore);

    for (let i = 0; i < n; i++) {
      const v = await ray.get(refs[i]!, { timeoutMs: 30_000 });
      expect(v.length).toBe(4 * MiB);
      expect(checksum(v)).toBe(sums[i]);
    }
    // In reverse, too: the ones read first were spilled again (or evicted).
    for (let i = n - 1; i >= 0; i -= 7) expect(checksum(await ray.get(refs[i]!))).toBe(sums[i]);
    const after = await ray.storeStats();
    expect(after.restoreCount).toBeGreaterThanOrEqual(n - STORE / (4 * MiB));

    // Freeing spilled objects gives their disk space back.
    const dir = after.spillDir;
    for (const r of refs) r.release();
    expect(await eventually(async () => (await ray.storeStats()).spillUsed === 0)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('task returns bigger than the free space spill, and spilled args reach tasks intact', async () => {
    const make = ray.remote((i: number, size: number) => {
      const a = new Uint8Array(size);
      let x = (i * 2654435761) >>> 0;
      for (let k = 0; k < size; k++) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        a[k] = x >>> 24;
      }
      return a;
    });
    const sum = ray.remote((a: Uint8Array) => {
      let h = 0x811c9dc5;
      for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i]!, 0x01000193) >>> 0;
      return h;
    });
    const before = await ray.storeStats();
    // Fill most of the store with held puts first.
    const held = Array.from({ length: 12 }, (_, i) => ray.put(new Uint8Array(4 * MiB).fill(i)));
    const size = 8 * MiB;
    const outs = Array.from({ length: 12 }, (_, i) => make.remote(i, size)); // 96 MiB of returns
    const sums = await ray.get(outs.map((r) => sum.remote(r)), { timeoutMs: 60_000 });
    const stats = await ray.storeStats();
    expect(stats.spillCount).toBeGreaterThan(before.spillCount);
    // 48 MiB held + 96 MiB of returns through 64 MiB: some returns went to disk.
    const outIds = new Set(outs.map((r) => r.id));
    expect(stats.objects.filter((o) => outIds.has(o.id) && o.location !== 'memory').length).toBeGreaterThan(0);
    for (let i = 0; i < outs.length; i++) {
      const v = await ray.get(outs[i]!, { timeoutMs: 30_000 });
      expect(v.length).toBe(size);
      expect(checksum(v)).toBe(sums[i]);
    }
    for (let i = 0; i < held.length; i++) {
      const v = await ray.get(held[i]!, { timeoutMs: 30_000 });
      expect(v[0]).toBe(i);
      expect(v[4 * MiB - 1]).toBe(i);
    }
    for (const r of [...held, ...outs]) r.release();
  });
});

describe('a full spill disk', () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'rayts-spill-test-'));
  const LIMIT = 16 * MiB;
  beforeAll(() => ray.init({ numCpus: 1, objectStoreMemory: 32 * MiB, objectSpillingDirectory: parent, objectSpillingMaxBytes: LIMIT }));
  afterAll(async () => {
    await ray.shutdown();
    rmSync(parent, { recursive: true, force: true });
  });

  it('is ObjectStoreFullError naming the object size, store and spill numbers; freeing makes room again', async () => {
    const refs: ray.ObjectRef<Uint8Array>[] = [];
    let err: unknown;
    const t0 = Date.now();
    try {
      for (let i = 0; i < 40; i++) refs.push(ray.put(new Uint8Array(4 * MiB).fill(i + 1)));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ray.ObjectStoreFullError);
    expect(Date.now() - t0).toBeLessThan(30_000);
    // 32 MiB in memory + 16 MiB on disk hold 11 or 12 of these (each is 4 MiB + a header).
    expect(refs.length).toBeGreaterThanOrEqual(10);
    expect(refs.length).toBeLessThanOrEqual(12);
    const msg = (err as Error).message;
    expect(msg).toMatch(/of 419\d{4} bytes/);
    expect(msg).toMatch(new RegExp(`object store \\d+ of ${32 * MiB} bytes used`));
    expect(msg).toMatch(new RegExp(`spill disk \\d+ of ${LIMIT} bytes used`));

    const stats = await ray.storeStats();
    expect(stats.spillLimit).toBe(LIMIT);
    expect(stats.spillUsed).toBeLessThanOrEqual(LIMIT);
    expect(stats.spillUsed).toBeGreaterThan(0);
    expect(path.dirname(stats.spillDir)).toBe(parent);
    expect(readdirSync(stats.spillDir).length).toBe(stats.spilledObjects);

    // Memory full of pinned objects and no disk left for another spill: a
    // spilled object (the oldest) cannot come back either. Also an error, not a hang.
    const spilled = stats.objects.filter((o) => o.location === 'spilled').map((o) => o.id);
    const first = refs.findIndex((r) => spilled.includes(r.id));
    expect(first).toBeGreaterThanOrEqual(0);
    if (stats.spillUsed + 4 * MiB + 64 > LIMIT) {
      const e2 = await ray.get(refs[first]!, { timeoutMs: 30_000 }).catch((e: unknown) => e) as Error;
      expect(e2).toBeInstanceOf(ray.ObjectStoreFullError);
      expect(e2.message).toMatch(/cannot restore spilled object/);
      expect(e2.message).toMatch(new RegExp(`spill disk \\d+ of ${LIMIT} bytes used`));
    }

    // Free two: then everything else held is readable again, spilled or not.
    const fills = refs.map((_, i) => i + 1);
    for (const r of refs.splice(first, 2)) r.release();
    fills.splice(first, 2);
    expect(await eventually(async () => (await ray.storeStats()).spillUsed < stats.spillUsed)).toBe(true);
    for (let k = 0; k < refs.length; k++) {
      const v = await ray.get(refs[k]!, { timeoutMs: 30_000 });
      expect(v.length).toBe(4 * MiB);
      expect(v[0]).toBe(fills[k]);
      expect(v[v.length - 1]).toBe(fills[k]);
    }
    for (const r of refs.splice(0, 2)) r.release();
    const again = ray.put(new Uint8Array(4 * MiB).fill(99));
    expect((await again)[4 * MiB - 1]).toBe(99);
  });

  it('removes its spill directory at shutdown', async () => {
    const dir = (await ray.storeStats()).spillDir;
    expect(existsSync(dir)).toBe(true);
    await ray.shutdown();
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(parent)).toBe(true); // the user's directory stays
    await ray.init({ numCpus: 1, objectStoreMemory: 32 * MiB }); // for afterAll
  });
});

describe('spilling options', () => {
  it('are validated, naming the option', async () => {
    await expect(ray.init({ objectSpillingMaxBytes: -1 })).rejects.toThrow(RangeError);
    await expect(ray.init({ objectSpillingMaxBytes: -1 })).rejects.toThrow(/objectSpillingMaxBytes/);
    await expect(ray.init({ objectSpillingMaxBytes: 1.5 })).rejects.toThrow(/objectSpillingMaxBytes/);
    await expect(ray.init({ objectSpillingMaxBytes: '1' as unknown as number })).rejects.toThrow(TypeError);
    await expect(ray.init({ objectSpillingDirectory: 7 as unknown as string })).rejects.toThrow(/objectSpillingDirectory/);
    await expect(ray.init({ objectSpillingDirectory: '' })).rejects.toThrow(RangeError);
    expect(ray.isInitialized()).toBe(false);
  });

  it('a spill directory that cannot be made fails init with a message naming it', async () => {
    const parent = mkdtempSync(path.join(os.tmpdir(), 'rayts-spill-test-'));
    const file = path.join(parent, 'not-a-dir');
    writeFileSync(file, 'x');
    try {
      const err = await ray.init({ objectStoreMemory: 16 * MiB, objectSpillingDirectory: file }).catch((e: unknown) => e) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(file);
      expect(ray.isInitialized()).toBe(false);
      // and a good one works afterwards
      await ray.init({ numCpus: 1, objectStoreMemory: 16 * MiB, objectSpillingDirectory: parent });
      expect(path.dirname((await ray.storeStats()).spillDir)).toBe(parent);
      await ray.shutdown();
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
