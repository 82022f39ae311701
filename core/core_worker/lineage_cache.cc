#include "core/core_worker/lineage_cache.h"

namespace rayts {

void LineageCache::Add(const TaskID& task, std::shared_ptr<const void> spec, uint64_t bytes, int64_t live_returns,
                       const std::vector<TaskID>& parents, int reconstructions) {
  if (entries_.count(task)) return;  // re-run of a kept task: links and budget unchanged
  if (live_returns <= 0 || bytes > max_bytes_) return;
  Entry e;
  e.spec = std::move(spec);
  e.bytes = bytes;
  e.seq = next_seq_++;
  e.live_returns = live_returns;
  e.reconstructions_left = reconstructions;
  for (auto& p : parents) {
    auto it = entries_.find(p);
    if (it == entries_.end() || p == task) continue;
    it->second.dependents++;
    e.parents.push_back(p);
  }
  by_seq_[e.seq] = task;
  bytes_ += e.bytes;
  entries_.emplace(task, std::move(e));
  EvictOverBound();
}

void LineageCache::ReturnReleased(const TaskID& task) {
  auto it = entries_.find(task);
  if (it == entries_.end()) return;
  if (it->second.live_returns > 0) it->second.live_returns--;
  MaybeDrop(task);
}

void LineageCache::ReturnRevived(const TaskID& task) {
  auto it = entries_.find(task);
  if (it != entries_.end()) it->second.live_returns++;
}

void LineageCache::MaybeDrop(const TaskID& task) {
  auto it = entries_.find(task);
  if (it == entries_.end()) return;
  if (it->second.live_returns > 0 || it->second.dependents > 0) return;
  Remove(task);
}

void LineageCache::Remove(const TaskID& task) {
  auto it = entries_.find(task);
  if (it == entries_.end()) return;
  std::vector<TaskID> parents = std::move(it->second.parents);
  bytes_ -= it->second.bytes;
  by_seq_.erase(it->second.seq);
  entries_.erase(it);
  for (auto& p : parents) {
    auto pit = entries_.find(p);
    if (pit == entries_.end()) continue;
    if (pit->second.dependents > 0) pit->second.dependents--;
    MaybeDrop(p);
  }
}

void LineageCache::EvictOverBound() {
  while (bytes_ > max_bytes_ && !by_seq_.empty()) {
    TaskID oldest = by_seq_.begin()->second;
    evicted_++;
    Remove(oldest);
  }
}

}  // namespace rayts
