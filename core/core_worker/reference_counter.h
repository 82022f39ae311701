// ReferenceCounter: per-process counts of the references to each object,
// owner side and borrower side (Ray's ownership design, NSDI'21).
//
// Counts per object:
//  - local: ObjectRefs alive in this process's JS heap;
//  - submitted: pending tasks submitted here that hold the object (as a
//    top-level argument, or nested inside a by-value argument);
//  - contained: objects whose value holds this ref (a ray.put value or a task
//    return value containing it); released when that outer object is freed;
//  - borrowers (owned objects only): other processes holding the object, by
//    listen address, with a registration count each.
// A borrowed entry (owner elsewhere) also records `registered`: how many
// registrations this process holds at the owner; the release callback gives
// them back (RemoveBorrower).
// An entry is released when local, submitted and contained are zero and it
// has no borrower; release then drops the `contained` count of every ref its
// value holds (`contains`), which may release those in turn.
// Invariants: counts never go negative (a bad decrement is ignored and
// counted in `bad_decrements()`); an entry is released exactly once; an owned
// entry with a borrower is never released.
// Thread safety: not thread-safe; its owner keeps it under the core lock
// (worker_context.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/common/id.h"
#include "core/common/id_map.h"

namespace rayts {

class ReferenceCounter {
 public:
  // One per object this process knows (a million queued tasks: a million
  // of these), so kept small: 32-bit counts, and the borrower table (owned
  // objects that were shared only) allocated on first use.
  struct Ref {
    int32_t local = 0;
    int32_t submitted = 0;
    int32_t contained = 0;
    bool owned = false;
    std::string owner_address;                  // empty when owned by this process
    // owned: borrower address -> registrations; null while there is none.
    std::unique_ptr<std::map<std::string, int64_t>> borrowers;
    int64_t registered = 0;                     // borrowed: registrations held at the owner
    std::vector<ObjectID> contains;             // refs held by this object's value
    bool Unused() const {
      return local == 0 && submitted == 0 && contained == 0 && (!borrowers || borrowers->empty());
    }
    int64_t BorrowerCount() const {
      int64_t n = 0;
      if (borrowers) for (auto& [a, c] : *borrowers) n += c > 0 ? 1 : 0;
      return n;
    }
  };
  using ReleaseFn = std::function<void(const ObjectID&, const Ref&)>;

  explicit ReferenceCounter(ReleaseFn on_release) : on_release_(std::move(on_release)) {}

  // A new object this process owns, with `local` handles already held.
  void AddOwned(const ObjectID& id, int64_t local = 1);
  // A handle to an object appeared in this process. Returns true if this
  // created a borrowed entry (the caller must register with the owner).
  bool AddLocal(const ObjectID& id, const std::string& owner_address);
  void RemoveLocal(const ObjectID& id, int64_t n = 1) { Dec(id, n, kLocal); }
  // A pending task holds the object. Existing entries only.
  void AddSubmitted(const ObjectID& id);
  // As AddSubmitted, creating a borrowed entry if needed (returns true then).
  bool AddSubmittedRef(const ObjectID& id, const std::string& owner_address);
  void RemoveSubmitted(const ObjectID& id) { Dec(id, 1, kSubmitted); }
  // `inner` is held by the value of an object this process owns or knows.
  // Returns true if this created a borrowed entry.
  bool AddContained(const ObjectID& inner, const std::string& owner_address);
  void RemoveContained(const ObjectID& inner) { Dec(inner, 1, kContained); }
  // Records the refs held by `outer`'s value (each already counted with
  // AddContained); they are released with it. False if `outer` is unknown.
  bool SetContains(const ObjectID& outer, std::vector<ObjectID> inners);

  // Owner side. False (nothing recorded) if `id` is not an owned live entry.
  bool AddBorrower(const ObjectID& id, const std::string& address, int64_t n = 1);
  void RemoveBorrower(const ObjectID& id, const std::string& address, int64_t n);
  // The process at `address` died: drop all its registrations. Returns the
  // ids it had borrowed.
  std::vector<ObjectID> DropBorrower(const std::string& address);
  // Borrower side: `n` more registrations at the owner belong to this process
  // (made on its behalf). False if the entry is unknown.
  bool AddRegistered(const ObjectID& id, int64_t n = 1);
  void SetRegistered(const ObjectID& id, int64_t n);
  // Releases `id` now if nothing holds it (an entry created with zero counts).
  void ReleaseIfUnused(const ObjectID& id);

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
  enum Kind { kLocal, kSubmitted, kContained };
  // Returns {entry, created-borrowed}.
  std::pair<Ref*, bool> Touch(const ObjectID& id, const std::string& owner_address);
  void Dec(const ObjectID& id, int64_t n, Kind kind);
  void MaybeRelease(const ObjectID& id);

  ReleaseFn on_release_;
  IdMap<ObjectID, Ref> refs_;
  uint64_t bad_decrements_ = 0;
};

}  // namespace rayts
