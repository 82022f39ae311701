// Ownership across processes: borrowers (refs nested in arguments, stored in
// actors, passed on by borrowers, returned inside task results), borrower
// death, OwnerDiedError, lineage reconstruction of lost plasma copies,
// ObjectLostError for lost puts, and ray.memorySummary().
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { obtainGc } from '../support/gc.js';
import { alive } from '../support/process.js';
import { tempDir } from '../support/fs.js';
import { until, waitForFile } from '../support/wait.js';
import { storeUsed } from '../support/stats.js';
import { hasTestHooks, NEEDS_TEST_HOOKS } from '../support/hooks.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 256 * 1024 * 1024 }));
afterAll(() => ray.shutdown());


async function entry(id: string): Promise<ray.ObjectSummary | undefined> {
  return (await ray.memorySummary()).objects.find((o) => o.id === id);
}

class Holder {
  ref: ray.ObjectRef<Float64Array> | undefined;
  hold(box: { r: ray.ObjectRef<Float64Array> }): boolean {
    this.ref = box.r;
    return true;
  }
  async passTo(other: ray.ActorHandle<Holder>): Promise<boolean> {
    const r = this.ref!;
    await other.hold.remote({ r });
    this.ref = undefined;
    r.release();
    return true;
  }
  async read(): Promise<number> {
    const ray = await import('rayts');
    const a = await ray.get(this.ref!);
    return a.length + a[0]!;
  }
  drop(): boolean {
    this.ref?.release();
    this.ref = undefined;
    return true;
  }
}
const HolderActor = ray.remote(Holder);

