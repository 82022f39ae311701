// NormalTaskSubmitter: the owner side of normal (non-actor) tasks: worker
// leases per scheduling key, direct push to the leased workers, replies,
// lease reuse and return (Ray's NormalTaskSubmitter).
//
// Role: tasks of one scheduling key (function + resource shape) share a
// queue and the leases granted for that shape. A ready task (its arguments
// computed) queues under its key; Dispatch pushes queued tasks to the
// key's leased workers: one per worker while the node has room for more
// workers of this shape or while the key's tasks are not known to be short,
// up to kMaxInflightPerLease per worker when they are (service time below
// kPipelineBelowUs), and no deeper than kPipelineBudgetUs of work, so that a
// lease past kLeaseMaxHold drains and goes back soon (fairness). A queue with no lease request outstanding asks the
// node for one (RequestWorkerLease); an empty queue withdraws it
// (CancelLeaseRequest). A task whose plasma arguments lie mostly on another
// node names that node in its lease request (locality), and the node placing
// it sends it there when that node can run it now. In a cluster the node may answer with a spillback
// (another node's address: the request is sent there, grant_or_reject) or,
// for such a request, rejected (asked again at this process's node); a
// lease granted by another node goes back there (NodeLinks). A worker of
// another node pulls a task's plasma arguments (core/raylet/object_pull.h). A lease
// with nothing in flight and nothing queued
// goes back to the node after kLeaseIdleReturn. A worker that dies fails or
// retries (maxRetries) what was in flight on it; so does a node that dies
// for the leases it granted (OnNodeLostLocked, and OnNodeDeadLocked for
// the failure's message); an infeasible or failed lease request fails the
// whole queue of its key.
// Ownership: owned by the CoreWorker; holds its key states and their leases.
// The task records belong to the TaskManager.
// Thread safety: RegisterTaskClass/GetTaskClass/Submit take the core lock
// (worker_context.h); *Locked methods require it. Link and timer handlers
// run with it held (transport.h).
// Invariants: a lease is returned exactly once (ReturnLease); a task is in
// at most one of: its key's queue, one lease's in-flight map.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/core_worker/crash_causes.h"
#include "core/core_worker/node_links.h"
#include "core/core_worker/object_manager.h"
#include "core/core_worker/task_manager.h"
#include "core/core_worker/task_records.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class NormalTaskSubmitter {
 public:
  NormalTaskSubmitter(WorkerContext& ctx, Transport& transport, TaskManager& tasks, ObjectManager& objects,
                      NodeLinks& nodes)
      : ctx_(ctx), transport_(transport), tasks_(tasks), objects_(objects), nodes_(nodes), causes_(ctx, transport) {}

  // What every task of one remote function (with one option set) shares:
  // registered once, referenced by id on each submit.
  uint32_t RegisterTaskClass(TaskClass cls);
  std::shared_ptr<const TaskClass> GetTaskClass(uint32_t id);
  StatusOr<TaskID> Submit(SubmitRequest req, std::vector<ObjectID>* return_ids);

  // A task whose arguments are ready joins its key's queue.
  void EnqueueLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  // A retried task goes first.
  void RequeueFrontLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  void RemoveQueuedLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  // A LeaseReply from a node; false when the request is not one of ours.
  bool OnLeaseReplyLocked(const proto::LeaseReply& r) REQUIRES(core_lock);
  // The node says how a worker we leased ended (see crash_causes.h).
  void OnWorkerDiedLocked(const proto::WorkerDied& d) REQUIRES(core_lock) { causes_.OnWorkerDiedLocked(d); }
  // The connection to the node server at `node` broke: leases it granted are given up.
  void OnNodeLostLocked(const std::string& node) REQUIRES(core_lock);
  // The node whose server is at `node` was reported dead: tasks that failed
  // on its workers fail now, naming its death (crash_causes.h).
  void OnNodeDeadLocked(const std::string& node) REQUIRES(core_lock) { causes_.OnNodeDeadLocked(node); }
  SubmitterStats GetStatsLocked() const REQUIRES(core_lock);

 private:
  struct KeyState {
    uint64_t key = 0;
    std::vector<std::pair<std::string, double>> resources;
    std::deque<std::shared_ptr<PendingTask>> queue;
    std::vector<std::shared_ptr<Lease>> leases;
    int pending_requests = 0;
    uint64_t pending_request_id = 0;
    bool cancel_sent = false;  // CancelLeaseRequest already sent for pending_request_id
    int spare_hint = 1;        // workers of this shape the node could still start (its last grant said)
    SchedulingOptions scheduling;
    std::string pending_node;  // where pending_request_id waits: "" this process's node, else a spillback's node
    // The node holding most of this key's plasma argument bytes (nil: this
    // node or none known); tasks with their arguments elsewhere get a key of
    // their own per node (Ray puts the argument ids in its scheduling key).
    NodeID locality = NodeID::Nil();
    // Service time of recent tasks in microseconds, a mean over the replies
    // of about the last kServiceWindow (sums decayed by the time between
    // replies: a batch of replies arriving together counts as its mean);
    // < 0 until the first reply. A task's service time runs from its push,
    // or from the previous reply on its lease when it was pipelined behind
    // others, to its reply: the time queued behind other tasks does not
    // count, so a deep pipeline of short tasks stays deep. Pipelining
    // several tasks per worker only pays for short tasks: a long one would
    // hold the tasks queued behind it.
    double avg_service_us = -1;
    double service_sum_us = 0;   // decayed sum of service times
    double service_replies = 0;  // decayed count of replies
    Clock::time_point service_at{};  // the last reply counted
  };

  KeyState& KeyFor(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  // Ray's LocalityAwareLeasePolicy: the node holding most of `t`'s plasma
  // argument bytes, by the locations this process knows; nil when that is
  // this process's node, none is known, or the strategy is not Default.
  NodeID LocalityNodeLocked(const PendingTask& t) REQUIRES(core_lock);
  void DispatchLocked(KeyState& ks) REQUIRES(core_lock);
  // Asks `node` ("" : this process's node; else with grant_or_reject).
  void RequestLeaseLocked(KeyState& ks, const std::string& node = "") REQUIRES(core_lock);
  bool ConnectLeaseLocked(const std::shared_ptr<Lease>& lease) REQUIRES(core_lock);
  void OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply& r) REQUIRES(core_lock);
  void MaybeReturnLeaseLocked(const std::shared_ptr<Lease>& lease) REQUIRES(core_lock);
  void ArmIdleTimerLocked(const std::shared_ptr<Lease>& lease, Clock::duration after) REQUIRES(core_lock);
  void ReturnLeaseLocked(const std::shared_ptr<Lease>& lease, bool worker_exiting) REQUIRES(core_lock);
  void OnLeaseClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) REQUIRES(core_lock);
  // Fails `crashed` (retries exhausted) once the node said how the worker ended.
  void FailCrashedLocked(const Lease& lease, std::vector<std::shared_ptr<PendingTask>> crashed, const Status& s)
      REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  TaskManager& tasks_;
  ObjectManager& objects_;
  NodeLinks& nodes_;
  CrashCauses causes_;
  std::vector<std::shared_ptr<const TaskClass>> classes_ GUARDED_BY(core_lock);
  std::unordered_map<uint64_t, std::unique_ptr<KeyState>> keys_ GUARDED_BY(core_lock);
  std::unordered_map<uint64_t, uint64_t> lease_requests_ GUARDED_BY(core_lock);  // request id -> key
};

}  // namespace rayts
