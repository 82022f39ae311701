// ReferenceCounter: owner-side counts of the references to each object.
//
// Counts per object: local handles (ObjectRefs alive in this process's JS
// heap) and submitted-task references (pending tasks that take the object as
// an argument). An object is released when both reach zero; the release
// callback then frees its value (memory store entry, plasma copy if owned).
// Invariants: counts never go negative (a decrement of an unknown or zero
// count is ignored and counted in `bad_decrements()` for tests); an object
// is released exactly once.
// Thread safety: not thread-safe; CoreWorker guards it with its mutex.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>

#include "core/common/id.h"

namespace rayts {

class ReferenceCounter {
 public:
  struct Ref {
    int64_t local = 0;
    int64_t submitted = 0;
    bool owned = false;
    std::string owner_address;  // empty when owned by this process
  };
  using ReleaseFn = std::function<void(const ObjectID&, const Ref&)>;

  explicit ReferenceCounter(ReleaseFn on_release) : on_release_(std::move(on_release)) {}

  // A new object this process owns, with `local` handles already held.
  void AddOwned(const ObjectID& id, int64_t local = 1) {
    Ref& r = refs_[id];
    r.owned = true;
    r.local += local;
  }
  // A handle to an object (owned or borrowed) appeared in this process.
  void AddLocal(const ObjectID& id, const std::string& owner_address) {
    auto [it, inserted] = refs_.try_emplace(id);
    if (inserted) {
      it->second.owned = owner_address.empty();
      it->second.owner_address = owner_address;
    }
    it->second.local++;
  }
  void RemoveLocal(const ObjectID& id, int64_t n = 1) { Dec(id, n, false); }
  void AddSubmitted(const ObjectID& id) {
    auto it = refs_.find(id);
    if (it != refs_.end()) it->second.submitted++;
  }
  void RemoveSubmitted(const ObjectID& id) { Dec(id, 1, true); }

  bool Has(const ObjectID& id) const { return refs_.count(id) != 0; }
  const Ref* Find(const ObjectID& id) const {
    auto it = refs_.find(id);
    return it == refs_.end() ? nullptr : &it->second;
  }
  size_t size() const { return refs_.size(); }
  uint64_t bad_decrements() const { return bad_decrements_; }
  template <typename F>
  void ForEach(F&& f) const { for (auto& [id, r] : refs_) f(id, r); }

 private:
  void Dec(const ObjectID& id, int64_t n, bool submitted) {
    auto it = refs_.find(id);
    if (it == refs_.end()) { bad_decrements_++; return; }
    int64_t& c = submitted ? it->second.submitted : it->second.local;
    if (c < n) { bad_decrements_++; c = 0; } else { c -= n; }
    if (it->second.local == 0 && it->second.submitted == 0) {
      Ref r = std::move(it->second);
      refs_.erase(it);
      on_release_(id, r);
    }
  }

  ReleaseFn on_release_;
  std::unordered_map<ObjectID, Ref, IdHash> refs_;
  uint64_t bad_decrements_ = 0;
};

}  // namespace rayts
