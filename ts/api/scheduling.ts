// schedulingStrategy: where a task's or an actor's worker lease may go in a
// cluster (Ray's scheduling strategies). In an embedded cluster there is one
// node, and every strategy that names it (or none) runs there.
//   'DEFAULT'  the hybrid policy: pack onto a node until half its CPUs are
//              in use, then spread over the least used ones.
//   'SPREAD'   round robin over the nodes that can run it.
//   { nodeId, soft }  node affinity: that node (ray.nodes()[i].nodeId, or
//              getRuntimeContext().nodeId); when it is dead, unknown or
//              cannot run it, soft: false fails at once naming the node,
//              soft: true places it like 'DEFAULT'.

/** Node affinity: run on the node `nodeId` (32 hex digits). */
export interface NodeAffinityStrategy {
  nodeId: string;
  /** When that node is dead, unknown or cannot run the task: false (default) fails at once, true runs it elsewhere. */
  soft?: boolean;
}

export type SchedulingStrategy = 'DEFAULT' | 'SPREAD' | NodeAffinityStrategy;

const NODE_ID = /^[0-9a-f]{32}$/;

/** Checks a schedulingStrategy option: TypeError/RangeError naming it. */
export function validateSchedulingStrategy(v: unknown): SchedulingStrategy {
  if (typeof v === 'string') {
    if (v === 'DEFAULT' || v === 'SPREAD') return v;
    throw new RangeError(`schedulingStrategy must be 'DEFAULT', 'SPREAD' or { nodeId, soft }, got '${v}'`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`schedulingStrategy must be 'DEFAULT', 'SPREAD' or { nodeId, soft }, got ${v === null ? 'null' : typeof v}`);
  }
  for (const key of Object.keys(v)) {
    if (key !== 'nodeId' && key !== 'soft') {
      throw new TypeError(`schedulingStrategy: unknown field '${key}' (a node affinity is { nodeId, soft })`);
    }
  }
  const { nodeId, soft } = v as { nodeId?: unknown; soft?: unknown };
  if (typeof nodeId !== 'string') {
    throw new TypeError(`schedulingStrategy.nodeId must be a node id (a string of 32 hex digits), got ${typeof nodeId}`);
  }
  if (!NODE_ID.test(nodeId)) {
    throw new RangeError(`schedulingStrategy.nodeId must be a node id (32 lowercase hex digits, as ray.nodes() lists them), got '${nodeId}'`);
  }
  if (soft !== undefined && typeof soft !== 'boolean') {
    throw new TypeError(`schedulingStrategy.soft must be a boolean, got ${typeof soft}`);
  }
  return soft === undefined ? { nodeId } : { nodeId, soft };
}

/** The strategy as the addon takes it: '' (default), 'SPREAD', '<node id>' or '<node id>:soft'. */
export function nativeScheduling(s: SchedulingStrategy | undefined): string {
  if (s === undefined || s === 'DEFAULT') return '';
  if (s === 'SPREAD') return 'SPREAD';
  return s.soft === true ? `${s.nodeId}:soft` : s.nodeId;
}
