// Lifecycle: isInitialized, .remote() before init, get after shutdown,
// shutdown twice, re-init, and the time of init() + first task.
// Tests in this file run in order and depend on it (one process per file).
import { afterAll, describe, expect, it } from 'vitest';
import * as ray from 'rayts';

const OPTS = { numCpus: 2, objectStoreMemory: 256 * 1024 * 1024 };

afterAll(() => ray.shutdown());

describe('before init', () => {
  it('isInitialized() is false', () => {
    expect(ray.isInitialized()).toBe(false);
  });

  it('.remote() before init throws a clear error naming init', () => {
    const f = ray.remote((x: number) => x + 1);
    let err: Error | undefined;
    try {
      f.remote(1);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/init/);
  });

  it('put and get before init throw clear errors naming init', async () => {
    expect(() => ray.put(1)).toThrow(/init/);
    expect(() => ray.getRuntimeContext()).toThrow(/init/);
    await expect(ray.nodes()).rejects.toThrow(/init/);
  });

  it('shutdown() before init is a no-op', async () => {
    await expect(ray.shutdown()).resolves.toBeUndefined();
    expect(ray.isInitialized()).toBe(false);
  });
});

describe('init and shutdown', () => {
  it('init() + first task result: under 2 s (reported)', async () => {
    const t0 = performance.now();
    await ray.init(OPTS);
    const first = await ray.remote((x: number) => x * 2).remote(21);
    const ms = performance.now() - t0;
    console.log(`init() + first task result: ${ms.toFixed(1)} ms`);
    expect(first).toBe(42);
    expect(ms).toBeLessThan(2000);
  });

  it('isInitialized() is true after init', () => {
    expect(ray.isInitialized()).toBe(true);
  });

  it('a second init() while initialized throws', async () => {
    await expect(ray.init(OPTS)).rejects.toThrow(/already initialized|shutdown/);
    expect(ray.isInitialized()).toBe(true);
  });

  it('get after shutdown throws a clear error; isInitialized() false', async () => {
    const ref = ray.put({ v: 1 });
    const taskRef = ray.remote(() => 'x').remote();
    expect(await taskRef).toBe('x');
    await ray.shutdown();
    expect(ray.isInitialized()).toBe(false);
    const err = await ray.get(ref).catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/shut ?down|not initialized|init/i);
    const err2 = await ray.get(taskRef).catch((e: unknown) => e) as Error;
    expect(err2).toBeInstanceOf(Error);
    expect(err2.message).toMatch(/shut ?down|not initialized|init/i);
    // await ref as well
    await expect(Promise.resolve(ref)).rejects.toThrow(/shut ?down|not initialized|init/i);
  });

  it('.remote() after shutdown throws naming init', () => {
    const f = ray.remote(() => 1);
    expect(() => f.remote()).toThrow(/init/);
  });

  it('shutdown twice is fine', async () => {
    await expect(ray.shutdown()).resolves.toBeUndefined();
    await expect(ray.shutdown()).resolves.toBeUndefined();
    expect(ray.isInitialized()).toBe(false);
  });

  it('init -> shutdown -> init again works; remote functions made earlier still work', async () => {
    const double = ray.remote((x: number) => x * 2);
    await ray.init(OPTS);
    expect(ray.isInitialized()).toBe(true);
    expect(await double.remote(5)).toBe(10);
    const ctx1 = ray.getRuntimeContext();
    await ray.shutdown();
    expect(ray.isInitialized()).toBe(false);
    await ray.init(OPTS);
    expect(ray.isInitialized()).toBe(true);
    expect(await double.remote(6)).toBe(12);
    expect(await ray.get(ray.put('again'))).toBe('again');
    expect((await ray.clusterResources()).CPU).toBe(2);
    expect(ray.getRuntimeContext().nodeId).not.toBe(ctx1.nodeId);
  });

  it('a get pending across shutdown rejects instead of hanging', async () => {
    const slow = ray.remote(async () => {
      await new Promise((r) => setTimeout(r, 30_000));
      return 'late';
    }).remote();
    const pending = ray.get(slow).catch((e: unknown) => e);
    await ray.shutdown();
    const res = await Promise.race([pending, new Promise((r) => setTimeout(() => r('still pending'), 5000))]);
    expect(res).toBeInstanceOf(Error);
  });

  it('concurrent init() calls share one cluster', async () => {
    await Promise.all([ray.init(OPTS), ray.init(OPTS)]).catch(() => undefined);
    expect(ray.isInitialized()).toBe(true);
    expect(await ray.remote(() => 'one').remote()).toBe('one');
    await ray.shutdown();
    expect(ray.isInitialized()).toBe(false);
  });

  it('invalid init options are rejected naming the option', async () => {
    await expect(ray.init({ numCpus: -1 })).rejects.toThrow(/numCpus/);
    await expect(ray.init({ numCpus: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(ray.init({ objectStoreMemory: 10 })).rejects.toThrow(/objectStoreMemory/);
    await expect(ray.init({ bogus: 1 } as unknown as Parameters<typeof ray.init>[0])).rejects.toBeInstanceOf(TypeError);
    expect(ray.isInitialized()).toBe(false);
  });
});
