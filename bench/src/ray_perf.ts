// The task, object and actor rows of Ray's `ray microbenchmark`
// (python/ray/_private/ray_perf.py), in Ray's order and with Ray's shapes:
// the same values, batch sizes and multipliers (what counts as one op).
//
// Python -> TypeScript:
//   small_value() returns b"ok"            -> returns 'ok'
//   np.zeros(k, dtype=np.int64)            -> new BigInt64Array(k)   (8k bytes of zeros)
//   ray.get / ray.wait inside a task       -> `await import('rayts')` in the task
//   sync actor method calling ray.get      -> async method awaiting ray.get (the
//                                             Client actor gets maxConcurrency: 1,
//                                             so it still runs one call at a time)
//   multiprocessing.cpu_count() // 2       -> max(1, os.availableParallelism() / 2)
//
// "multi client tasks async" uses m = 4 `Actor` instances (numCpus: 0) as
// clients, each submitting 10,000 small_value tasks, as Ray does. The multi
// client put rows are tasks in Ray too.
import * as os from 'node:os';
import type * as RayApi from 'rayts';

export type Unit = 'ops/s' | 'GB/s';

/** A row: `setup` runs once (untimed) and returns the timed body. */
export interface BenchRow {
  name: string;
  unit: Unit;
  multiplier: number;
  /**
   * 'rayts' rows need the embedded local cluster; 'piscina' rows the piscina
   * pool; 'cluster' rows a 2-node cluster on this machine (cluster_rows.ts).
   */
  kind: 'rayts' | 'piscina' | 'cluster';
  note?: string;
  setup(ctx: BenchContext): Promise<() => unknown> | (() => unknown);
  /** Frees what setup made (untimed). */
  teardown?(): Promise<void> | void;
}

export interface BenchContext {
  ray: typeof RayApi;
  /**
   * --release-refs: the put rows call ref.release() on each put's ref.
   * Python drops a ref the moment it goes out of scope (refcounting); in JS
   * an unreferenced ObjectRef waits for garbage collection. Off by default
   * (Ray's shape; the runtime is meant to keep pace through GC).
   */
  releaseRefs: boolean;
  /** The 2-node cluster's nodes (only for 'cluster' rows). */
  cluster?: { headNodeId: string; otherNodeId: string };
  /** piscina pool running the no-op task (only for 'piscina' rows). */
  piscina(): Promise<{ run(task: unknown): Promise<unknown> }>;
}

// The remote functions of ray_perf.py. Each is self-contained: a task that
// needs the API imports it (`'rayts' as string` keeps tsc from resolving the
// package by its own name; the emitted code is a plain `import('rayts')`).
type Api = typeof RayApi;

function remoteFunctions(ray: Api) {
  // @ray.remote def small_value(): return b"ok"
  const smallValue = ray.remote(() => 'ok');

  // @ray.remote def do_put_small(): for _ in range(100): ray.put(0)
  const doPutSmall = ray.remote(async () => {
    const r = (await import('rayts' as string)) as Api;
    for (let i = 0; i < 100; i++) r.put(0);
  });

  // @ray.remote def do_put(): for _ in range(10): ray.put(np.zeros(10 * 1024 * 1024, dtype=np.int64))
  const doPut = ray.remote(async () => {
    const r = (await import('rayts' as string)) as Api;
    for (let i = 0; i < 10; i++) r.put(new BigInt64Array(10 * 1024 * 1024));
  });

  // @ray.remote def create_object_containing_ref(): return [ray.put(1) for _ in range(10000)]
  const createObjectContainingRef = ray.remote(async () => {
    const r = (await import('rayts' as string)) as Api;
    const refs = [];
    for (let i = 0; i < 10000; i++) refs.push(r.put(1));
    return refs;
  });

  // --release-refs variants: the same bodies, dropping each put's ref at once.
  const doPutSmallRelease = ray.remote(async () => {
    const r = (await import('rayts' as string)) as Api;
    for (let i = 0; i < 100; i++) r.put(0).release();
  });
  const doPutRelease = ray.remote(async () => {
    const r = (await import('rayts' as string)) as Api;
    for (let i = 0; i < 10; i++) r.put(new BigInt64Array(10 * 1024 * 1024)).release();
  });

  return { smallValue, doPutSmall, doPut, createObjectContainingRef, doPutSmallRelease, doPutRelease };
}

