// `rayts memory --address`: the memory summary of every process of every
// alive node of a cluster. The GCS lists the nodes; each node server (over
// TCP, with the token) lists its processes and its store, and each process
// answers for itself (api/memory.ts queryNodeProcesses).
import { formatMemorySummary, queryNodeProcesses, type MemorySummary } from '../api/memory.js';
import { queryStatus } from './status.js';

export interface NodeMemory {
  nodeId: string;
  nodeIp: string;
  isHead: boolean;
  /** The node server's TCP address the summary was read from. */
  nodeManagerAddress: string;
  /** One summary per process that answered, drivers first. */
  processes: MemorySummary[];
  /** The processes that did not answer ("address: why"). */
  unreachable: string[];
  /** Set when the node itself did not answer (then `processes` is empty). */
  error?: string;
}

export interface ClusterMemory {
  address: string;
  nodes: NodeMemory[];
}

/** Asks every alive node of the cluster at `address`; every connection waits at most `timeoutMs`. */
export async function queryClusterMemory(address: string, token: string, timeoutMs: number): Promise<ClusterMemory> {
  const status = await queryStatus(address, token, timeoutMs);
  const nodes = status.nodes.filter((n) => n.alive).map((n): NodeMemory => {
    const base = { nodeId: n.nodeId, nodeIp: n.nodeIp, isHead: n.isHead, nodeManagerAddress: n.nodeManagerAddress };
    if (n.nodeManagerAddress === '') return { ...base, processes: [], unreachable: [], error: 'the node listens on no TCP port' };
    try {
      return { ...base, ...queryNodeProcesses(n.nodeManagerAddress, token, timeoutMs) };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return { ...base, processes: [], unreachable: [], error: `no answer within ${timeoutMs} ms: ${msg}` };
    }
  });
  nodes.sort((a, b) => Number(b.isHead) - Number(a.isHead) || a.nodeId.localeCompare(b.nodeId));
  return { address, nodes };
}

export function formatClusterMemory(m: ClusterMemory): string {
  const out: string[] = [`======== Memory of the cluster at ${m.address}: ${m.nodes.length} alive nodes ========`];
  for (const n of m.nodes) {
    out.push('', `node ${n.nodeId} (${n.nodeIp}${n.isHead ? ', head' : ''}, ${n.nodeManagerAddress}): ` +
      (n.error !== undefined ? `did not answer (${n.error})` : `${n.processes.length} processes`));
    for (const p of n.processes) out.push(formatMemorySummary(p), '');
    for (const u of n.unreachable) out.push(`(no answer from ${u})`);
  }
  return `${out.join('\n')}\n`;
}
