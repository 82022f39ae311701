// A node daemon in this process (`rayts start --block`, and what a detached
// `rayts start` leaves running): the head hosts the GCS (NativeGcsServer,
// TCP) and a node server; any other node hosts a node server that
// registers with the GCS at --address. The node server is the same class
// the embedded mode runs inside a driver (raylet + plasma store + worker
// pool), here in cluster mode: it reaches the GCS over TCP with the token.
import * as os from 'node:os';
import * as path from 'node:path';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { availableMemory } from '../runtime/memory_limit.js';
import { claimSessionDir, createSessionDir } from '../api/session.js';
import { TOKEN_ENV } from './auth.js';
import { loadAddon, workerMainPath, type NativeGcsServer, type NativeNodeServer } from '../runtime/native.js';
import {
  clearCurrentCluster, daemonRoot, defaultNodeIp, writeCurrentCluster, writeNodeFile, type NodeFile,
} from './node_files.js';

const DEFAULT_STORE_CAP = 2 * 1024 * 1024 * 1024; // 2 GiB
const DEFAULT_STORE_FRACTION = 0.3; // Ray: 30% of the memory

export interface NodeDaemonOptions {
  head: boolean;
  /** A joining node: the GCS's host:port. */
  address?: string;
  /** Head: the GCS port (0: any free port). */
  port: number;
  numCpus?: number;
  numGpus?: number;
  resources?: Record<string, number>;
  objectStoreMemory?: number;
  nodeIp?: string;
  tempDir?: string;
  /** The session directory made by the launching `rayts start` (else one is made here). */
  sessionDir?: string;
  token: string;
}

export interface RunningNode {
  info: NodeFile;
  /** Stops the node server (and the GCS on the head) and removes the session directory. Idempotent. */
  stop(): void;
  /** '' while the node runs; why it can no longer serve, otherwise. */
  fatal(): string;
}

/** An integer from the environment in [min, max], or `dflt`; RangeError naming the variable. */
export function envInt(name: string, dflt: number, min: number, max: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got '${v}'`);
  }
  return n;
}

/** Health checks of the head's GCS: Ray's defaults, overridden by RAYTS_HEALTH_CHECK_* (milliseconds). */
function healthCheckOptions(): Record<string, number> {
  return {
    healthCheckInitialDelayMs: envInt('RAYTS_HEALTH_CHECK_INITIAL_DELAY_MS', 5000, 0, 3_600_000),
    healthCheckPeriodMs: envInt('RAYTS_HEALTH_CHECK_PERIOD_MS', 3000, 10, 3_600_000),
    healthCheckTimeoutMs: envInt('RAYTS_HEALTH_CHECK_TIMEOUT_MS', 10000, 10, 3_600_000),
    healthCheckFailureThreshold: envInt('RAYTS_HEALTH_CHECK_FAILURE_THRESHOLD', 5, 1, 1000),
    handshakeTimeoutMs: envInt('RAYTS_GCS_HANDSHAKE_TIMEOUT_MS', 5000, 10, 600_000),
  };
}

export function startNodeDaemon(o: NodeDaemonOptions): RunningNode {
  const addon = loadAddon();
  const root = daemonRoot(o.tempDir);
  const sessionDir = o.sessionDir ?? createSessionDir(root);
  claimSessionDir(sessionDir);
  const nodeIp = o.nodeIp ?? defaultNodeIp();
  let gcs: NativeGcsServer | undefined;
  let node: NativeNodeServer | undefined;
  let gcsAddress: string;
  try {
    if (o.head) {
      gcs = new addon.NativeGcsServer({
        host: '0.0.0.0', port: o.port, authToken: o.token, clusterId: randomBytes(8).toString('hex'),
        ...healthCheckOptions(),
      });
      gcsAddress = `${nodeIp}:${gcs.port}`;
    } else {
      if (o.address === undefined) throw new TypeError('a node that is not the head needs --address HOST:PORT');
      gcsAddress = o.address;
    }
    const numCpus = o.numCpus ?? os.availableParallelism();
    const resources: Record<string, number> = { CPU: numCpus };
    if (o.numGpus) resources.GPU = o.numGpus;
    Object.assign(resources, o.resources ?? {});
    const storeBytes = o.objectStoreMemory ?? Math.min(DEFAULT_STORE_CAP, Math.floor(availableMemory() * DEFAULT_STORE_FRACTION));
    // Workers reach their node over its unix socket: they get no token.
    const workerEnv = Object.entries(process.env).filter(([k, v]) => v !== undefined && k !== TOKEN_ENV).map(([k, v]) => `${k}=${v}`);
    node = new addon.NativeNodeServer({
      socketPath: path.join(sessionDir, 'sockets', 'node.sock'),
      sessionDir,
      storeBytes,
      resources,
      prestart: Math.ceil(numCpus),
      maxWorkers: Math.max(4, Math.ceil(numCpus) * 2) + 32,
      workerArgv: [process.execPath, process.env.RAYTS_WORKER_MAIN ?? workerMainPath()],
      workerEnv,
      workingDir: process.cwd(),
      spillDir: sessionDir,
      logToDriver: false, // workers' output goes to <session>/logs
      gcsAddress,
      authToken: o.token,
      nodeIp,
      isHead: o.head,
      gcsReconnectTimeoutMs: envInt('RAYTS_GCS_RECONNECT_TIMEOUT_MS', 60_000, 100, 3_600_000),
    });
  } catch (e) {
    node?.stop();
    gcs?.stop();
    rmSync(sessionDir, { recursive: true, force: true });
    throw e;
  }
  const info: NodeFile = {
    pid: process.pid, nodeId: node.nodeId, isHead: o.head, gcsAddress, nodeIp,
    socketPath: path.join(sessionDir, 'sockets', 'node.sock'), sessionDir,
  };
  writeNodeFile(info);
  if (o.head) writeCurrentCluster(root, gcsAddress);
  let stopped = false;
  const n = node;
  return {
    info,
    fatal: () => (stopped ? '' : n.fatal()),
    stop: () => {
      if (stopped) return;
      stopped = true;
      n.stop();
      gcs?.stop();
      if (o.head) clearCurrentCluster(root, gcsAddress);
      rmSync(sessionDir, { recursive: true, force: true });
    },
  };
}
