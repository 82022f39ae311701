// ObjectManager: the objects this process knows: the ones it owns (puts and
// task results) and the ones it borrows, their values (MemoryStore, inline
// bytes or "in plasma"), who waits for them, and fetching borrowed values
// from their owners.
//
// Role: ray.put (inline or plasma), reads (TryGet, ReadyMask), local refs of
// the host's ObjectRefs (AddLocalRef/RemoveLocalRefs on the ReferenceCounter),
// readiness (Subscribe: a kObjectReady event once ready; at once if it is),
// owner side of GetObject (answers now or when ready; a lost plasma copy
// asks the host to reconstruct it), borrower side (GetObject to the owner,
// ReportLost). Results and errors of tasks land here (StoreResultLocked,
// StoreErrorLocked); each readiness is passed on to the task manager's
// dependency wait (Hooks::on_ready). When the ReferenceCounter releases an
// object, OnReleasedLocked frees its plasma copy, gives borrowed
// registrations back (BorrowerProtocol) and tells the rest (on_owned_released).
// In a cluster it also keeps where the copies of each plasma object are
// (object_locations.cc): the primary's node and the other nodes holding a
// copy, as those nodes report them; getters are told them all, frees reach
// them, and a copy becomes the primary when the primary's node dies.
// Ownership: owned by the CoreWorker; the ReferenceCounter is the
// CoreWorker's (shared with BorrowerProtocol and TaskManager).
// Thread safety: public methods without the Locked suffix take the core
// lock (worker_context.h); *Locked methods require it. Hooks run with it held.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/core_worker/borrower_protocol.h"
#include "core/core_worker/memory_store.h"
#include "core/core_worker/plasma_client.h"
#include "core/core_worker/reference_counter.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class ObjectManager {
 public:
  struct Hooks {
    std::function<void(const ObjectID&)> on_ready;           // a value (or error) is now ready
    std::function<void(const ObjectID&)> on_owned_released;  // an owned object was released everywhere
    // The owner of `id` when it is not this process (a return value of a
    // task executing here belongs to its caller); nil otherwise.
    std::function<WorkerID(const ObjectID&)> owner_of;
  };
  ObjectManager(WorkerContext& ctx, Transport& transport, PlasmaClient* plasma, ReferenceCounter* refs,
                BorrowerProtocol& borrowers)
      : ctx_(ctx), transport_(transport), plasma_(plasma), refs_(refs), borrowers_(borrowers) {}
  void SetHooks(Hooks hooks) { hooks_ = std::move(hooks); }

  // ---- host calls (take the core lock) ----
  ObjectID NextPutId();
  void PutInline(const ObjectID& id, std::shared_ptr<const std::string> data);
  // NextPutId + PutInline under one lock.
  ObjectID PutInlineNew(std::shared_ptr<const std::string> data);
  // Where to pull `id` from when it is in plasma on another node: the
  // primary's node, its size, the other copies and the owner (node nil:
  // here, or not in plasma, or unknown). object_locations.cc.
  PullFrom RemoteLocation(const ObjectID& id);
  // Allocates `size` bytes in plasma for `id`; the host writes, then seals.
  // allow_spill = false: the store answers OutOfMemory rather than spill.
  StatusOr<uint64_t> PlasmaCreate(const ObjectID& id, uint64_t size, bool allow_spill = true);
  Status PlasmaSeal(const ObjectID& id, bool owned_put);
  LookupResult TryGet(const ObjectID& id);
  // Emits kObjectReady for `id` once it is ready (at once if it already is).
  void Subscribe(const ObjectID& id, const std::string& owner_address);
  void AddLocalRef(const ObjectID& id, const std::string& owner_address);
  void AddLocalRefs(const std::vector<std::pair<ObjectID, std::string>>& refs);
  // The same for refs given packed: `n` ids of ObjectID::kSize bytes each, the
  // i-th owned by owners[owner_of[i]] ('' or this process's address: here).
  // No string per ref: a decoded value holds thousands, mostly of one owner.
  void AddLocalRefs(const uint8_t* ids, size_t n, const uint32_t* owner_of, const std::vector<std::string>& owners);
  // RemoveLocalRefs of `n` packed ids.
  void RemoveLocalRefs(const uint8_t* ids, size_t n);
  // out[i] = 1 if ids[i] is ready in this process (value, error or plasma
  // on this node), 2 if ready in plasma on another node, else 0.
  void ReadyMask(const std::vector<ObjectID>& ids, uint8_t* out);
  // ray.wait fetchLocal (object_fetch.cc): a kObjectLocal event for each id
  // once its value is on this node: at once unless it is in plasma on
  // another node, else when this node's server has pulled it (FetchObject;
  // also when the pull failed: the get that follows says why).
  void FetchLocal(const std::vector<ObjectID>& ids);
  void OnFetchReplyLocked(const proto::FetchObjectReply& r) REQUIRES(core_lock);
  void RemoveLocalRefs(const std::vector<ObjectID>& ids);
  // Borrower: the plasma copy of `id` is missing; ask its owner to recover it
  // (the local entry becomes pending; kObjectReady follows).
  void ReportLost(const ObjectID& id, const std::string& owner_address);

  // ---- components (core lock held) ----
  MemoryStore& store() REQUIRES(core_lock) { return store_; }
  const MemoryStore& store() const REQUIRES(core_lock) { return store_; }
  // A task's return object from its reply (value or error; nested refs adopted).
  void StoreResultLocked(const ObjectID& id, const proto::ReturnObject* ret) REQUIRES(core_lock);
  // `id` is ready with the error record `json`.
  void StoreErrorLocked(const ObjectID& id, const std::string& json) REQUIRES(core_lock);
  // Stores `data` as the (error) value of `id` and makes it ready.
  void PutErrorLocked(const ObjectID& id, const std::shared_ptr<const std::string>& data) REQUIRES(core_lock);
  // Tells whoever waits for `id` (host subscription, remote getters, tasks).
  void ObjectReadyLocked(const ObjectID& id) REQUIRES(core_lock);
  // GetObject from a borrower (we own `id`).
  void OnGetObjectLocked(const std::shared_ptr<Link>& from, const proto::GetObject& g) REQUIRES(core_lock);
  void OnGetObjectReplyLocked(const proto::GetObjectReply& r) REQUIRES(core_lock);
  // The owner at `address` died: fetches from it fail.
  void OnOwnerGoneLocked(const std::string& address, const std::string& why = "") REQUIRES(core_lock);
  // Node `dead` died: fetches from owners that lived there fail
  // (OwnerDiedError naming the node's death). Returns the owned objects
  // whose primary plasma copy was there (lost: the caller recovers them).
  std::vector<ObjectID> OnNodeDeadLocked(const DeadNode& dead) REQUIRES(core_lock);
  // A recovery of `id` failed: the processes waiting for it are told why.
  void FailRemoteWaitersLocked(const ObjectID& id, const Status& s) REQUIRES(core_lock);
  // The host handled (or is handling) a kRecoverObject for `id`.
  void RecoveryStartedLocked(const ObjectID& id) REQUIRES(core_lock) { recover_requested_.erase(id); }
  // Called by the ReferenceCounter: `id` is no longer referenced anywhere.
  void OnReleasedLocked(const ObjectID& id, const ReferenceCounter::Ref& ref) REQUIRES(core_lock);

  // ---- locations of copies (object_locations.cc) ----
  // A node reports the copies of our objects it gained and lost.
  void OnLocationsUpdateLocked(const proto::ObjectLocationsUpdate& u) REQUIRES(core_lock);
  // An owned object whose primary copy is lost (its node died, or a read
  // found it missing): another copy on an alive node becomes the primary
  // (its `location`; PinObjects pins it there). False when there is none.
  bool PromoteCopyLocked(const ObjectID& id) REQUIRES(core_lock);
  // The nodes holding a copy of `id` besides the primary's (owner: as the
  // nodes reported them; borrower: as the owner named them).
  const std::vector<NodeID>* CopiesOfLocked(const ObjectID& id) const REQUIRES(core_lock) {
    auto it = copies_.find(id);
    return it == copies_.end() || it->second.held.empty() ? nullptr : &it->second.held;
  }

 private:
  void AddLocalRefLocked(const ObjectID& id, const std::string& owner_address) REQUIRES(core_lock);
  void PutOwnedLocked(const ObjectID& id, std::shared_ptr<const std::string> data) REQUIRES(core_lock);
  // Tells this node's server to free `id`'s copies on `nodes` (FreeObjects).
  void FreeCopiesLocked(const ObjectID& id, const std::vector<NodeID>& nodes) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  PlasmaClient* const plasma_;  // thread-safe (its channel's lock); nullptr in tests without a node
  ReferenceCounter* const refs_ PT_GUARDED_BY(core_lock);
  BorrowerProtocol& borrowers_;
  Hooks hooks_;
  MemoryStore store_ GUARDED_BY(core_lock);
  IdSet<ObjectID> js_subscribed_ GUARDED_BY(core_lock);
  std::unordered_map<ObjectID, std::vector<std::pair<std::shared_ptr<Link>, uint64_t>>, IdHash> remote_waiters_
      GUARDED_BY(core_lock);
  std::unordered_set<ObjectID, IdHash> borrowed_fetching_ GUARDED_BY(core_lock);
  std::unordered_set<ObjectID, IdHash> recover_requested_ GUARDED_BY(core_lock);  // kRecoverObject emitted, not handled yet
  std::unordered_map<ObjectID, uint64_t, IdHash> creating_sizes_ GUARDED_BY(core_lock);  // PlasmaCreate -> PlasmaSeal
  // Copies besides the primary. held: the nodes holding one (owner: as the
  // nodes reported them, ObjectLocationsUpdate; borrower: as the owner named
  // them, ReturnObject.copies). asked (owner only): other nodes whose
  // processes asked for the object and have not reported a copy (they may be
  // pulling one). Both are freed with the object; a dead node leaves both.
  struct Copies {
    std::vector<NodeID> held;
    std::vector<NodeID> asked;
  };
  std::unordered_map<ObjectID, Copies, IdHash> copies_ GUARDED_BY(core_lock);
  // held, minus `except`, as ids concatenated (ReturnObject.copies, PullFrom.sources).
  std::string CopiesBytesLocked(const ObjectID& id, const NodeID& except) const REQUIRES(core_lock);
  // Node `dead` died: it leaves every copy set.
  void DropNodeCopiesLocked(const NodeID& dead) REQUIRES(core_lock);
  // What a getter is answered for a ready object (value, or where it is in
  // plasma with the other copies).
  ReturnValue AnswerForLocked(const ObjectID& id, const StoredObject* o) const REQUIRES(core_lock);
  std::unordered_set<ObjectID, IdHash> fetching_ GUARDED_BY(core_lock);  // FetchObject sent, no reply yet
};

}  // namespace rayts
