// Owner death: when the process that owns an object (an actor, or the
// worker of a task that put it and returned a nested ref) is SIGKILLed, a
// borrower's get rejects with OwnerDiedError within a bound, never hangs.
// Borrowers: the driver, and a task holding the ref while the owner dies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { report } from './helpers.js';
import { waitForExit } from '../support/wait.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 128 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

const GET_BOUND_MS = 20_000; // the get's own timeout: hitting it is GetTimeoutError, a failure
const DETECT_BOUND_MS = 15_000; // generous: detection is a socket close, normally milliseconds

/** SIGKILLs `pid` and waits (bounded) until it is gone. */
async function killAndReap(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid, 10_000);
}

async function getError(r: ray.ObjectRef<unknown>): Promise<{ err: unknown; ms: number }> {
  const t0 = Date.now();
  const err = await ray.get(r, { timeoutMs: GET_BOUND_MS }).then(() => undefined, (e: unknown) => e);
  return { err, ms: Date.now() - t0 };
}

type Box = { small: ray.ObjectRef<number[]>; big: ray.ObjectRef<Float64Array>; pid: number };

const figures: Record<string, number> = {};

/** An actor a task waits at: hold() returns once open() was called; held() says whether hold() was reached. */
class GateImpl {
  private readonly waiters: Array<() => void> = [];
  private isOpen = false;
  private reached = false;
  held(): boolean {
    return this.reached;
  }
  arrive(): boolean {
    this.reached = true;
    return true;
  }
  open(): boolean {
    this.isOpen = true;
    for (const w of this.waiters.splice(0)) w();
    return true;
  }
  async hold(): Promise<boolean> {
    this.reached = true;
    if (!this.isOpen) await new Promise<void>((r) => this.waiters.push(r));
    return true;
  }
}

