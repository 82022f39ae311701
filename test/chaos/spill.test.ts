// Spilling under load: 4x the object store's capacity of random bytes put
// and held, then every value read back byte-identical (SHA-256 per object);
// then task returns worth 2x the store, each checked in a worker and again
// in the driver. Store usage never exceeds capacity, everything spilled
// comes back, and releasing all refs empties the store and the spill disk.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash, randomFillSync } from 'node:crypto';
import * as ray from 'rayts';
import { MiB, report, scaled } from './helpers.js';
import { storeUsed } from '../support/stats.js';
import { eventually } from '../support/wait.js';

const STORE = scaled(256, 64) * MiB;
const OBJ = 4 * MiB;
const N_PUT = (4 * STORE) / OBJ; // 4x the capacity
const N_RET = (2 * STORE) / OBJ; // task returns: 2x the capacity

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: STORE }));
afterAll(() => ray.shutdown());

const sha = (a: Uint8Array): string => createHash('sha256').update(a).digest('hex');

it(`puts ${N_PUT} x 4 MiB (4x a ${STORE / MiB} MiB store) and ${N_RET} task returns, all read back byte-identical`, async () => {
  const t0 = Date.now();
  const base = await ray.storeStats();
  let peak = 0;
  const sample = async (): Promise<void> => {
    const u = await storeUsed();
    if (u > peak) peak = u;
  };

  // 1. Puts: 4x the capacity, every ref held.
  const refs: ray.ObjectRef<Uint8Array>[] = [];
  const hashes: string[] = [];
  const buf = new Uint8Array(OBJ);
  for (let i = 0; i < N_PUT; i++) {
    randomFillSync(buf);
    hashes.push(sha(buf));
    refs.push(ray.put(buf));
    if (i % 4 === 3) await sample();
  }
  const afterPuts = await ray.storeStats();
  expect(afterPuts.storeUsed).toBeLessThanOrEqual(STORE);
  // At most a store's worth is in memory: at least 3/4 of the bytes went to disk.
  expect(afterPuts.spillCount - base.spillCount).toBeGreaterThanOrEqual(N_PUT - STORE / OBJ);
  expect(afterPuts.spillUsed).toBeGreaterThanOrEqual((N_PUT - STORE / OBJ) * OBJ);

  // Read everything back, forwards then every 5th backwards (the first
  // reads pushed others out again).
  let wrong = 0;
  for (let i = 0; i < N_PUT; i++) {
    if (sha(await ray.get(refs[i]!, { timeoutMs: 60_000 })) !== hashes[i]) wrong++;
    if (i % 4 === 3) await sample();
  }
  for (let i = N_PUT - 1; i >= 0; i -= 5) {
    if (sha(await ray.get(refs[i]!, { timeoutMs: 60_000 })) !== hashes[i]) wrong++;
  }
  expect(wrong).toBe(0);
  const afterReads = await ray.storeStats();
  expect(afterReads.restoreCount - base.restoreCount).toBeGreaterThanOrEqual(N_PUT - STORE / OBJ);

  // 2. Task returns: 2x the capacity of pseudo-random bytes made in workers
  // while the puts are still held, hashed in a worker (which restores a
  // spilled argument itself) and again here.
  const make = ray.remote((seed: number, size: number) => {
    const a = new Uint8Array(size);
    let x = (seed * 2654435761 + 1) >>> 0;
    for (let k = 0; k < size; k++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      a[k] = x >>> 24;
    }
    return a;
  });
  const hashIn = ray.remote(async (a: Uint8Array) => {
    const { createHash } = await import('node:crypto');
    return createHash('sha256').update(a).digest('hex');
  });
  const outs: ray.ObjectRef<Uint8Array>[] = [];
  for (let i = 0; i < N_RET; i++) outs.push(make.remote(i, OBJ));
  const workerHashes = await ray.get(outs.map((r) => hashIn.remote(r)), { timeoutMs: 300_000 });
  await sample();
  let wrongRet = 0;
  for (let i = 0; i < N_RET; i++) {
    if (sha(await ray.get(outs[i]!, { timeoutMs: 60_000 })) !== workerHashes[i]) wrongRet++;
    if (i % 4 === 3) await sample();
  }
  expect(wrongRet).toBe(0);
  // Two different seeds never give the same bytes: the hashes are all distinct.
  expect(new Set(workerHashes).size).toBe(N_RET);
  const end = await ray.storeStats();
  expect(peak).toBeLessThanOrEqual(STORE);

  // 3. Releasing every ref empties memory and disk (within a bound: frees are asynchronous).
  for (const r of [...refs, ...outs]) r.release();
  const drained = await eventually(async () => {
    const s = await ray.storeStats();
    return s.spillUsed === 0 && s.storeUsed <= base.storeUsed + 1 * MiB;
  }, 30_000);
  const final = await ray.storeStats();
  expect(drained, `store ${final.storeUsed} bytes, spill ${final.spillUsed} bytes after release`).toBe(true);

  report('spill', {
    storeCapacity: STORE,
    bytesPut: N_PUT * OBJ,
    taskReturnBytes: N_RET * OBJ,
    peakStoreUsed: peak,
    spilledBytes: afterPuts.spillUsed,
    spillCount: end.spillCount - base.spillCount,
    restoreCount: end.restoreCount - base.restoreCount,
    finalStoreUsed: final.storeUsed,
    finalSpillUsed: final.spillUsed,
    seconds: (Date.now() - t0) / 1000,
  });
}, 600_000);
