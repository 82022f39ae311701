#include "core/raylet/node_stats.h"

#include <string>
#include <utility>
#include <vector>

#include "core/protocol/connection.h"
#include "core/raylet/memory_monitor.h"

namespace rayts::raylet {

flatbuffers::DetachedBuffer BuildNodeStatsReply(uint64_t request_id, const NodeStatsSources& s) {
  std::vector<std::pair<const char*, double>> stats = {
      {"storeCapacity", static_cast<double>(s.store->capacity())},
      {"storeUsed", static_cast<double>(s.store->used_bytes())},
      {"storeObjects", static_cast<double>(s.store->num_objects())},
      {"storePinned", static_cast<double>(s.store->pinned_bytes())},
      {"storeEvicted", static_cast<double>(s.store->evicted_count())},
      {"spillUsed", static_cast<double>(s.store->spilled_bytes())},
      {"spillLimit", static_cast<double>(s.store->spill_limit())},
      {"spilledObjects", static_cast<double>(s.store->num_spilled())},
      {"spillCount", static_cast<double>(s.store->spill_count())},
      {"restoreCount", static_cast<double>(s.store->restore_count())},
      {"prefaulted", static_cast<double>(s.region->prefaulted_bytes())},
      {"leased", static_cast<double>(s.leases->num_leased())},
      {"queuedLeases", static_cast<double>(s.leases->num_queued())},
      {"workers", static_cast<double>(s.pool->AllWorkers().size())},
      {"idleWorkers", static_cast<double>(s.pool->num_idle())},
      {"clients", static_cast<double>(s.clients)},
      {"oomKills", static_cast<double>(s.oom_kills)},
      {"memoryThreshold", s.memory_threshold},
      {"viewNodes", static_cast<double>(s.view_nodes)},
      {"spilledLeases", static_cast<double>(s.spilled_leases)},
  };
  if (s.pulls) {
    stats.emplace_back("pullsStarted", static_cast<double>(s.pulls->started));
    stats.emplace_back("pullsMerged", static_cast<double>(s.pulls->merged));
    stats.emplace_back("pullsCompleted", static_cast<double>(s.pulls->completed));
    stats.emplace_back("pullsFailed", static_cast<double>(s.pulls->failed));
    stats.emplace_back("pullsQueued", static_cast<double>(s.pulls->queued));
    stats.emplace_back("pullsRetried", static_cast<double>(s.pulls->retried));
    stats.emplace_back("pulledBytes", static_cast<double>(s.pulls->bytes));
    stats.emplace_back("servedChunks", static_cast<double>(s.served_chunks));
    stats.emplace_back("servedSpilledChunks", static_cast<double>(s.served_spilled_chunks));
    stats.emplace_back("deadNodes", static_cast<double>(s.dead_nodes));
  }
  // The memory monitor's view of the node (tests compute thresholds from it).
  auto m = ReadNodeMemory();
  if (m.ok()) {
    stats.emplace_back("memoryUsed", static_cast<double>(m->used_bytes));
    stats.emplace_back("memoryTotal", static_cast<double>(m->total_bytes));
  }
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<proto::StatEntry>> entries;
  entries.reserve(stats.size());
  for (auto& [name, value] : stats) entries.push_back(proto::CreateStatEntry(fbb, fbb.CreateString(name), value));
  auto v = fbb.CreateVector(entries);
  return FinishFrame(fbb, proto::CreateNodeStatsReply(fbb, request_id, v));
}

flatbuffers::DetachedBuffer BuildStoreObjectsReply(uint64_t request_id, const NodeStatsSources& s) {
  const plasma::PlasmaStore& store = *s.store;
  auto objects = store.ListObjects();
  flatbuffers::FlatBufferBuilder fbb(256 + 64 * objects.size());
  std::vector<flatbuffers::Offset<proto::StoreObjectEntry>> entries;
  entries.reserve(objects.size());
  for (const auto& o : objects) {
    auto where = o.in_memory ? (o.spilled ? proto::StoreLocation::Both : proto::StoreLocation::Memory)
                             : proto::StoreLocation::Spilled;
    auto id = fbb.CreateVector(o.id.data(), ObjectID::kSize);
    entries.push_back(proto::CreateStoreObjectEntry(fbb, id, o.size, o.sealed, where, o.pinned, o.refs));
  }
  auto v = fbb.CreateVector(entries);
  auto dir = fbb.CreateString(s.spill ? s.spill->dir() : std::string());
  return FinishFrame(fbb, proto::CreateStoreObjectsReply(
                              fbb, request_id, store.capacity(), store.used_bytes(), store.pinned_bytes(), dir,
                              store.spilled_bytes(), store.spill_limit(), store.num_spilled(), store.spill_count(),
                              store.restore_count(), v));
}

}  // namespace rayts::raylet