/** What a Client / work task sees of an Actor or AsyncActor handle it was given. */
interface SmallValueServer {
  smallValue: { remote(): PromiseLike<string> };
  smallValueArg: { remote(x: unknown): PromiseLike<string> };
}

// The actor classes of ray_perf.py.
function actorClasses(ray: Api) {
  // @ray.remote(num_cpus=0) class Actor
  const Actor = ray.remote({ numCpus: 0 }, class Actor {
    smallValue(): string {
      return 'ok';
    }
    smallValueArg(_x: unknown): string {
      return 'ok';
    }
  });

  // @ray.remote class AsyncActor: async methods (Ray's default max_concurrency
  // for an async actor is 1000; rayts's default for a class with an async
  // method is 1000 too, so neither passes it).
  const AsyncActor = ray.remote(class AsyncActor {
    async smallValue(): Promise<string> {
      return 'ok';
    }
    async smallValueWithArg(_x: unknown): Promise<string> {
      return 'ok';
    }
  });

  // @ray.remote(num_cpus=0) class Client: holds handles to servers. Ray's
  // methods are sync (the actor runs one call at a time, ray.get blocks);
  // here they await ray.get, and maxConcurrency: 1 keeps one call at a time.
  const Client = ray.remote({ numCpus: 0, maxConcurrency: 1 }, class Client {
    servers: SmallValueServer[];
    constructor(servers: SmallValueServer | SmallValueServer[]) {
      this.servers = Array.isArray(servers) ? servers : [servers];
    }
    async smallValueBatch(n: number): Promise<void> {
      const r = (await import('rayts' as string)) as Api;
      const results = [];
      for (const s of this.servers) for (let i = 0; i < n; i++) results.push(s.smallValue.remote());
      await r.get(results as never);
    }
    async smallValueBatchArg(n: number): Promise<void> {
      const r = (await import('rayts' as string)) as Api;
      const x = r.put(0);
      const results = [];
      for (const s of this.servers) for (let i = 0; i < n; i++) results.push(s.smallValueArg.remote(x));
      await r.get(results as never);
    }
  });

  // multi client tasks async: @ray.remote(num_cpus=0) class Actor with
  // small_value_batch(n): submits n small_value tasks and gets them.
  const TaskClient = ray.remote({ numCpus: 0, maxConcurrency: 1 }, class TaskClient {
    async smallValueBatch(n: number): Promise<number> {
      const r = (await import('rayts' as string)) as Api;
      const smallValue = r.remote(() => 'ok');
      const submitted = [];
      for (let i = 0; i < n; i++) submitted.push(smallValue.remote());
      await r.get(submitted);
      return 0;
    }
  });

  // @ray.remote def work(actors): ray.get([actors[i % n_cpu].small_value.remote() for i in range(n)])
  // (also async_actor_work: the same body over AsyncActor handles). Ray's
  // closure captures n and n_cpu; here they are arguments.
  const work = ray.remote(async (actors: SmallValueServer[], n: number, nCpu: number) => {
    const r = (await import('rayts' as string)) as Api;
    const submitted = [];
    for (let i = 0; i < n; i++) submitted.push(actors[i % nCpu]!.smallValue.remote());
    await r.get(submitted as never);
  });

  // Untimed check that a handle passed to a task can be called there.
  const probeHandle = ray.remote(async (actors: SmallValueServer[]) => {
    const r = (await import('rayts' as string)) as Api;
    return r.get(actors[0]!.smallValue.remote() as never);
  });

  return { Actor, AsyncActor, Client, TaskClient, work, probeHandle };
}

type Actors = ReturnType<typeof actorClasses>;
const actorCache = new WeakMap<object, Actors>();
function actors(ray: Api): Actors {
  let a = actorCache.get(ray);
  if (!a) {
    a = actorClasses(ray);
    actorCache.set(ray, a);
  }
  return a;
}

