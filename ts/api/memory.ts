// ray.memorySummary(): the objects this process knows, with their owner,
// size, where they live and what keeps them alive (Ray's `ray memory`), and
// the internal test hooks of the object layer.
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { RaySystemError } from './errors.js';
import { ObjectRef } from './object_ref.js';
import { requireRuntime } from '../runtime/current.js';
import { loadAddon, type NativeCoreWorker } from '../runtime/native.js';
import type { CoreMemorySummary } from '../runtime/ownership.js';
import type { StoreStats } from './api.js';
import { sessionRootPath } from './session.js';

/** Where an object's value lives: the owner's memory store, plasma, or only on the spill disk. */
export type ObjectLocation = 'memory' | 'plasma' | 'spilled' | 'none';

export interface ObjectSummary {
  /** Object id (hex). */
  id: string;
  /** Listen address of the owner process. */
  owner: string;
  /** True if this process owns the object. */
  ownedHere: boolean;
  /** 'pending' (being computed), 'ready', 'error' (holds an error), 'unknown' (borrowed, not fetched here). */
  status: 'pending' | 'ready' | 'error' | 'unknown';
  /**
   * 'memory': the owner's in-process store (small values); 'plasma': the
   * node's shared-memory store; 'spilled': its plasma copy is only on the
   * spill disk now (restored on access); 'none': not computed yet, or not
   * fetched here.
   */
  location: ObjectLocation;
  /** Value size in bytes (0 when not known here). */
  size: number;
  /** What keeps it alive, as counted by this process. */
  references: {
    /** ObjectRefs alive in this process. */
    local: number;
    /** Pending tasks submitted here that take it as an argument. */
    submitted: number;
    /** Objects whose value holds this ref (a put or return value containing it). */
    containedIn: number;
    /** Other processes borrowing it (owned objects only). */
    borrowers: number;
    /** Refs this object's value holds. */
    contains: number;
  };
  /** The owner keeps the task that created it: it can be recomputed if its plasma copy is lost. */
  lineage: boolean;
  /** In plasma: the node (hex id) holding the primary copy; '' otherwise. */
  node: string;
  /**
   * In plasma: the other nodes (hex ids) holding a copy, as this process
   * knows them (the owner: as those nodes reported their pulled copies).
   */
  copies: string[];
}

export interface MemorySummary {
  /** The process reporting (its listen address), its pid, and whether it is the driver. */
  address: string;
  pid: number;
  isDriver: boolean;
  objects: ObjectSummary[];
  totals: { objects: number; memoryBytes: number; plasmaBytes: number; spilledBytes: number };
  /** Lineage kept by this process; `reconstructions`: tasks it re-ran to recover lost objects. */
  lineage: { bytes: number; maxBytes: number; entries: number; evicted: number; reconstructions: number };
}

/**
 * The objects this process knows (it owns them or holds refs to them) and
 * what keeps each alive. In a driver this covers everything the program
 * created from the driver; objects owned by workers appear when the driver
 * borrows them.
 */
export async function memorySummary(): Promise<MemorySummary> {
  const rt = requireRuntime('ray.memorySummary()');
  const json = rt.core.memorySummary();
  const store = JSON.parse(await rt.query('StoreObjects')) as StoreStats;
  return summaryFromJson(json, spilledIds(store));
}

/** Ids (hex) of the store's objects whose only copy is on the spill disk. */
function spilledIds(store: StoreStats): Set<string> {
  const out = new Set<string>();
  for (const o of store.objects) if (o.location === 'spilled') out.add(o.id);
  return out;
}

function summaryFromJson(json: string | CoreMemorySummary, spilled: Set<string>): MemorySummary {
  const raw = typeof json === 'string' ? (JSON.parse(json) as CoreMemorySummary) : json;
  const objects: ObjectSummary[] = raw.objects.map((o) => ({
    id: o.id,
    owner: o.owner,
    ownedHere: o.owned,
    status: o.status,
    location: o.location === 'plasma' && spilled.has(o.id) ? 'spilled' : o.location,
    size: o.size,
    references: { local: o.local, submitted: o.submitted, containedIn: o.contained, borrowers: o.borrowers, contains: o.contains },
    lineage: o.lineage,
    node: o.node,
    copies: o.copies,
  }));
  let memoryBytes = 0;
  let plasmaBytes = 0;
  let spilledBytes = 0;
  for (const o of objects) {
    if (o.location === 'memory') memoryBytes += o.size;
    else if (o.location === 'plasma') plasmaBytes += o.size;
    else if (o.location === 'spilled') spilledBytes += o.size;
  }
  return {
    address: raw.address,
    pid: raw.pid,
    isDriver: raw.isDriver,
    objects,
    totals: { objects: objects.length, memoryBytes, plasmaBytes, spilledBytes },
    lineage: {
      bytes: raw.lineageBytes, maxBytes: raw.lineageMaxBytes, entries: raw.lineageEntries, evicted: raw.lineageEvicted,
      reconstructions: raw.reconstructions,
    },
  };
}

/** A running embedded cluster, found by its session directory. */
export interface SessionSummary {
  sessionDir: string;
  /** One summary per process that answered (driver first), and the sockets that did not. */
  processes: MemorySummary[];
  unreachable: string[];
}

/** Session directories of running rayts programs on this machine (embedded clusters). */
export function findSessions(base = sessionRootPath()): string[] {
  if (!existsSync(base)) return [];
  const out: string[] = [];
  for (const name of readdirSync(base)) {
    const m = /^session_(\d+)_/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0); // is the driver alive?
    } catch {
      continue;
    }
    if (existsSync(path.join(base, name, 'sockets', 'driver.sock'))) out.push(path.join(base, name));
  }
  return out;
}

