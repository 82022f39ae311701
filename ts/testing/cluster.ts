// Cluster: a multi-node cluster on one machine for tests (Ray's
// ray.cluster_utils.Cluster). Every node is a real daemon process
// (`rayts start --block`) with its own node server, object store and
// workers; the first is the head (GCS on a free port). Nodes share one
// temporary directory, removed by shutdown(). The daemons never outlive the
// process that started them: each holds one end of a pipe (its fd 4,
// RAYTS_EXIT_WITH_PARENT_FD) whose other end only this process has, and
// stops cleanly when it reads EOF (this process exited, even by SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { headToken } from '../cluster/auth.js';
import type { NodeFile } from '../cluster/node_files.js';
import { queryStatus, type ClusterStatus } from '../cluster/status.js';
import { distDir } from '../here.js';

/** The daemon's end of its lifeline pipe (see `rayts start --block`). */
const PARENT_PIPE_ENV = 'RAYTS_EXIT_WITH_PARENT_FD';

export interface ClusterNodeOptions {
  numCpus?: number;
  numGpus?: number;
  resources?: Record<string, number>;
  /** Object store bytes (default 128 MiB: many nodes share one machine). */
  objectStoreMemory?: number;
  /** Extra environment of this node's daemon (and so of its workers). */
  env?: Record<string, string>;
}

export interface HealthCheckOptions {
  initialDelayMs?: number;
  periodMs?: number;
  timeoutMs?: number;
  failureThreshold?: number;
}

export interface ClusterOptions {
  head?: ClusterNodeOptions;
  nodes?: ClusterNodeOptions[];
  /** The GCS's health checks of the nodes (default: Ray's 5 s / 3 s / 10 s / 5). */
  healthCheck?: HealthCheckOptions;
  /** The cluster token (default: RAYTS_AUTH_TOKEN, else ~/.rayts/auth_token, generated if absent). */
  authToken?: string;
  /** Most time a node may take to come up (default 60 s). */
  startTimeoutMs?: number;
}

/** One daemon of the cluster. */
export class ClusterNode {
  /** @internal */
  constructor(readonly info: NodeFile, /** @internal */ readonly proc: ChildProcess) {}
  get nodeId(): string { return this.info.nodeId; }
  get pid(): number { return this.info.pid; }
  get isHead(): boolean { return this.info.isHead; }
  get sessionDir(): string { return this.info.sessionDir; }
  /** True until the daemon process has exited. */
  get running(): boolean { return this.proc.exitCode === null && this.proc.signalCode === null; }
}

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
}

function checkNodeOptions(name: string, o: ClusterNodeOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError(`${name} must be an object of node options`);
  if (o.numCpus !== undefined && (typeof o.numCpus !== 'number' || o.numCpus < 0)) throw new RangeError(`${name}.numCpus must be a non-negative number`);
  if (o.numGpus !== undefined && (typeof o.numGpus !== 'number' || o.numGpus < 0)) throw new RangeError(`${name}.numGpus must be a non-negative number`);
  positiveInt(`${name}.objectStoreMemory`, o.objectStoreMemory);
}

export class Cluster {
  readonly #tempDir: string;
  readonly #token: string;
  readonly #opts: ClusterOptions;
  #head: ClusterNode | undefined;
  readonly #nodes: ClusterNode[] = [];

  private constructor(opts: ClusterOptions) {
    this.#opts = opts;
    this.#tempDir = mkdtempSync(path.join(os.tmpdir(), 'rayts-cluster-'));
    this.#token = opts.authToken ?? headToken().token;
  }

