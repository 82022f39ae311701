// The cluster rows of `rayts microbenchmark`: a 2-node cluster on this
// machine (rayts/testing Cluster: a head daemon and one more node, each
// with its own node server, object store and workers), the driver attached
// to the head. Not in ray_perf.py: Ray has no such rows; the same shapes
// run on Ray with `ray start --head` + `ray start --address` (see
// docs/performance.md). Run with --cluster (or a --filter naming them).
//
//   multi node tasks async                         1000 small_value tasks pinned (node
//                                                  affinity) to the other node, then get
//   1:1 actor calls async (actor on the other node) as '1:1 actor calls async', the actor
//                                                  placed on the other node
//   object transfer between nodes gigabytes (1 GiB object)
//                                                  a task on the other node waits
//                                                  (fetchLocal) for a 1 GiB object put on
//                                                  the head: one pull of 1 GiB per call
//   object transfer between nodes: loopback TCP limit gigabytes (1 GiB)
//                                                  the same bytes over one 127.0.0.1 TCP
//                                                  connection between two Node processes
//                                                  (5 MiB writes, a reused 5 MiB read
//                                                  buffer): what the loopback allows
import { fork, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as RayApi from 'rayts';
import type { BenchContext, BenchRow } from './ray_perf.js';

type Api = typeof RayApi;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const TRANSFER_BYTES = GiB;
const here = path.dirname(fileURLToPath(import.meta.url));

/** What the cluster rows know of their cluster (set by the harness). */
export interface ClusterInfo {
  headNodeId: string;
  otherNodeId: string;
}

/** Store sizes of the bench cluster: the head holds two 1 GiB primaries, the other node one pulled copy at a time. */
export const CLUSTER_SHAPE = {
  head: { objectStoreMemory: 2 * GiB + 512 * MiB },
  other: { objectStoreMemory: GiB + 256 * MiB },
};

function clusterOf(ctx: BenchContext): ClusterInfo {
  if (!ctx.cluster) throw new Error('a cluster row ran without its cluster');
  return ctx.cluster;
}

/** Waits (fetchLocal) until the objects in `refs` are on this task's node; returns that node. */
function fetcher(ray: Api) {
  return ray.remote(async (refs: RayApi.ObjectRef<unknown>[]) => {
    const r = (await import('rayts' as string)) as Api;
    const [ready] = await r.wait(refs, { numReturns: refs.length, fetchLocal: true, timeoutMs: 120_000 });
    if (ready.length !== refs.length) throw new Error(`only ${ready.length} of ${refs.length} objects arrived`);
    return r.getRuntimeContext().nodeId;
  });
}

let sink: { proc: ChildProcess; port: number } | undefined;

/** The sender of the loopback row: a Node process that writes `n` bytes (5 MiB writes) for each 8-byte request. */
async function startBlaster(): Promise<{ proc: ChildProcess; port: number }> {
  const proc = fork(path.join(here, 'tcp_blaster.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the TCP sender did not start within 10 s')), 10_000);
    proc.once('message', (m: { port: number }) => { clearTimeout(timer); resolve(m.port); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the TCP sender exited (${code})`)); });
  });
  return { proc, port };
}

/** One connection to the sender; `pull(n)` resolves once n bytes arrived (read into one reused buffer). */
async function connectBlaster(port: number): Promise<{ pull(n: number): Promise<void>; close(): void }> {
  let want = 0;
  let got = 0;
  let done: (() => void) | undefined;
  const buffer = Buffer.allocUnsafe(5 * MiB);
  const sock = net.connect({
    host: '127.0.0.1', port, noDelay: true,
    onread: {
      buffer,
      callback: (n: number) => {
        got += n;
        if (got >= want && done) {
          const d = done;
          done = undefined;
          d();
        }
        return true;
      },
    },
  });
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  return {
    pull(n: number): Promise<void> {
      want = n;
      got = 0;
      const p = new Promise<void>((resolve) => { done = resolve; });
      const req = Buffer.alloc(8);
      req.writeBigUInt64LE(BigInt(n));
      sock.write(req);
      return p;
    },
    close(): void {
      sock.destroy();
    },
  };
}

export function clusterRows(): BenchRow[] {
  let objects: RayApi.ObjectRef<unknown>[] = [];
  let blaster: { pull(n: number): Promise<void>; close(): void } | undefined;
  const made: RayApi.ActorHandle<unknown>[] = [];
  const kill = (ray: Api): void => {
    for (const h of made.splice(0)) {
      try { ray.kill(h); } catch { /* the cluster is gone already */ }
    }
  };
  let api: Api | undefined;
  return [
    {
      name: 'multi node tasks async',
      unit: 'ops/s', multiplier: 1000, kind: 'cluster',
      note: '1000 small_value tasks with schedulingStrategy { nodeId: <the other node> }, then ray.get of all',
      async setup(ctx) {
        const { ray } = ctx;
        const on = { schedulingStrategy: { nodeId: clusterOf(ctx).otherNodeId } };
        const smallValue = ray.remote(() => 'ok').options(on);
        const where = ray.remote(async () => ((await import('rayts' as string)) as Api).getRuntimeContext().nodeId).options(on);
        if (await ray.get(where.remote()) !== clusterOf(ctx).otherNodeId) throw new Error('a task did not run on the other node');
        return () => {
          const submitted = [];
          for (let i = 0; i < 1000; i++) submitted.push(smallValue.remote());
          return ray.get(submitted);
        };
      },
    },
    {
      name: '1:1 actor calls async (actor on the other node)',
      unit: 'ops/s', multiplier: 1000, kind: 'cluster',
      note: "Actor (numCpus: 0) placed with schedulingStrategy { nodeId: <the other node> }; 1000 calls, then ray.get of all",
      async setup(ctx) {
        const { ray } = ctx;
        api = ray;
        const Actor = ray.remote({ numCpus: 0 }, class Actor {
          smallValue(): string { return 'ok'; }
          async node(): Promise<string> { return ((await import('rayts' as string)) as Api).getRuntimeContext().nodeId; }
        });
        const a = Actor.options({ schedulingStrategy: { nodeId: clusterOf(ctx).otherNodeId } }).remote();
        made.push(a as unknown as RayApi.ActorHandle<unknown>);
        if (await ray.get(a.node.remote()) !== clusterOf(ctx).otherNodeId) throw new Error('the actor is not on the other node');
        return () => {
          const refs = [];
          for (let i = 0; i < 1000; i++) refs.push(a.smallValue.remote());
          return ray.get(refs);
        };
      },
      teardown() {
        if (api) kill(api);
      },
    },
    {
      name: 'object transfer between nodes gigabytes (1 GiB object)',
      unit: 'GB/s', multiplier: TRANSFER_BYTES / 1e9, kind: 'cluster',
      note: 'two 1 GiB objects put on the head; each call, a task on the other node waits (fetchLocal) for one of them, ' +
        'alternately: the other node\'s store holds one, so each call pulls 1 GiB (5 MiB chunks over the nodes\' TCP connection)',
      async setup(ctx) {
        const { ray } = ctx;
        const c = clusterOf(ctx);
        objects = [0, 1].map((i) => ray.put(new Uint8Array(TRANSFER_BYTES).fill(i + 1)));
        const fetch = fetcher(ray).options({ schedulingStrategy: { nodeId: c.otherNodeId } });
        let next = 0;
        return async () => {
          const node = await ray.get(fetch.remote([objects[next]!]));
          next ^= 1;
          if (node !== c.otherNodeId) throw new Error('the fetching task did not run on the other node');
        };
      },
      teardown() {
        for (const o of objects.splice(0)) o.release();
      },
    },
    {
      name: 'object transfer between nodes: loopback TCP limit gigabytes (1 GiB)',
      unit: 'GB/s', multiplier: TRANSFER_BYTES / 1e9, kind: 'cluster',
      note: 'the same 1 GiB per call over one 127.0.0.1 TCP connection between this process and a Node sender ' +
        '(5 MiB writes, one reused 5 MiB read buffer): the loopback limit beside the row above',
      async setup() {
        sink ??= await startBlaster();
        blaster = await connectBlaster(sink.port);
        const b = blaster;
        return () => b.pull(TRANSFER_BYTES);
      },
      async teardown() {
        blaster?.close();
        blaster = undefined;
        if (sink) {
          const s = sink;
          sink = undefined;
          if (s.proc.exitCode === null && s.proc.signalCode === null) {
            const exited = new Promise<void>((resolve) => s.proc.once('exit', () => resolve()));
            s.proc.kill('SIGTERM');
            await exited;
          }
        }
      },
    },
  ];
}