describe('borrower protocol', () => {
  it('nested: a put value keeps the refs inside it alive after their handle is released, and frees them with it', async () => {
    const inner = ray.put(new Float64Array(50_000).fill(2));
    const outer = ray.put({ inner });
    const innerId = inner.id;
    inner.release();
    expect((await entry(innerId))?.references.containedIn).toBe(1);
    outer.release();
    expect(await entry(innerId)).toBeUndefined();
  });

  it('nested: a task reads a ref nested in its argument after the driver released that ref', async () => {
    const inner = ray.put(new Float64Array(50_000).fill(2));
    const outer = ray.put({ inner });
    inner.release();
    const readInner = ray.remote(async (o: { inner: ray.ObjectRef<Float64Array> }) => {
      const ray = await import('rayts');
      return (await ray.get(o.inner))[0]! + (await ray.get(o.inner)).length;
    });
    expect(await readInner.remote(outer)).toBe(50_002);
    outer.release();
  });

  it('an actor that stores a ref keeps the object alive after the owner drops every handle', async () => {
    const h = HolderActor.remote();
    const r = ray.put(new Float64Array(40_000).fill(3));
    const id = r.id;
    expect(await h.hold.remote({ r })).toBe(true);
    await until(async () => (await entry(id))?.references.borrowers === 1, 10_000, 'the actor to be counted as a borrower');
    r.release();
    obtainGc()();
    await until(async () => {
      const e = await entry(id);
      return e === undefined || e.references.local === 0;
    }, 10_000, 'the driver\'s release to reach the owner\'s counts');
    const e = await entry(id);
    expect(e?.references.local).toBe(0);
    expect(e?.references.borrowers).toBe(1);
    expect(await h.read.remote()).toBe(40_003);
    // The borrower releases: the owner frees the object.
    expect(await h.drop.remote()).toBe(true);
    await until(async () => (await entry(id)) === undefined, 10_000, 'the object to be freed once the borrower released it');
    ray.kill(h);
  });

  it('transitive: a borrower passes the ref to another process, then both the owner and the first borrower drop it', async () => {
    const a = HolderActor.remote();
    const b = HolderActor.remote();
    const r = ray.put(new Float64Array(30_000).fill(5));
    const id = r.id;
    await a.hold.remote({ r });
    r.release();
    expect(await a.passTo.remote(b)).toBe(true); // a registers b, then releases its own ref
    await until(async () => {
      const e = await entry(id);
      return e !== undefined && e.references.borrowers === 1 && e.references.local === 0;
    }, 10_000, 'only the second borrower to hold the object');
    expect(await b.read.remote()).toBe(30_005);
    ray.kill(a);
    ray.kill(b);
  });

  it('100 refs relayed through two actors are all freed once every process released them (no leaked registration)', async () => {
    const Relay = ray.remote(class Relay {
      held: ray.ObjectRef<{ i: number }>[] = [];
      keep(box: { refs: ray.ObjectRef<{ i: number }>[] }): number {
        this.held = box.refs;
        return this.held.length;
      }
      async pass(other: ray.ActorHandle<Relay>): Promise<boolean> {
        await other.keep.remote({ refs: this.held });
        for (const r of this.held) r.release();
        this.held = [];
        return true;
      }
      async sum(): Promise<number> {
        const ray = await import('rayts');
        return (await ray.get(this.held)).reduce((s, v) => s + v.i, 0);
      }
      clear(): boolean {
        for (const r of this.held) r.release();
        this.held = [];
        return true;
      }
    });
    const a = Relay.remote();
    const b = Relay.remote();
    const refs = Array.from({ length: 100 }, (_, i) => ray.put({ i }));
    const ids = new Set(refs.map((r) => r.id));
    expect(await a.keep.remote({ refs })).toBe(100);
    for (const r of refs) r.release();
    expect(await a.pass.remote(b)).toBe(true);
    expect(await b.sum.remote()).toBe(4950);
    const mid = (await ray.memorySummary()).objects.filter((o) => ids.has(o.id));
    expect(mid.length).toBe(100); // b still borrows every one
    expect(await b.clear.remote()).toBe(true);
    await until(async () => (await ray.memorySummary()).objects.every((o) => !ids.has(o.id)), 10_000,
      'every relayed object to be freed');
    ray.kill(a);
    ray.kill(b);
  });

  it('borrower death: the owner drops the counts of a borrower whose process died', async () => {
    const h = HolderActor.remote();
    const r = ray.put(new Float64Array(30_000));
    const id = r.id;
    await h.hold.remote({ r });
    await until(async () => (await entry(id))?.references.borrowers === 1, 10_000, 'the borrower registration');
    ray.kill(h);
    await until(async () => (await entry(id))?.references.borrowers === 0, 10_000, 'the dead borrower to be dropped');
    r.release();
    await until(async () => (await entry(id)) === undefined, 10_000, 'the object to be freed');
  });

  it('a ref returned inside a task result stays alive after the executing worker drops its own handle', async () => {
    const make = ray.remote(async (released: string) => {
      const ray = await import('rayts');
      const fs = await import('node:fs');
      const r = ray.put(new Float64Array(30_000).fill(7));
      setTimeout(() => { // the worker's handle goes away right after the return
        r.release();
        setImmediate(() => fs.writeFileSync(released, '')); // after the turn's frames are flushed
      }, 0);
      return { r };
    });
    const released = path.join(tempDir('ownership-return'), 'released');
    const box = await make.remote(released);
    await waitForFile(released);
    const a = await ray.get(box.r);
    expect(a.length).toBe(30_000);
    expect(a[0]).toBe(7);
  });
});

