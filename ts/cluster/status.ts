// A cluster's status as the GCS reports it (`rayts status`, Cluster in
// rayts/testing): its nodes and its resources, used and total.
import { RaySystemError } from '../api/errors.js';
import { clusterQuery, loadAddon } from '../runtime/native.js';

export interface ClusterNodeStatus {
  nodeId: string;
  alive: boolean;
  /** The node server's socket on its machine. */
  address: string;
  nodeIp: string;
  hostname: string;
  isHead: boolean;
  pid: number;
  sessionDir: string;
  resources: Record<string, number>;
  available: Record<string, number>;
  startTimeMs: number;
  endTimeMs: number;
  deathReason: string;
  /** Lease requests queued on the node (waiting for resources), by shape. */
  pendingDemand: Array<{ shape: Record<string, number>; count: number }>;
  /** Requests refused in the last minute because no node of the cluster could ever run them, by shape. */
  infeasibleDemand: Array<{ shape: Record<string, number>; count: number }>;
  /** The node server's TCP address (ip:port): where owners of other nodes lease its workers. */
  nodeManagerAddress: string;
}

export interface ClusterStatus {
  address: string;
  nodes: ClusterNodeStatus[];
  /** Totals over the alive nodes. */
  clusterResources: Record<string, number>;
  availableResources: Record<string, number>;
}

/** Asks the GCS at `address` (TCP, with the token); errors say whether the token was refused or the GCS unreachable. */
export async function queryStatus(address: string, token: string, timeoutMs = 10_000): Promise<ClusterStatus> {
  let replies: string[];
  try {
    replies = await loadAddon().queryCluster(address, token,
      [clusterQuery('Nodes'), clusterQuery('ClusterResources'), clusterQuery('AvailableResources')], timeoutMs);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = e instanceof Error ? e.message : String(e);
    if (code === 'Unauthenticated') {
      throw new RaySystemError(`${msg}: present the cluster's token (RAYTS_AUTH_TOKEN or ~/.rayts/auth_token, as on the head)`);
    }
    throw new RaySystemError(`cannot reach the cluster at ${address}: ${msg}`);
  }
  return {
    address,
    nodes: JSON.parse(replies[0] as string) as ClusterNodeStatus[],
    clusterResources: JSON.parse(replies[1] as string) as Record<string, number>,
    availableResources: JSON.parse(replies[2] as string) as Record<string, number>,
  };
}

function amount(name: string, v: number): string {
  if (/memory/i.test(name) && v >= 1024 * 1024) return `${(v / (1024 * 1024 * 1024)).toFixed(2)} GiB`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function usedOfTotal(total: Record<string, number>, avail: Record<string, number>): string {
  const names = Object.keys(total).sort();
  if (names.length === 0) return '(none)';
  return names.map((n) => {
    const t = total[n] as number;
    const used = Math.max(0, t - (avail[n] ?? 0));
    return `${amount(n, used)}/${amount(n, t)} ${n}`;
  }).join(', ');
}

export function formatStatus(s: ClusterStatus): string {
  const alive = s.nodes.filter((n) => n.alive);
  const dead = s.nodes.filter((n) => !n.alive);
  const out: string[] = [`======== Cluster status: ${s.address} ========`, `Nodes: ${alive.length} alive, ${dead.length} dead`];
  for (const n of alive) {
    out.push(` alive  ${n.nodeId}  ${n.nodeIp}${n.isHead ? '  (head)' : ''}  pid ${n.pid}`);
    out.push(`        used/total: ${usedOfTotal(n.resources, n.available)}`);
  }
  for (const n of dead) out.push(` dead   ${n.nodeId}  ${n.nodeIp}  ${n.deathReason}`);
  out.push('Resources (used/total, alive nodes):');
  out.push(`  ${usedOfTotal(s.clusterResources, s.availableResources)}`);
  // Pending: queued on a node until its resources free up (not an error).
  // Infeasible: no node's totals could ever satisfy it; such a request
  // fails at once, and its shape is listed here for a minute.
  const byShape = (pick: (n: ClusterNodeStatus) => Array<{ shape: Record<string, number>; count: number }> | undefined) => {
    const m = new Map<string, number>();
    for (const n of alive) {
      for (const d of pick(n) ?? []) {
        const key = Object.entries(d.shape).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join(', ');
        m.set(key, (m.get(key) ?? 0) + d.count);
      }
    }
    return m;
  };
  const pending = byShape((n) => n.pendingDemand);
  const infeasible = byShape((n) => n.infeasibleDemand);
  out.push('Demands:');
  if (pending.size === 0 && infeasible.size === 0) out.push('  (no pending requests)');
  for (const [shape, count] of pending) out.push(`  {${shape}}: ${count} pending`);
  for (const [shape, count] of infeasible) out.push(`  {${shape}}: ${count} infeasible (no node can run it; refused)`);
  return out.join('\n') + '\n';
}
