// ActorTaskSubmitter: the owner/caller side of actors (Ray's
// ActorTaskSubmitter): creation, method calls in submission order, restarts,
// death and kill.
//
// Role: CreateActor leases a worker for the actor's whole life and pushes
// the constructor call; method calls then go to that worker in submission
// order through the actor's ActorCallQueue (actor_call_queue.h), each with
// its send number, so the executor runs them in order (TaskReceiver). An
// owned actor whose worker dies is restarted while maxRestarts allows: a
// new lease, the constructor again, then the calls cut off (resent while
// maxTaskRetries allows) and the queued ones. A handle to an actor owned
// elsewhere (borrowed) asks the GCS where it lives and connects there. A
// dead actor fails its calls with ActorDiedError and its cause. The last
// handle gone (the actor's token released everywhere) ends it once idle.
// Ownership: owned by the CoreWorker; owns every ActorState (by key) and so
// every actor lease. The task records belong to the TaskManager.
// Thread safety: Create/Submit/Kill/SetToken take the core lock
// (worker_context.h); *Locked methods require it. Link, timer and post
// handlers run with it held (transport.h).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/core_worker/actor_state.h"
#include "core/core_worker/node_links.h"
#include "core/core_worker/object_manager.h"
#include "core/core_worker/reference_counter.h"
#include "core/core_worker/task_manager.h"
#include "core/core_worker/task_records.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"
#include "core/gcs/gcs_client.h"

namespace rayts {

class ActorTaskSubmitter {
 public:
  ActorTaskSubmitter(WorkerContext& ctx, Transport& transport, TaskManager& tasks, ObjectManager& objects,
                     ReferenceCounter* refs, NodeLinks& nodes)
      : ctx_(ctx), transport_(transport), tasks_(tasks), objects_(objects), refs_(refs), nodes_(nodes) {}

  // `req.actor_id` may be preset (the caller registered it with the GCS).
  StatusOr<TaskID> Create(SubmitRequest req, ObjectID* ready_id);
  StatusOr<TaskID> Submit(SubmitRequest req, std::vector<ObjectID>* return_ids);
  // no_restart = false restarts the actor if its maxRestarts allows.
  // when_idle: end it once no call is queued or running (last handle gone).
  void Kill(const TaskID& actor_id, const std::string& cause, bool no_restart = true, bool when_idle = false);
  // `token` is an object this process owns that every handle to the actor
  // holds, here and (as a borrowed ref) in other processes. When it is
  // released everywhere, no handle is left: the actor ends once idle
  // (Ray: an actor dies with its last handle). Not called for detached actors.
  void SetToken(const TaskID& actor_id, const ObjectID& token);
  // A handle to a non-detached actor owned by the process at `owner_address`
  // (another process) is held here: when this process kills an actor whose
  // worker listens there, that actor dies with its owner (Ray's fate
  // sharing), and calls made here from then on fail with that cause at once.
  void SetOwner(const TaskID& actor_id, std::string owner_address);

  // A call (or the constructor) whose arguments are ready.
  void EnqueueLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  void RequeueFrontLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  void RemoveQueuedLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  // The call finished: it leaves its actor's call queue.
  void CallRepliedLocked(const PendingTask& t) REQUIRES(core_lock);
  // A LeaseReply from the node; false when the request is not one of ours.
  bool OnLeaseReplyLocked(const proto::LeaseReply& r) REQUIRES(core_lock);
  // The connection to the node server at `node` broke: actors it placed lose their worker.
  void OnNodeLostLocked(const std::string& node) REQUIRES(core_lock);
  // The cause an actor lost with the node at `node` (its node server's TCP address) dies of.
  std::string NodeLostCauseLocked(const std::string& node) const REQUIRES(core_lock);
  // A GCS reply; false when it does not answer one of our actor lookups.
  bool OnGcsReplyLocked(uint64_t request_id, const proto::Envelope& env) REQUIRES(core_lock);
  // An owned object was released everywhere: if it is an actor's token, the
  // actor ends once idle (the kill runs after the current handler).
  void OnOwnedReleasedLocked(const ObjectID& id) REQUIRES(core_lock);
  SubmitterStats GetStatsLocked() const REQUIRES(core_lock);

