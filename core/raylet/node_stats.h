// Node-local queries: the node server's answers to NodeStatsRequest (store,
// spill, lease and worker counters) and StoreObjectsRequest (the store's
// object listing), as typed reply frames (core/protocol/messages.fbs).
//
// Role: the read-only view of a node's parts for ray.storeStats(),
// ray.memorySummary() and the tests; gcs_client.h renders the replies as
// JSON for JavaScript.
// Ownership: NodeStatsSources borrows the parts; they outlive each call.
// Thread safety: call on the node server's io thread (the parts are not
// thread-safe).
#pragma once

#include <cstdint>

#include <flatbuffers/flatbuffers.h>

#include "core/plasma/plasma_store.h"
#include "core/plasma/shm_region.h"
#include "core/plasma/spill_store.h"
#include "core/raylet/lease_manager.h"
#include "core/raylet/object_pull.h"
#include "core/raylet/worker_pool.h"

namespace rayts::raylet {

struct NodeStatsSources {
  const plasma::PlasmaStore* store = nullptr;
  const plasma::ShmRegion* region = nullptr;
  const plasma::SpillStore* spill = nullptr;  // null: spilling off
  const LeaseManager* leases = nullptr;
  const WorkerPool* pool = nullptr;
  size_t clients = 0;
  uint64_t oom_kills = 0;
  double memory_threshold = 0;
  size_t view_nodes = 0;       // cluster mode: nodes in the cluster view, this one included
  uint64_t spilled_leases = 0;  // cluster mode: lease requests sent on to another node
  const PullManager::Stats* pulls = nullptr;  // cluster mode: objects pulled from other nodes
  uint64_t served_chunks = 0;   // cluster mode: chunks sent to nodes pulling from this one
  uint64_t served_spilled_chunks = 0;  // of which read from spill files
  size_t dead_nodes = 0;        // cluster mode: other nodes' deaths handled (NodeDied)
};

// NodeStatsReply: storeCapacity, storeUsed, storeObjects, storePinned,
// storeEvicted, spillUsed, spillLimit, spilledObjects, spillCount,
// restoreCount, prefaulted, leased, queuedLeases, workers, idleWorkers,
// clients, oomKills, memoryThreshold, viewNodes, spilledLeases, (cluster mode) pullsStarted,
// pullsMerged, pullsCompleted, pullsFailed, pullsQueued, pullsRetried, pulledBytes, servedChunks,
// servedSpilledChunks, deadNodes, and (when readable) memoryUsed and
// memoryTotal of the node, the memory monitor's view.
flatbuffers::DetachedBuffer BuildNodeStatsReply(uint64_t request_id, const NodeStatsSources& s);

// StoreObjectsReply: capacities and counters, and every object with its
// size, sealed, location (memory / spilled / both), pinned and refs.
flatbuffers::DetachedBuffer BuildStoreObjectsReply(uint64_t request_id, const NodeStatsSources& s);

}  // namespace rayts::raylet