const HANDLE_REASON = 'needs actor handles passed to other processes (not implemented yet)';
const HANDLE_PROBE_MS = 30_000;

/**
 * Rows whose callers are actors or tasks holding handles: check once
 * (untimed) that a handle passed to a task works; if not, the row is skipped
 * with HANDLE_REASON instead of being run in another shape.
 */
async function requireHandlePassing(ray: Api, server: RayApi.ActorHandle<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const probe = actors(ray).probeHandle.remote([server] as never);
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${HANDLE_PROBE_MS} ms`)), HANDLE_PROBE_MS);
    });
    const v = await Promise.race([ray.get(probe), late]);
    if (v !== 'ok') throw new Error(`probe returned ${JSON.stringify(v)}`);
  } catch (e) {
    throw new Error(`${HANDLE_REASON} [probe: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}]`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** Actors a row made; its teardown kills them (untimed; Ray leaves them alive). */
function actorScope(ray: Api) {
  const made: RayApi.ActorHandle<unknown>[] = [];
  return {
    add<H>(h: H): H {
      made.push(h as RayApi.ActorHandle<unknown>);
      return h;
    },
    kill(): void {
      for (const h of made.splice(0)) {
        try {
          ray.kill(h);
        } catch {
          // the cluster was already restarted after a skipped row
        }
      }
    },
  };
}

type Fns = ReturnType<typeof remoteFunctions>;
const fnCache = new WeakMap<object, Fns>();
function fns(ray: Api): Fns {
  // One set per API object; the runtime is looked up at submit time, so the
  // set survives a shutdown + init (the harness restarts after a failed row).
  let f = fnCache.get(ray);
  if (!f) {
    f = remoteFunctions(ray);
    fnCache.set(ray, f);
  }
  return f;
}

const MULTI_CLIENTS = 4; // ray_perf.py: m = 4
const MULTI_CLIENT_TASKS = 10000; // ray_perf.py: n = 10000
const ACTOR_BATCH = 1000; // the 1:1 async rows: 1000 calls then get
const ONE_TO_N_CALLS = 5000; // ray_perf.py: n = 5000 (1:n and n:n async rows)
const N_TO_N_ARG_CALLS = 1000; // ray_perf.py: n = 1000 (n:n with arg)
const CONCURRENT_MAX = 16; // ray_perf.py: Actor.options(max_concurrency=16)
/** ray_perf.py: n_cpu = multiprocessing.cpu_count() // 2, at least 1. */
const nCpu = (): number => Math.max(1, Math.floor(os.availableParallelism() / 2));

export function rayPerfRows(): BenchRow[] {
  return [
    {
      name: 'single client get calls (Plasma Store)',
      unit: 'ops/s', multiplier: 1, kind: 'rayts',
      setup({ ray }) {
        const value = ray.put(0);
        return () => ray.get(value);
      },
    },
    {
      name: 'single client put calls (Plasma Store)',
      unit: 'ops/s', multiplier: 1, kind: 'rayts',
      setup({ ray, releaseRefs }) {
        if (releaseRefs) return () => ray.put(0).release();
        return () => {
          ray.put(0);
        };
      },
    },
    {
      name: 'multi client put calls (Plasma Store)',
      unit: 'ops/s', multiplier: 1000, kind: 'rayts',
      setup({ ray, releaseRefs }) {
        const f = fns(ray);
        const doPutSmall = releaseRefs ? f.doPutSmallRelease : f.doPutSmall;
        return async () => {
          const refs = [];
          for (let i = 0; i < 10; i++) refs.push(doPutSmall.remote());
          await ray.get(refs);
        };
      },
    },
    {
      // arr = np.zeros(100 * 1024 * 1024, dtype=np.int64): 800 MiB; multiplier 8 * 0.1
      name: 'single client put gigabytes',
      unit: 'GB/s', multiplier: 8 * 0.1, kind: 'rayts',
      setup({ ray, releaseRefs }) {
        const arr = new BigInt64Array(100 * 1024 * 1024);
        if (releaseRefs) return () => ray.put(arr).release();
        return () => {
          ray.put(arr);
        };
      },
    },
    {
      name: 'single client tasks and get batch',
      unit: 'ops/s', multiplier: 1, kind: 'rayts',
      setup({ ray }) {
        const { smallValue } = fns(ray);
        return async () => {
          const submitted = [];
          for (let i = 0; i < 1000; i++) submitted.push(smallValue.remote());
          await ray.get(submitted);
          return 0;
        };
      },
    },
    {
      name: 'multi client put gigabytes',
      unit: 'GB/s', multiplier: 10 * 8 * 0.1, kind: 'rayts',
      setup({ ray, releaseRefs }) {
        const f = fns(ray);
        const doPut = releaseRefs ? f.doPutRelease : f.doPut;
        return async () => {
          const refs = [];
          for (let i = 0; i < 10; i++) refs.push(doPut.remote());
          await ray.get(refs);
        };
      },
    },
    {
      name: 'single client get object containing 10k refs',
      unit: 'ops/s', multiplier: 1, kind: 'rayts',
      setup({ ray }) {
        const objContainingRef = fns(ray).createObjectContainingRef.remote();
        return () => ray.get(objContainingRef);
      },
    },
    {
      name: 'single client wait 1k refs',
      unit: 'ops/s', multiplier: 1, kind: 'rayts',
      setup({ ray }) {
        const { smallValue } = fns(ray);
        return async () => {
          const numObjs = 1000;
          let notReady = [];
          for (let i = 0; i < numObjs; i++) notReady.push(smallValue.remote());
          // ray_perf.py passes fetch_local=True on the first wait only.
          let fetchLocal = true;
          for (let i = 0; i < numObjs; i++) {
            [, notReady] = await ray.wait(notReady, { fetchLocal });
            if (fetchLocal) fetchLocal = false;
          }
        };
      },
    },
    {
      name: 'single client tasks sync',
      unit: 'ops/s', multiplier: 1, kind: 'rayts',
      setup({ ray }) {
        const { smallValue } = fns(ray);
        return () => ray.get(smallValue.remote());
      },
    },
    {
      name: 'piscina tasks sync',
      unit: 'ops/s', multiplier: 1, kind: 'piscina',
      note: 'piscina 5, default pool, no-op task returning \'ok\'',
      async setup({ piscina }) {
        const pool = await piscina();
        return () => pool.run(null);
      },
    },
    {
      name: 'single client tasks async',
      unit: 'ops/s', multiplier: 1000, kind: 'rayts',
      setup({ ray }) {
        const { smallValue } = fns(ray);
        return () => {
          const submitted = [];
          for (let i = 0; i < 1000; i++) submitted.push(smallValue.remote());
          return ray.get(submitted);
        };
      },
    },
    {
      name: 'piscina tasks async',
      unit: 'ops/s', multiplier: 1000, kind: 'piscina',
      note: 'piscina 5, default pool, 1000 runs then await all',
      async setup({ piscina }) {
        const pool = await piscina();
        return () => {
          const submitted = [];
          for (let i = 0; i < 1000; i++) submitted.push(pool.run(null));
          return Promise.all(submitted);
        };
      },
    },
    actorRow({
      name: 'multi client tasks async',
      unit: 'ops/s', multiplier: MULTI_CLIENT_TASKS * MULTI_CLIENTS,
      setup({ ray }, add) {
        const clients = Array.from({ length: MULTI_CLIENTS }, () => add(actors(ray).TaskClient.remote()));
        return () => ray.get(clients.map((c) => c.smallValueBatch.remote(MULTI_CLIENT_TASKS)));
      },
    }),
    ...actorRows(),
  ];
}

type Add = <H>(h: H) => H;

/** A row that makes actors: they are killed in its teardown. */
function actorRow(row: Omit<BenchRow, 'kind' | 'setup' | 'teardown'> & {
  setup(ctx: BenchContext, add: Add): Promise<() => unknown> | (() => unknown);
}): BenchRow {
  let scope: ReturnType<typeof actorScope> | undefined;
  return {
    name: row.name, unit: row.unit, multiplier: row.multiplier, kind: 'rayts',
    ...(row.note !== undefined ? { note: row.note } : {}),
    setup(ctx) {
      scope = actorScope(ctx.ray);
      return row.setup(ctx, scope.add);
    },
    teardown() {
      scope?.kill();
      scope = undefined;
    },
  };
}

// The actor rows of ray_perf.py, in its order.
function actorRows(): BenchRow[] {
  const n = nCpu();
  return [
    actorRow({
      name: '1:1 actor calls sync',
      unit: 'ops/s', multiplier: 1,
      setup({ ray }, add) {
        const a = add(actors(ray).Actor.remote());
        return () => ray.get(a.smallValue.remote());
      },
    }),
    actorRow({
      name: '1:1 actor calls async',
      unit: 'ops/s', multiplier: ACTOR_BATCH,
      setup({ ray }, add) {
        const a = add(actors(ray).Actor.remote());
        return () => {
          const refs = [];
          for (let i = 0; i < ACTOR_BATCH; i++) refs.push(a.smallValue.remote());
          return ray.get(refs);
        };
      },
    }),
    actorRow({
      name: '1:1 actor calls concurrent',
      unit: 'ops/s', multiplier: ACTOR_BATCH,
      note: `Actor.options({ maxConcurrency: ${CONCURRENT_MAX} }) as Ray; a sync JS method cannot overlap another ` +
        '(one thread per worker: Ray uses 16 threads), so calls only overlap their argument/reply handling',
      setup({ ray }, add) {
        const a = add(actors(ray).Actor.options({ maxConcurrency: CONCURRENT_MAX }).remote());
        return () => {
          const refs = [];
          for (let i = 0; i < ACTOR_BATCH; i++) refs.push(a.smallValue.remote());
          return ray.get(refs);
        };
      },
    }),
    actorRow({
      name: '1:n actor calls async',
      unit: 'ops/s', multiplier: ONE_TO_N_CALLS * n,
      async setup({ ray }, add) {
        const { Actor, Client } = actors(ray);
        const servers = Array.from({ length: n }, () => add(Actor.remote()));
        await requireHandlePassing(ray, servers[0]!);
        const client = add(Client.remote(servers as never));
        return () => ray.get(client.smallValueBatch.remote(ONE_TO_N_CALLS));
      },
    }),
    actorRow({
      name: 'n:n actor calls async',
      unit: 'ops/s', multiplier: MULTI_CLIENTS * ONE_TO_N_CALLS,
      async setup({ ray }, add) {
        const { Actor, work } = actors(ray);
        const a = Array.from({ length: n }, () => add(Actor.remote()));
        await requireHandlePassing(ray, a[0]!);
        return () => {
          const refs = [];
          for (let i = 0; i < MULTI_CLIENTS; i++) refs.push(work.remote(a as never, ONE_TO_N_CALLS, n));
          return ray.get(refs);
        };
      },
    }),
    actorRow({
      name: 'n:n actor calls with arg async',
      unit: 'ops/s', multiplier: N_TO_N_ARG_CALLS * n,
      async setup({ ray }, add) {
        const { Actor, Client } = actors(ray);
        const servers = Array.from({ length: n }, () => add(Actor.remote()));
        await requireHandlePassing(ray, servers[0]!);
        const clients = servers.map((s) => add(Client.remote(s as never)));
        return () => ray.get(clients.map((c) => c.smallValueBatchArg.remote(N_TO_N_ARG_CALLS)));
      },
    }),
    actorRow({
      name: '1:1 async-actor calls sync',
      unit: 'ops/s', multiplier: 1,
      setup({ ray }, add) {
        const a = add(actors(ray).AsyncActor.remote());
        return () => ray.get(a.smallValue.remote());
      },
    }),
    actorRow({
      name: '1:1 async-actor calls async',
      unit: 'ops/s', multiplier: ACTOR_BATCH,
      setup({ ray }, add) {
        const a = add(actors(ray).AsyncActor.remote());
        return () => {
          const refs = [];
          for (let i = 0; i < ACTOR_BATCH; i++) refs.push(a.smallValue.remote());
          return ray.get(refs);
        };
      },
    }),
    actorRow({
      name: '1:1 async-actor calls with args async',
      unit: 'ops/s', multiplier: ACTOR_BATCH,
      setup({ ray }, add) {
        const a = add(actors(ray).AsyncActor.remote());
        return () => {
          const refs = [];
          for (let i = 0; i < ACTOR_BATCH; i++) refs.push(a.smallValueWithArg.remote(i));
          return ray.get(refs);
        };
      },
    }),
    actorRow({
      name: '1:n async-actor calls async',
      unit: 'ops/s', multiplier: ONE_TO_N_CALLS * n,
      note: 'in ray_perf.py; no reference figure',
      async setup({ ray }, add) {
        const { AsyncActor, Client } = actors(ray);
        const servers = Array.from({ length: n }, () => add(AsyncActor.remote()));
        await requireHandlePassing(ray, servers[0]!);
        const client = add(Client.remote(servers as never));
        return () => ray.get(client.smallValueBatch.remote(ONE_TO_N_CALLS));
      },
    }),
    actorRow({
      name: 'n:n async-actor calls async',
      unit: 'ops/s', multiplier: MULTI_CLIENTS * ONE_TO_N_CALLS,
      async setup({ ray }, add) {
        const { AsyncActor, work } = actors(ray);
        const a = Array.from({ length: n }, () => add(AsyncActor.remote()));
        await requireHandlePassing(ray, a[0]!);
        return () => {
          const refs = [];
          for (let i = 0; i < MULTI_CLIENTS; i++) refs.push(work.remote(a as never, ONE_TO_N_CALLS, n));
          return ray.get(refs);
        };
      },
    }),
  ];
}

/**
 * Reference figures, measured earlier on a 2-core, 24 GiB Linux machine: Ray 2.58's
 * `ray microbenchmark` and piscina 5.3, and the rayts goal for each row (`target`,
 * not printed; kept for the project's own tracking in the JSON output's consumers).
 */
export const REFERENCE: Record<string, { ray?: number; piscina?: number; target?: number }> = {
  'single client tasks sync': { ray: 449, piscina: 12266, target: 15000 },
  'single client tasks async': { ray: 1358, piscina: 30935, target: 100000 },
  'single client tasks and get batch': { ray: 1.82, target: 60 },
  'multi client tasks async': { ray: 1910, target: 100000 },
  'single client put calls (Plasma Store)': { ray: 1580, target: 500000 },
  'single client get calls (Plasma Store)': { ray: 9482, target: 1000000 },
  'multi client put calls (Plasma Store)': { ray: 1378, target: 50000 },
  'single client put gigabytes': { ray: 2.07, target: 8 },
  'multi client put gigabytes': { ray: 9.38, target: 10 },
  'single client get object containing 10k refs': { ray: 9.04, target: 200 },
  'single client wait 1k refs': { ray: 1.26, target: 50 },
  '1:1 actor calls sync': { ray: 1410, target: 15000 },
  '1:1 actor calls async': { ray: 4141, target: 150000 },
  '1:1 actor calls concurrent': { ray: 4057, target: 100000 },
  '1:n actor calls async': { ray: 4294, target: 100000 },
  'n:n actor calls async': { ray: 4755, target: 100000 },
  'n:n actor calls with arg async': { ray: 1549, target: 50000 },
  '1:1 async-actor calls sync': { ray: 912, target: 12000 },
  '1:1 async-actor calls async': { ray: 2515, target: 100000 },
  '1:1 async-actor calls with args async': { ray: 1876, target: 80000 },
  'n:n async-actor calls async': { ray: 2487, target: 80000 },
  'piscina tasks sync': { piscina: 12266 },
  'piscina tasks async': { piscina: 30935 },
};
