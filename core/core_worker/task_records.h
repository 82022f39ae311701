// The records the task manager and the submitters share: a submitted task
// (PendingTask) and a worker lease with the tasks pushed on it (Lease).
//
// Ownership: TaskManager holds every PendingTask until it finishes (by id);
// a submitter queue, a lease's in-flight map and the dependency lists hold
// shared pointers to the same records. A Lease is held by the submitter
// that asked for it (NormalTaskSubmitter's key state, or the actor's
// ActorState) and by the tasks in flight on it.
// Thread safety: plain records, guarded by the core lock (worker_context.h)
// like everything in the components.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/common/id.h"
#include "core/common/id_map.h"
#include "core/core_worker/task_types.h"
#include "core/core_worker/transport.h"

namespace rayts {

struct Lease;

// PendingTask::actor_seq of a task that is not in an actor's call queue.
inline constexpr uint64_t kNoActorSeq = ~uint64_t{0};

struct PendingTask {
  TaskID task_id;
  SubmitRequest req;
  uint64_t key = 0;  // scheduling key (normal tasks) or the actor's key
  int retries_left = 0;
  int attempt = 0;
  // Owned by-ref arguments not computed yet. A bit field beside
  // `cancelled`, so `streamed` takes the padding a bool left (a million
  // queued tasks: the record does not grow).
  int unresolved : 31 = 0;
  unsigned cancelled : 1 = 0;
  // Streaming: items the owner has received (a retry's executor skips them,
  // and a failure's error item takes the next index).
  int32_t streamed = 0;
  // The return ids are not stored (a million queued tasks): ObjectIdFor(task_id, 1..num_returns).
  std::vector<ObjectID> owned_arg_refs;
  // Refs the task holds besides owned by-ref arguments: borrowed by-ref
  // arguments and refs nested in by-value arguments (RemoveSubmitted at the end).
  std::vector<ObjectID> held_refs;
  std::shared_ptr<Lease> lease;  // set while pushed
  Clock::time_point pushed_at;
  // Actor method calls: the call's seq in its ActorCallQueue (kNoActorSeq
  // once it left the queue), and its wire numbers of the latest send.
  uint64_t actor_seq = kNoActorSeq;
  uint64_t send_seq = 0;
  uint64_t epoch_start = 0;
  bool is_actor_task() const { return !req.actor_id.IsNil(); }
  std::vector<ObjectID> return_ids() const {
    std::vector<ObjectID> ids;
    for (int i = 0; i < req.num_returns; i++) ids.push_back(ObjectIdFor(task_id, static_cast<uint32_t>(i + 1)));
    return ids;
  }
};

using TaskMap = IdMap<TaskID, std::shared_ptr<PendingTask>>;

struct Lease {
  uint64_t lease_id = 0;  // 0: a connection to an actor owned elsewhere (no lease of ours)
  WorkerID worker_id;
  std::string address;
  uint64_t key = 0;
  std::shared_ptr<Link> link;
  // Granted by another node's server (a spillback): its TCP address and the
  // connection the lease goes back on. Empty: this process's own node.
  std::string node;
  std::shared_ptr<Link> node_link;
  std::vector<const TaskClass*> sent_classes;  // defined on this link: TaskSpec.class_ref = index + 1
  TaskMap inflight;
  bool returned = false;
  bool loss_handled = false;  // an actor restart already dealt with this worker
  bool node_lost = false;     // the connection to `node` broke (its node died or is unreachable)
  int exit_code = -1;         // >= 0: the worker said it exits with this code
  std::string oom_message;    // non-empty: the node's memory monitor killed the worker (why)
  // Idle return (NormalTaskSubmitter): the last time the lease became idle,
  // and whether its timer is armed (armed once per idle period, not once
  // per reply: re-arming costs a timerfd_settime).
  Clock::time_point idle_since;
  bool idle_armed = false;
  std::unique_ptr<Timer> idle_timer;
  Clock::time_point granted_at;  // normal leases: held at most kLeaseMaxHold while tasks queue
  // The last reply on this lease: a task pipelined behind others starts
  // being served when the one before it answers (service time, below).
  Clock::time_point last_reply_at;
};

// Counts of a submitter (CoreWorker::GetStats).
struct SubmitterStats {
  size_t queued = 0, inflight = 0, leases = 0;
  // One queue and its leases.
  template <typename Queue>
  void Add(const Queue& queue, const std::vector<std::shared_ptr<Lease>>& held) {
    queued += queue.size();
    leases += held.size();
    for (auto& l : held) inflight += l->inflight.size();
  }
};

}  // namespace rayts
