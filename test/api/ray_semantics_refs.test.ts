// Refs and actor handles a finished task held are released when the task
// ends (unless its code kept them), as Ray's reference counting does, not
// when the worker's garbage collector happens to run (8 s idle, over 20 s
// under load before). Each case names the Ray test it follows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';
import { obtainGc } from '../support/gc.js';
import { eventually, sleep, waitForExit } from '../support/wait.js';

const MiB = 1 << 20;

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 128 * MiB }));
afterAll(() => ray.shutdown());

/** Well under a worker's idle GC (about 8 s): the release comes from the task's end. */
const RELEASE_BOUND_MS = 3_000;

async function inStore(id: string): Promise<boolean> {
  return (await ray.storeStats()).objects.some((o) => o.id === id);
}

describe('refs a finished task held', () => {
  // Ray: python/ray/tests/test_reference_counting_2.py::test_recursively_nest_ids (the tasks borrow
  // the array through nested refs; once they finish, it is freed).
  it('an object borrowed through nested refs is freed soon after the tasks end', async () => {
    const array = ray.put(new Uint8Array(20 * MiB).fill(9));
    const id = array.id;
    const nested = ray.put<[ray.ObjectRef<Uint8Array>]>([array]);
    const leaf = ray.remote(async (box: [ray.ObjectRef<[ray.ObjectRef<Uint8Array>]>]) => {
      const ray = await import('rayts');
      const [inner] = await ray.get(box[0]);
      return (await ray.get(inner))[5];
    });
    expect(await leaf.remote([nested])).toBe(9);
    array.release();
    nested.release();
    expect(await eventually(async () => !(await inStore(id)), RELEASE_BOUND_MS)).toBe(true);
  });

  it('a ref the task stored in actor state stays usable; it goes once the actor drops it', async () => {
    const Keeper = ray.remote(class Keeper {
      kept: ray.ObjectRef<Uint8Array> | undefined;
      keep(box: [ray.ObjectRef<Uint8Array>]) { this.kept = box[0]; return true; }
      async read() { return (await this.kept!)[3]; }
      drop() { this.kept = undefined; return true; }
    });
    const k = Keeper.remote();
    const obj = ray.put(new Uint8Array(8 * MiB).fill(4));
    const id = obj.id;
    expect(await k.keep.remote([obj])).toBe(true);
    obj.release();
    await sleep(600); // pacing: past the task-end collection window (TASK_SWEEP_GAP_MS)
    expect(await inStore(id)).toBe(true);
    expect(await k.read.remote()).toBe(4);
    expect(await k.drop.remote()).toBe(true);
    expect(await eventually(async () => !(await inStore(id)), RELEASE_BOUND_MS)).toBe(true);
    ray.kill(k);
  });

  // Ray: an actor dies with its last handle (python/ray/tests/test_actor.py::test_actor_deletion,
  // ::test_actor_deletion_with_gpus), here when the last
  // one was inside a finished task.
  it('an actor whose last handle was inside a finished task ends soon after the task', async () => {
    const gc = obtainGc();
    const A = ray.remote(class A { pid() { return process.pid; } });
    const useHandle = ray.remote(async (box: [ray.ActorHandle<{ pid(): number }>]) => box[0].pid.remote());
    const pid = await (async () => {
      const a = A.remote();
      const p = await a.pid.remote();
      expect(await useHandle.remote([a])).toBe(p);
      return p;
    })();
    gc(); // the driver's handle is garbage now; the task's copy is what remains
    await waitForExit(pid, RELEASE_BOUND_MS + 2_000);
  });
});
