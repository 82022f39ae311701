// LineageCache: the owner's record of the tasks that created the objects it
// owns, kept so a lost plasma copy can be recomputed (lineage reconstruction).
//
// An entry is pinned while one of its task's return objects is still
// referenced (`live_returns` > 0) or while the lineage of a pinned dependent
// task needs it (`dependents` > 0: entries whose task takes one of this
// task's returns as an argument). Unpinned entries are dropped, which may
// unpin their parents in turn. The total size is bounded (`max_bytes`): past
// it, the oldest entries are evicted, pinned or not; objects whose lineage
// was evicted are no longer recomputable.
// The payload (the task's spec) is opaque here: CoreWorker stores its
// SubmitRequest.
// Invariants: bytes() is the sum of the sizes of the entries held;
// bytes() <= max_bytes after every Add; a parent's `dependents` counts the
// held entries that name it.
// Thread safety: not thread-safe; its owner keeps it under the core lock
// (worker_context.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/common/id.h"

namespace rayts {

class LineageCache {
 public:
  struct Entry {
    std::shared_ptr<const void> spec;  // the creating task's spec (owner's SubmitRequest)
    uint64_t bytes = 0;
    uint64_t seq = 0;                  // insertion order (eviction: oldest first)
    int64_t live_returns = 0;
    int64_t dependents = 0;
    int reconstructions_left = 0;      // -1: unbounded
    std::vector<TaskID> parents;       // creating tasks of its owned by-ref arguments
  };

  explicit LineageCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  void set_max_bytes(uint64_t n) { max_bytes_ = n; EvictOverBound(); }
  uint64_t max_bytes() const { return max_bytes_; }

  // Records finished task `task`; `live_returns` of its returns are still
  // referenced; `parents` are the tasks that created its owned by-ref
  // arguments (only those held here are linked). A task without live
  // returns is not kept; an entry already held for `task` is left as it is.
  void Add(const TaskID& task, std::shared_ptr<const void> spec, uint64_t bytes, int64_t live_returns,
           const std::vector<TaskID>& parents, int reconstructions);
  // One return object of `task` was freed by its owner.
  void ReturnReleased(const TaskID& task);
  // A return object of `task` is referenced again (recreated for a recovery).
  void ReturnRevived(const TaskID& task);

  Entry* Find(const TaskID& task) {
    auto it = entries_.find(task);
    return it == entries_.end() ? nullptr : &it->second;
  }
  bool Has(const TaskID& task) const { return entries_.count(task) != 0; }
  size_t size() const { return entries_.size(); }
  uint64_t bytes() const { return bytes_; }
  uint64_t evicted() const { return evicted_; }

 private:
  void Remove(const TaskID& task);
  void MaybeDrop(const TaskID& task);
  void EvictOverBound();

  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t evicted_ = 0;
  std::unordered_map<TaskID, Entry, IdHash> entries_;
  std::map<uint64_t, TaskID> by_seq_;
};

}  // namespace rayts