  /** Starts the head, then the other nodes; resolves once all are registered with the GCS. */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('Cluster.start expects an options object');
    checkNodeOptions('head', opts.head ?? {});
    (opts.nodes ?? []).forEach((n, i) => checkNodeOptions(`nodes[${i}]`, n));
    const hc = opts.healthCheck ?? {};
    positiveInt('healthCheck.initialDelayMs', hc.initialDelayMs);
    positiveInt('healthCheck.periodMs', hc.periodMs);
    positiveInt('healthCheck.timeoutMs', hc.timeoutMs);
    positiveInt('healthCheck.failureThreshold', hc.failureThreshold);
    const c = new Cluster(opts);
    try {
      c.#head = await c.#spawn(opts.head ?? {}, true);
      for (const n of opts.nodes ?? []) await c.addNode(n);
      await c.waitForNodes();
    } catch (e) {
      await c.shutdown();
      throw e;
    }
    return c;
  }

  /** host:port of the GCS: what ray.init({ address }) takes. */
  get address(): string {
    if (this.#head === undefined) throw new Error('the cluster has no head (shut down)');
    return this.#head.info.gcsAddress;
  }

  get head(): ClusterNode {
    if (this.#head === undefined) throw new Error('the cluster has no head (shut down)');
    return this.#head;
  }

  /** The nodes started and not removed, the head first. */
  get nodes(): ClusterNode[] {
    return [...this.#nodes];
  }

  /** The token the nodes present. */
  get authToken(): string {
    return this.#token;
  }

  async addNode(opts: ClusterNodeOptions = {}): Promise<ClusterNode> {
    checkNodeOptions('addNode options', opts);
    return this.#spawn(opts, false);
  }

  /**
   * Ends a node: graceful (default) sends SIGTERM, so it unregisters and the
   * GCS marks it dead at once; otherwise SIGKILL, and the GCS finds it dead
   * through its health checks.
   */
  async removeNode(node: ClusterNode, opts: { graceful?: boolean } = {}): Promise<void> {
    const i = this.#nodes.indexOf(node);
    if (i < 0) throw new RangeError('removeNode: not a node of this cluster (or removed already)');
    this.#nodes.splice(i, 1);
    if (node === this.#head) this.#head = undefined;
    await stopProcess(node.proc, opts.graceful === false ? 'SIGKILL' : 'SIGTERM');
  }

  /** The cluster as the GCS sees it now. */
  async status(): Promise<ClusterStatus> {
    return queryStatus(this.address, this.#token);
  }

  /** Resolves once `count` nodes (default: every node started) are alive in the GCS. */
  async waitForNodes(count = this.#nodes.length, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let alive = -1;
    for (;;) {
      alive = (await this.status()).nodes.filter((n) => n.alive).length;
      if (alive >= count) return;
      if (Date.now() > deadline) throw new Error(`waitForNodes: ${alive} of ${count} nodes alive after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops every node (SIGTERM, then SIGKILL after 10 s) and removes the temporary directory. Idempotent. */
  async shutdown(): Promise<void> {
    const nodes = this.#nodes.splice(0).reverse(); // the head last: the others unregister first
    this.#head = undefined;
    await Promise.all(nodes.filter((n) => !n.isHead).map((n) => stopProcess(n.proc, 'SIGTERM')));
    await Promise.all(nodes.filter((n) => n.isHead).map((n) => stopProcess(n.proc, 'SIGTERM')));
    rmSync(this.#tempDir, { recursive: true, force: true });
  }

  async #spawn(o: ClusterNodeOptions, head: boolean): Promise<ClusterNode> {
    const args = [path.join(distDir, '..', 'esm', 'cli', 'cli.js'), 'start'];
    if (head) args.push('--head', '--port', '0');
    else args.push('--address', this.address);
    args.push('--block', '--temp-dir', this.#tempDir, '--node-ip-address', '127.0.0.1');
    args.push('--num-cpus', String(o.numCpus ?? 1));
    if (o.numGpus !== undefined) args.push('--num-gpus', String(o.numGpus));
    if (o.resources !== undefined) args.push('--resources', JSON.stringify(o.resources));
    args.push('--object-store-memory', String(o.objectStoreMemory ?? 128 * 1024 * 1024));
    const hc = this.#opts.healthCheck ?? {};
    const env: Record<string, string | undefined> = { ...process.env, ...(o.env ?? {}), RAYTS_AUTH_TOKEN: this.#token };
    if (hc.initialDelayMs !== undefined) env.RAYTS_HEALTH_CHECK_INITIAL_DELAY_MS = String(hc.initialDelayMs);
    if (hc.periodMs !== undefined) env.RAYTS_HEALTH_CHECK_PERIOD_MS = String(hc.periodMs);
    if (hc.timeoutMs !== undefined) env.RAYTS_HEALTH_CHECK_TIMEOUT_MS = String(hc.timeoutMs);
    if (hc.failureThreshold !== undefined) env.RAYTS_HEALTH_CHECK_FAILURE_THRESHOLD = String(hc.failureThreshold);
    env[PARENT_PIPE_ENV] = '4';
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'], env });
    // The lifeline: never written, closed by the kernel when this process ends.
    // Unreferenced: it does not keep this process's event loop alive.
    (proc.stdio[4] as Socket | null)?.unref();
    let log = '';
    const keep = (d: Buffer): void => { log = (log + d.toString()).slice(-8192); };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const timeoutMs = this.#opts.startTimeoutMs ?? 60_000;
    const info = await new Promise<NodeFile>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`a ${head ? 'head' : ''} node did not come up within ${timeoutMs} ms:\n${log}`));
      }, timeoutMs);
      proc.once('message', (m: { ok: boolean; error?: string } & NodeFile) => {
        clearTimeout(timer);
        if (m.ok) resolve(m);
        else reject(new Error(`a node failed to start: ${m.error ?? ''}\n${log}`));
      });
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`a node exited (${sig ?? `code ${code}`}) before it was up:\n${log}`));
      });
    });
    // The daemon's output is drained (so it never blocks on a full pipe) but not kept.
    proc.stdout?.removeListener('data', keep);
    proc.stderr?.removeListener('data', keep);
    proc.stdout?.resume();
    proc.stderr?.resume();
    if (process.env.RAYTS_CLUSTER_LOGS === '1') {
      proc.stdout?.pipe(process.stdout);
      proc.stderr?.pipe(process.stderr);
    }
    const node = new ClusterNode(info, proc);
    this.#nodes.push(node);
    return node;
  }
}

/** Signals `proc` and waits for its exit; SIGKILL after 10 s. */
async function stopProcess(proc: ChildProcess, sig: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill(sig);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