/**
 * Asks every process of a session (the driver and its workers, over their
 * listen sockets) for its memory summary. Blocking round trips: for the
 * `rayts memory` command, not for use inside a program.
 */
export function querySession(sessionDir: string): SessionSummary {
  const dir = path.join(sessionDir, 'sockets');
  const socks = readdirSync(dir).filter((f) => f === 'driver.sock' || /^w-[0-9a-f]+\.sock$/.test(f));
  socks.sort((a, b) => (a === 'driver.sock' ? -1 : b === 'driver.sock' ? 1 : a.localeCompare(b)));
  const addon = loadAddon();
  const processes: MemorySummary[] = [];
  const unreachable: string[] = [];
  let spilled = new Set<string>();
  try {
    spilled = spilledIds(JSON.parse(addon.queryStoreObjects(path.join(dir, 'node.sock'))) as StoreStats);
  } catch {
    unreachable.push(path.join(dir, 'node.sock')); // locations then say 'plasma' for spilled objects too
  }
  for (const f of socks) {
    try {
      processes.push(summaryFromJson(addon.queryMemorySummary(path.join(dir, f)), spilled));
    } catch {
      unreachable.push(path.join(dir, f)); // the process exited meanwhile
    }
  }
  return { sessionDir, processes, unreachable };
}

/** The processes of one node of a cluster that answered, and the ones that did not (address: why). */
export interface NodeProcessSummaries {
  processes: MemorySummary[];
  unreachable: string[];
}

/**
 * Asks the node server at `nodeAddress` (ip:port, a node's
 * nodeManagerAddress) over TCP, with the cluster token, for its store
 * listing and its processes, then each process for its summary; each
 * connection waits at most `timeoutMs`. Throws when the node itself does not
 * answer. Blocking: for the `rayts memory --address` command.
 */
export function queryNodeProcesses(nodeAddress: string, token: string, timeoutMs: number): NodeProcessSummaries {
  const raw = JSON.parse(loadAddon().queryNodeMemory(nodeAddress, token, timeoutMs)) as {
    store: StoreStats | null; processes: CoreMemorySummary[]; unreachable: Array<{ address: string; error: string }>;
  };
  const spilled = raw.store === null ? new Set<string>() : spilledIds(raw.store);
  return {
    processes: raw.processes.map((p) => summaryFromJson(p, spilled)),
    unreachable: raw.unreachable.map((u) => `${u.address}: ${u.error}`),
  };
}

/** A text table of a summary, one object per line (as `ray memory` prints). */
export function formatMemorySummary(s: MemorySummary): string {
  const lines = [
    `${s.isDriver ? 'driver' : 'worker'} pid ${s.pid} (${s.address}): ${s.totals.objects} objects, ${s.totals.memoryBytes} bytes in memory, ` +
      `${s.totals.plasmaBytes} bytes in plasma, ${s.totals.spilledBytes} bytes spilled; lineage ${s.lineage.entries} tasks, ${s.lineage.bytes}/${s.lineage.maxBytes} bytes, ` +
      `${s.lineage.evicted} evicted`,
    ['OBJECT_ID'.padEnd(40), 'OWNER'.padEnd(8), 'STATUS'.padEnd(8), 'WHERE'.padEnd(7), 'SIZE'.padStart(12), '  REFERENCES'].join(' '),
  ];
  for (const o of s.objects) {
    const r = o.references;
    const kinds = [
      r.local ? `local ${r.local}` : '', r.submitted ? `submitted ${r.submitted}` : '',
      r.containedIn ? `contained ${r.containedIn}` : '', r.borrowers ? `borrowed-by ${r.borrowers}` : '',
      o.lineage ? 'lineage' : '', o.copies.length ? `copies on ${o.copies.length + 1} nodes` : '',
    ].filter((k) => k !== '').join(', ');
    lines.push([o.id.padEnd(40), (o.ownedHere ? 'here' : 'remote').padEnd(8), o.status.padEnd(8), o.location.padEnd(7),
      String(o.size).padStart(12), ` ${kinds}`].join(' '));
  }
  return lines.join('\n');
}

/**
 * Internal hooks for tests; not part of the stable API and may change.
 * `deleteFromStore(ref)` makes the node's object store lose its copy of a
 * plasma object now, as a node failure would (the owner's bookkeeping is
 * untouched), so a later get exercises lineage reconstruction. Only an
 * addon built with the test hooks has it (a checkout's `npm run build`;
 * not the prebuilt addons nor a build from source at install):
 * `hasTestHooks()` says whether this one does.
 */
export const _internal = {
  hasTestHooks(): boolean {
    const proto = loadAddon().NativeCoreWorker.prototype as Partial<NativeCoreWorker>;
    return typeof proto.loseFromStore === 'function';
  },
  deleteFromStore(ref: ObjectRef<unknown>): void {
    if (!(ref instanceof ObjectRef)) throw new TypeError('_internal.deleteFromStore expects an ObjectRef');
    const core = requireRuntime('_internal.deleteFromStore()').core;
    if (core.loseFromStore === undefined) {
      throw new RaySystemError('_internal.deleteFromStore(): this addon was built without the test hooks (build it with `npm run build`, which turns RAYTS_TEST_HOOKS on)');
    }
    core.loseFromStore(ref.binary);
  },
};