 private:
  using Inflight = TaskMap;
  ActorState& NewActorLocked(const TaskID& actor, bool borrowed) REQUIRES(core_lock);
  void KillLocked(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) REQUIRES(core_lock);
  void DispatchLocked(ActorState& a) REQUIRES(core_lock);
  // Asks `node` ("" : this process's node; else with grant_or_reject).
  void RequestLeaseLocked(ActorState& a, const std::string& node = "") REQUIRES(core_lock);
  bool ConnectLeaseLocked(const std::shared_ptr<Lease>& lease) REQUIRES(core_lock);
  void ConnectedLocked(ActorState& a) REQUIRES(core_lock);
  void TakeFailuresLocked(ActorState& a) REQUIRES(core_lock);
  void OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply& r) REQUIRES(core_lock);
  void ReturnLeaseLocked(ActorState& a, const std::shared_ptr<Lease>& lease, bool worker_exiting) REQUIRES(core_lock);
  void OnLeaseClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) REQUIRES(core_lock);
  void WorkerLostLocked(ActorState& a, Inflight inflight, const std::string& cause) REQUIRES(core_lock);
  // A silent loss of a worker on another node waits (ActorState::held_lease)
  // until the link to that node closes or kNodeDeathGrace passes.
  void HoldLossLocked(ActorState& a, const std::shared_ptr<Lease>& lease, Inflight inflight, std::string cause)
      REQUIRES(core_lock);
  // Hands the held loss on: to a restart or death, with the node's death as
  // the cause when node_died.
  void ReleaseHeldLossLocked(ActorState& a, bool node_died) REQUIRES(core_lock);
  // Ends a held loss without deciding: its calls in flight (their lease reset).
  Inflight TakeHeldLossLocked(ActorState& a) REQUIRES(core_lock);
  void BorrowedLostLocked(ActorState& a, const std::string& address, const std::string& cause) REQUIRES(core_lock);
  void SubmitCreationLocked(ActorState& a) REQUIRES(core_lock);
  void AskAddressLocked(ActorState& a) REQUIRES(core_lock);
  void OnAddressLocked(ActorState& a, const StatusOr<gcs::ActorLocation>& where) REQUIRES(core_lock);
  void DiedLocked(ActorState& a, const std::string& cause) REQUIRES(core_lock);
  // `owner` (killed here) took the actors it owned with it.
  void OwnedDiedWithLocked(const ActorState& owner) REQUIRES(core_lock);
  bool IdleLocked(const ActorState& a) const REQUIRES(core_lock);
  void MaybeEndIdleLocked(ActorState& a) REQUIRES(core_lock);
  ActorState* FindLocked(uint64_t key) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  TaskManager& tasks_;
  ObjectManager& objects_;
  ReferenceCounter* const refs_ PT_GUARDED_BY(core_lock);
  NodeLinks& nodes_;
  // The actors this process calls (owned or borrowed), by key.
  std::unordered_map<uint64_t, std::unique_ptr<ActorState>> actors_ GUARDED_BY(core_lock);
  std::unordered_map<uint64_t, uint64_t> lease_requests_ GUARDED_BY(core_lock);  // request id -> actor key
  std::unordered_map<uint64_t, uint64_t> lookups_ GUARDED_BY(core_lock);         // GCS request id -> actor key
  std::unordered_map<ObjectID, TaskID, IdHash> tokens_ GUARDED_BY(core_lock);    // handle token -> owned actor
  // Borrowed non-detached actors -> their owner's address (SetOwner); an entry goes when its actor dies here.
  std::unordered_map<TaskID, std::string, IdHash> owners_ GUARDED_BY(core_lock);
  // Node server address -> node id (hex), as spillback replies named them:
  // the cause of an actor lost with its node names the node.
  std::unordered_map<std::string, std::string> node_ids_ GUARDED_BY(core_lock);
};

}  // namespace rayts
