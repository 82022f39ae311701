// BorrowerProtocol: the ownership protocol between processes (Ray's
// borrower protocol): refs that travel to other processes stay alive at
// their owner until every borrower has let go.
//
// Role: a process that receives a ref it does not own registers with the
// owner (AddBorrower, acknowledged); an executor that returns refs inside a
// value registers the caller on its behalf; a borrower gives its
// registrations back when its last local use ends (RemoveBorrower). Until
// every registration of this process is acknowledged, frames that release
// anything (task replies, RemoveBorrower) wait (QueueReleasingLocked), so
// whoever handed us a ref keeps it until the owner knows about us. It keeps
// the links to owners and borrowers (one per address) and notices when one
// of those processes goes away. Refs found while serializing a value are
// staged here (StageNested) and taken by whatever holds that value next.
// See "Borrowing" in docs/walkthrough-object.md.
// Ownership: owned by the CoreWorker; the ReferenceCounter it updates is
// the CoreWorker's.
// Thread safety: StageNested takes the core lock; everything else requires
// it (see worker_context.h). Hooks run with the lock held.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/core_worker/reference_counter.h"
#include "core/core_worker/task_types.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class BorrowerProtocol {
 public:
  struct Hooks {
    // A GetObjectReply from an owner.
    std::function<void(const proto::GetObjectReply&)> on_get_reply;
    // The process at `address` is gone, before this protocol drops it.
    std::function<void(const std::string& address)> on_peer_gone;
  };
  BorrowerProtocol(WorkerContext& ctx, Transport& transport, ReferenceCounter* refs)
      : ctx_(ctx), transport_(transport), refs_(refs) {}
  void SetHooks(Hooks hooks) { hooks_ = std::move(hooks); }

  // Refs found inside the value serialized next; consumed by the next put
  // (the put object holds them), task submission (the task holds them until
  // it finishes) or task reply / generator item (return `slot`: the caller
  // becomes their borrower before the reply goes out).
  void StageNested(std::vector<NestedRefIn> refs);
  std::vector<NestedRefIn> TakeStagedLocked() REQUIRES(core_lock);
  bool HasStagedLocked() const REQUIRES(core_lock) { return !staged_.empty(); }
  void ClearStagedLocked() REQUIRES(core_lock) { staged_.clear(); }

  // `nested` are held by `outer`'s value (a put) or by a pending task (`held`).
  void HoldNestedLocked(const std::vector<NestedRefIn>& nested, const ObjectID* outer, std::vector<ObjectID>* held)
      REQUIRES(core_lock);
  // A new borrowed entry: register this process with the owner.
  void RegisterBorrowLocked(const ObjectID& id, const std::string& owner) REQUIRES(core_lock);
  // Executor side: `borrower` (the caller) receives `id` inside a return value.
  void RegisterOnBehalfLocked(const ObjectID& id, const std::string& owner, const std::string& borrower)
      REQUIRES(core_lock);
  // Caller side: a return value holds refs the executor registered us for;
  // the outer object holds them from now on.
  void AdoptNestedLocked(const ObjectID& outer, bool outer_alive, const proto::ReturnObject* ret) REQUIRES(core_lock);
  // A borrowed ref's last use here ended: give its registrations back.
  void ReleaseLocked(const ObjectID& id, const ReferenceCounter::Ref& ref) REQUIRES(core_lock);
  // AddBorrower / RemoveBorrower from another process (we own the object).
  void OnBorrowerMessageLocked(const std::shared_ptr<Link>& from, const proto::Envelope& env) REQUIRES(core_lock);
  // Frames that release something wait while a registration is unacknowledged.
  void QueueReleasingLocked(const std::shared_ptr<Link>& to, Frame frame) REQUIRES(core_lock);
  // The process is exiting (ray.exitActor()): the deferred frames go now, in
  // order (no ack can matter any more), then `frame`.
  void SendAllForExitLocked(const std::shared_ptr<Link>& to, Frame frame) REQUIRES(core_lock);
  // The link to the process at `address` (opened once); nullptr if it is gone.
  std::shared_ptr<Link> LinkToLocked(const std::string& address) REQUIRES(core_lock);
  size_t unacked() const REQUIRES(core_lock) { return pending_acks_.size(); }

 private:
  void WatchBorrowerLocked(const std::string& address) REQUIRES(core_lock);
  void AckedLocked(uint64_t request_id) REQUIRES(core_lock);
  void OnPeerClosedLocked(const std::string& address, const std::shared_ptr<Link>& link) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  ReferenceCounter* const refs_ PT_GUARDED_BY(core_lock);
  Hooks hooks_;
  std::vector<NestedRefIn> staged_ GUARDED_BY(core_lock);
  std::unordered_map<std::string, std::shared_ptr<Link>> links_ GUARDED_BY(core_lock);  // by address
  std::unordered_map<uint64_t, std::string> pending_acks_ GUARDED_BY(core_lock);  // AddBorrower request id -> owner
  std::vector<std::pair<std::shared_ptr<Link>, Frame>> deferred_ GUARDED_BY(core_lock);
};

}  // namespace rayts