describe('owner death', () => {
  it('get of a borrowed ref whose owner died rejects with OwnerDiedError naming object and owner', async () => {
    const Maker = ray.remote(class Maker {
      async make(): Promise<{ r: ray.ObjectRef<number[]>; pid: number }> {
        const ray = await import('rayts');
        return { r: ray.put([1, 2, 3]), pid: process.pid };
      }
    });
    const m = Maker.remote();
    const { r, pid } = await m.make.remote();
    ray.kill(m);
    // The owner process is really gone (killed and reaped) before the get.
    await until(() => !alive(pid), 10_000, 'the actor process to exit');
    const t0 = Date.now();
    const err = await ray.get(r, { timeoutMs: 20_000 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ray.OwnerDiedError);
    expect((err as Error).message).toContain(r.id);
    expect((err as Error).message).toMatch(/w-[0-9a-f]+\.sock/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

describe('plasma copies of a dead owner', () => {
  // Ray: python/ray/tests/test_reference_counting_2.py::test_object_unpin (a dead owner's objects are unpinned).
  it('are freed by the node when the owner process is gone, though a borrower still holds a ref', async () => {
    const before = await storeUsed();
    const Maker = ray.remote(class Maker {
      async make(): Promise<{ put: ray.ObjectRef<Uint8Array>; ret: ray.ObjectRef<Uint8Array>; pid: number }> {
        const r = await import('rayts');
        const big = r.remote(() => new Uint8Array(8 * 1024 * 1024).fill(1));
        const ret = big.remote();  // a task's plasma return: this actor owns it
        await r.wait([ret]);
        return { put: r.put(new Uint8Array(8 * 1024 * 1024).fill(2)), ret, pid: process.pid };
      }
    });
    const m = Maker.remote();
    const { put, ret, pid } = await m.make.remote();
    expect(await storeUsed()).toBeGreaterThanOrEqual(before + 16 * 1024 * 1024);
    ray.kill(m);
    await until(() => !alive(pid), 10_000, 'the actor process to exit');
    // Both copies go although this driver still holds borrowed refs to them
    // (they would stay pinned for ever: no owner is left to delete them).
    await until(async () => (await storeUsed()) < before + 1024 * 1024, 10_000, 'the dead owner\'s copies to be freed');
    await expect(ray.get(put, { timeoutMs: 10_000 })).rejects.toBeInstanceOf(ray.OwnerDiedError);
    void ret;
  });
});

describe.skipIf(!hasTestHooks)(`lineage reconstruction (${NEEDS_TEST_HOOKS})`, () => {
  it('a chain of 50 tasks with large intermediates lost from the store mid-run still gives the right result', async () => {
    const N = 20_000; // 160 KB per intermediate: plasma
    const first = ray.remote((n: number) => new Float64Array(n).fill(1));
    const step = ray.remote(async (a: Float64Array) => {
      const out = new Float64Array(a.length);
      for (let j = 0; j < a.length; j++) out[j] = a[j]! + 1;
      await new Promise((r) => setTimeout(r, 10)); // keep the chain running while the driver deletes
      return out;
    });
    const before = (await ray.memorySummary()).lineage.reconstructions;
    const refs: ray.ObjectRef<Float64Array>[] = [first.remote(N)];
    for (let i = 1; i < 50; i++) refs.push(step.remote(refs[i - 1]!));
    await ray.wait(refs.slice(0, 25), { numReturns: 25, timeoutMs: 60_000 });
    expect((await entry(refs[10]!.id))?.lineage).toBe(true);
    for (let i = 0; i < 25; i++) ray._internal.deleteFromStore(refs[i]!);
    const last = await ray.get(refs[49]!, { timeoutMs: 120_000 });
    expect(last.length).toBe(N);
    expect(last[0]).toBe(50);
    expect(last[N - 1]).toBe(50);
    // A task whose argument is lost: its worker finds the copy missing and
    // asks the owner, which recomputes it (and the lost objects it needs).
    const seventh = await step.remote(refs[5]!);
    expect(seventh[0]).toBe(7);
    // The owner's own get of a lost intermediate recomputes it too.
    const mid = await ray.get(refs[10]!, { timeoutMs: 60_000 });
    expect(mid[0]).toBe(11);
    expect((await ray.memorySummary()).lineage.reconstructions - before).toBeGreaterThanOrEqual(11);
  }, 180_000);

  it('a borrowed object owned by a worker is recomputed by that worker when its copy is lost', async () => {
    const outer = ray.remote(async () => {
      const ray = await import('rayts');
      const make = ray.remote((n: number) => new Float64Array(n).fill(6));
      const r = make.remote(30_000);
      await ray.wait([r], { timeoutMs: 30_000 });
      return { r }; // the worker owns r; the driver becomes its borrower
    });
    const { r } = await outer.remote();
    expect((await ray.get(r))[0]).toBe(6);
    ray._internal.deleteFromStore(r);
    const again = await ray.get(r, { timeoutMs: 60_000 });
    expect(again.length).toBe(30_000);
    expect(again[0]).toBe(6);
  });

  it('a lost ray.put object is not recomputable: ObjectLostError naming the object', async () => {
    const r = ray.put(new Float64Array(50_000));
    ray._internal.deleteFromStore(r);
    const err = await ray.get(r, { timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ray.ObjectLostError);
    expect((err as Error).message).toContain(r.id);
    expect((err as Error).message).toContain('ray.put');
  });

  it('a task reading a lost ray.put argument fails with ObjectLostError as its cause', async () => {
    const r = ray.put(new Float64Array(50_000));
    ray._internal.deleteFromStore(r);
    const len = ray.remote((a: Float64Array) => a.length);
    const err = await len.remote(r).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect((err as ray.RayTaskError).cause?.name).toBe('ObjectLostError');
    expect((err as ray.RayTaskError).cause?.message).toContain('ray.put');
  });

  it('lineageMaxBytes is validated', async () => {
    await expect(ray.init({ lineageMaxBytes: -1 })).rejects.toThrow(RangeError);
    await expect(ray.init({ lineageMaxBytes: -1 })).rejects.toThrow(/lineageMaxBytes/);
  });
});

describe('memory summary', () => {
  it('lists owned objects with size, location and reference kinds', async () => {
    const small = ray.put({ a: 1 });
    const big = ray.put(new Float64Array(50_000));
    const s = await ray.memorySummary();
    const es = s.objects.find((o) => o.id === small.id)!;
    const eb = s.objects.find((o) => o.id === big.id)!;
    expect(es).toMatchObject({ ownedHere: true, status: 'ready', location: 'memory', lineage: false });
    expect(es.references.local).toBe(1);
    expect(eb.location).toBe('plasma');
    expect(eb.size).toBeGreaterThanOrEqual(400_000);
    expect(s.totals.plasmaBytes).toBeGreaterThanOrEqual(400_000);
    expect(s.lineage.maxBytes).toBe(64 * 1024 * 1024);
    expect(ray.formatMemorySummary(s)).toContain(big.id);
    small.release();
    big.release();
  });

  it('rayts memory reads the summaries of every process of a running program (driver and workers)', async () => {
    const big = ray.put(new Float64Array(50_000));
    const warm = ray.remote(() => 1);
    await warm.remote(); // a worker is up
    const base = path.join(os.tmpdir(), `rayts-${process.getuid!()}`);
    const session = fs.readdirSync(base).find((n) => n.startsWith(`session_${process.pid}_`));
    expect(session).toBeDefined();
    const cli = path.join(__dirname, '..', '..', 'dist', 'esm', 'cli', 'cli.js');
    const out = spawnSync(process.execPath, [cli, 'memory', '--json', '--session', path.join(base, session!)],
      { encoding: 'utf8', timeout: 60_000 });
    expect(out.status, out.stderr).toBe(0);
    const [s] = JSON.parse(out.stdout) as { processes: ray.MemorySummary[] }[];
    const driver = s!.processes[0]!;
    expect(driver.isDriver).toBe(true);
    expect(driver.pid).toBe(process.pid);
    expect(driver.objects.find((o) => o.id === big.id)?.location).toBe('plasma');
    expect(s!.processes.length).toBeGreaterThanOrEqual(2);
    expect(s!.processes.slice(1).every((p) => !p.isDriver)).toBe(true);
    const text = spawnSync(process.execPath, [cli, 'memory', '--session', path.join(base, session!)], { encoding: 'utf8', timeout: 60_000 });
    expect(text.stdout).toContain(big.id);
    big.release();
  });

  it('rayts memory says plainly when there is nothing to attach to', () => {
    const cli = path.join(__dirname, '..', '..', 'dist', 'esm', 'cli', 'cli.js');
    const out = spawnSync(process.execPath, [cli, 'memory', '--address', '127.0.0.1:1', '--timeout-ms', '2000'],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, RAYTS_AUTH_TOKEN: 'any' } });
    expect(out.status).toBe(2);
    expect(out.stderr).toContain('cannot reach the cluster at 127.0.0.1:1');
  });
});
