// Where the daemons of this machine leave what others need to find them.
// A node daemon's session directory (session_<pid>_XXXXXX under the session
// root <temp dir>/rayts-<uid>, mode 0700) holds sockets/node.sock (its node
// server), logs/, and node.json (NodeFile: who it is, once it is up). A head
// also writes <root>/current_cluster: the GCS address ('auto' reads it).
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sessionRoot, sessionRootPath } from '../api/session.js';

export const NODE_FILE = 'node.json';
export const CURRENT_CLUSTER_FILE = 'current_cluster';
export const ADDRESS_ENV = 'RAYTS_ADDRESS';

export interface NodeFile {
  pid: number;
  nodeId: string;
  isHead: boolean;
  /** host:port of the cluster's GCS. */
  gcsAddress: string;
  nodeIp: string;
  socketPath: string;
  sessionDir: string;
}

/** The session root of daemons started with `--temp-dir dir` (default: the system temp dir), created 0700. */
export function daemonRoot(tempDir?: string): string {
  return tempDir !== undefined ? sessionRoot(path.resolve(tempDir)) : sessionRoot();
}

export function writeNodeFile(info: NodeFile): void {
  writeFileSync(path.join(info.sessionDir, NODE_FILE), JSON.stringify(info) + '\n', { mode: 0o600 });
}

export function readNodeFile(sessionDir: string): NodeFile | undefined {
  try {
    return JSON.parse(readFileSync(path.join(sessionDir, NODE_FILE), 'utf8')) as NodeFile;
  } catch {
    return undefined;
  }
}

export function writeCurrentCluster(root: string, address: string): void {
  writeFileSync(path.join(root, CURRENT_CLUSTER_FILE), address + '\n', { mode: 0o600 });
}

/** Removes <root>/current_cluster if it still names `address`. */
export function clearCurrentCluster(root: string, address: string): void {
  const f = path.join(root, CURRENT_CLUSTER_FILE);
  try {
    if (readFileSync(f, 'utf8').trim() === address) rmSync(f, { force: true });
  } catch {
    // absent: nothing to clear
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The node daemons of this user under `root` that are running now. */
export function liveNodes(root: string): NodeFile[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const out: NodeFile[] = [];
  for (const n of names) {
    if (!n.startsWith('session_')) continue;
    const f = readNodeFile(path.join(root, n));
    if (f !== undefined && alive(f.pid)) out.push(f);
  }
  return out;
}

/**
 * The cluster started on this machine ('auto'): RAYTS_ADDRESS, else the
 * current_cluster file of the default session root, if a head of that
 * address still runs. Undefined when there is none.
 */
export function findLocalCluster(): string | undefined {
  const env = process.env[ADDRESS_ENV];
  if (env !== undefined && env.trim() !== '' && env.trim() !== 'auto') return env.trim();
  const root = sessionRootPath();
  let address: string;
  try {
    address = readFileSync(path.join(root, CURRENT_CLUSTER_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
  return liveNodes(root).some((n) => n.isHead && n.gcsAddress === address) ? address : undefined;
}

/** The IP other machines reach this one at: the first external IPv4 address, else 127.0.0.1. */
export function defaultNodeIp(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return '127.0.0.1';
}

/** True if the node server socket of `sessionDir` is there (the node is on this machine). */
export function nodeSocketPresent(socketPath: string): boolean {
  return existsSync(socketPath);
}