describe('the owner is SIGKILLed', () => {
  it('an actor that put the objects: the driver gets OwnerDiedError (inline and plasma objects)', async () => {
    const Maker = ray.remote(class Maker {
      async make(): Promise<Box> {
        const ray = await import('rayts');
        // A small value (the owner's memory store) and a large one (plasma).
        return { small: ray.put([1, 2, 3]), big: ray.put(new Float64Array(50_000).fill(3)), pid: process.pid };
      }
    });
    const m = Maker.remote();
    const { small, big, pid } = await m.make.remote();
    expect(pid).not.toBe(process.pid);
    await killAndReap(pid);
    for (const [name, r] of [['small', small], ['big', big]] as const) {
      const { err, ms } = await getError(r);
      expect(err, `${name}: ${String(err)}`).toBeInstanceOf(ray.OwnerDiedError);
      expect((err as Error).message).toContain(r.id);
      expect(ms).toBeLessThan(DETECT_BOUND_MS);
      figures[`actorOwner_${name}_ms`] = ms;
    }
  });

  it("a task's worker that put the objects and returned nested refs: the driver gets OwnerDiedError", async () => {
    const make = ray.remote(async (): Promise<Box> => {
      const ray = await import('rayts');
      return { small: ray.put([4, 5, 6]), big: ray.put(new Float64Array(50_000).fill(4)), pid: process.pid };
    });
    const { small, big, pid } = await make.remote();
    // The owner is alive and serves the values before it dies.
    expect(await ray.get(small, { timeoutMs: GET_BOUND_MS })).toEqual([4, 5, 6]);
    await killAndReap(pid);
    // `small` was fetched already (the driver keeps its copy); `big` was not.
    const { err, ms } = await getError(big);
    expect(err, String(err)).toBeInstanceOf(ray.OwnerDiedError);
    expect((err as Error).message).toContain(big.id);
    expect(ms).toBeLessThan(DETECT_BOUND_MS);
    figures.taskOwner_big_ms = ms;
  });

  it('a nested borrower (a task holding the ref while the owner dies) sees OwnerDiedError too', async () => {
    const Maker = ray.remote(class Maker {
      async make(): Promise<Box> {
        const ray = await import('rayts');
        return { small: ray.put([7, 8, 9]), big: ray.put(new Float64Array(50_000).fill(7)), pid: process.pid };
      }
    });
    const Gate = ray.remote({ maxConcurrency: 4 }, GateImpl);
    const m = Maker.remote();
    const gate = Gate.remote();
    const { small, big, pid } = await m.make.remote();
    // The borrower receives the refs nested (not resolved), tells the gate
    // it holds them and waits there until the owner is dead, then gets both.
    const borrower = ray.remote(async (box: { small: ray.ObjectRef<number[]>; big: ray.ObjectRef<Float64Array> }, g: ray.ActorHandle<GateImpl>) => {
      const ray = await import('rayts');
      await g.hold.remote();
      const out: Array<{ name: string; ownerDied: boolean; hasId: boolean; ms: number }> = [];
      for (const r of [box.small, box.big] as ray.ObjectRef<unknown>[]) {
        const t0 = Date.now();
        const e = await ray.get(r, { timeoutMs: 20_000 }).then(() => undefined, (x: unknown) => x);
        out.push({
          name: e instanceof Error ? e.name : String(e),
          ownerDied: e instanceof ray.OwnerDiedError,
          hasId: e instanceof Error && e.message.includes(r.id),
          ms: Date.now() - t0,
        });
      }
      return out;
    });
    const res = borrower.remote({ small, big }, gate);
    const end = Date.now() + 30_000;
    while (!(await gate.held.remote())) {
      if (Date.now() > end) throw new Error('the borrower task did not start within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    // The owner dies while the borrower task holds the refs (the driver drops
    // its own handles first: the task is the one borrowing).
    small.release();
    big.release();
    await killAndReap(pid);
    await gate.open.remote();
    const out = await ray.get(res, { timeoutMs: 60_000 });
    expect(out.map((o) => o.name)).toEqual(['OwnerDiedError', 'OwnerDiedError']);
    for (const o of out) {
      expect(o.ownerDied).toBe(true);
      expect(o.hasId).toBe(true);
      expect(o.ms).toBeLessThan(DETECT_BOUND_MS);
    }
    figures.nestedBorrower_small_ms = out[0]!.ms;
    figures.nestedBorrower_big_ms = out[1]!.ms;
  });

  it('gets already waiting when the owner dies (the object is still being computed) reject, in the driver and in a borrower task', async () => {
    // The owner actor submits a slow task (numCpus 0: it takes no slot from
    // the borrower) and returns its ref nested: the value is pending at the
    // owner, so every get is parked waiting on the owner when it dies.
    const Maker = ray.remote(class Maker {
      async makePending(): Promise<{ r: ray.ObjectRef<number>; pid: number }> {
        const ray = await import('rayts');
        const slow = ray.remote({ numCpus: 0 }, async () => {
          await new Promise((res) => setTimeout(res, 60_000));
          return 1;
        });
        return { r: slow.remote(), pid: process.pid };
      }
    });
    const m = Maker.remote();
    const { r, pid } = await m.makePending.remote();
    const gate = ray.remote({ maxConcurrency: 4 }, GateImpl).remote();
    const inTask = ray.remote(async (box: { r: ray.ObjectRef<number> }, g: ray.ActorHandle<GateImpl>) => {
      const ray = await import('rayts');
      const t0 = Date.now();
      // Issue the get first, then report arrival: the get is parked before the kill.
      const p = ray.get(box.r, { timeoutMs: 20_000 }).then(() => undefined, (x: unknown) => x);
      await g.arrive.remote();
      const e = await p;
      return { name: e instanceof Error ? e.name : String(e), ownerDied: e instanceof ray.OwnerDiedError, startedAt: t0, ms: Date.now() - t0 };
    });
    const taskRes = inTask.remote({ r }, gate);
    const driverGet = getError(r);
    const until = Date.now() + 30_000;
    while (!(await gate.held.remote())) {
      if (Date.now() > until) throw new Error('the borrower task did not start within 30 s');
      await new Promise((res) => setTimeout(res, 20));
    }
    // Both gets are parked: neither settles while the owner lives.
    const [ready] = await ray.wait([r], { numReturns: 1, timeoutMs: 500 });
    expect(ready).toHaveLength(0);
    const killedAt = Date.now();
    await killAndReap(pid);
    const { err } = await driverGet;
    const driverMs = Date.now() - killedAt;
    expect(err, String(err)).toBeInstanceOf(ray.OwnerDiedError);
    expect((err as Error).message).toContain(r.id);
    expect(driverMs).toBeLessThan(DETECT_BOUND_MS);
    const t = await ray.get(taskRes, { timeoutMs: 60_000 });
    expect(t.name).toBe('OwnerDiedError');
    expect(t.ownerDied).toBe(true);
    expect(t.startedAt).toBeLessThan(killedAt); // its get was waiting when the owner died
    expect(t.startedAt + t.ms - killedAt).toBeLessThan(DETECT_BOUND_MS);
    figures.inFlight_driver_ms_after_kill = driverMs;
    figures.inFlight_task_ms_after_kill = t.startedAt + t.ms - killedAt;
    report('owner_death', figures);
  });
});
