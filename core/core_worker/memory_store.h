// MemoryStore: the in-process store of a CoreWorker for small values and
// for the status of every object this process knows about.
//
// An entry is either pending (value not produced yet) or ready. A ready
// entry holds the serialized value inline (<= 100 KiB by default), or
// records that the value lives in the node's plasma store, or holds a
// serialized error record (the task failed). Entries are erased when the
// reference counter frees the object.
// Thread safety: not thread-safe; its owner keeps it under the core lock
// (worker_context.h).
#pragma once

#include <memory>
#include <string>

#include "core/common/id.h"
#include "core/common/id_map.h"

namespace rayts {

struct StoredObject {
  bool ready = false;
  bool in_plasma = false;
  bool is_error = false;
  std::shared_ptr<const std::string> data;  // inline value or error record
  uint64_t size = 0;                        // value size in bytes
  NodeID location;  // in_plasma: the node holding the primary copy (nil: this process's node)
};

class MemoryStore {
 public:
  // Creates a pending entry if none exists.
  StoredObject& GetOrCreate(const ObjectID& id) { return objects_[id]; }
  const StoredObject* Find(const ObjectID& id) const {
    auto it = objects_.find(id);
    return it == objects_.end() ? nullptr : &it->second;
  }
  // Marks ready; returns false if it was already ready (first value wins).
  bool Put(const ObjectID& id, std::shared_ptr<const std::string> data, bool in_plasma,
           bool is_error, uint64_t size) {
    StoredObject& o = objects_[id];
    if (o.ready) return false;
    o.ready = true;
    o.in_plasma = in_plasma;
    o.is_error = is_error;
    o.data = std::move(data);
    o.size = size;
    return true;
  }
  void SetLocation(const ObjectID& id, const NodeID& node) {
    auto it = objects_.find(id);
    if (it != objects_.end()) it->second.location = node;
  }
  void Erase(const ObjectID& id) { objects_.erase(id); }
  size_t size() const { return objects_.size(); }
  uint64_t InlineBytes() const {
    uint64_t n = 0;
    for (auto& [id, o] : objects_) if (o.data) n += o.data->size();
    return n;
  }

 private:
  IdMap<ObjectID, StoredObject> objects_;
};

}  // namespace rayts
