// TaskManager: the tasks this process submitted and has not seen finish
// (Ray's TaskManager): their records, their dependencies, their results,
// retries, cancellation and lineage reconstruction.
//
// Role: a submission becomes a PendingTask (NewTaskLocked: its id, its
// return objects owned here with one local ref each for the caller, its
// owned by-ref arguments pinned while it is pending). It waits for owned
// arguments not computed yet (OnObjectReadyLocked), then goes to its
// submitter (NormalTaskSubmitter, or ActorTaskSubmitter for actor tasks).
// The submitters hand replies back here: values and errors are stored
// (HandleReplyLocked, FailLocked), streaming items become events, the task's
// pins are dropped (FinishLocked), and a task may be retried (RetryLocked)
// before the submitter requeues it. Results of normal tasks that live in
// plasma keep their spec in the LineageCache, so a lost copy is recomputed
// (Reconstruct). Tasks submitted while a task executes here are recorded as
// its children (recursive cancellation).
// Ownership: owned by the CoreWorker; holds every PendingTask by id until
// it finishes.
// Thread safety: Cancel and Reconstruct take the core lock
// (worker_context.h); *Locked methods require it.
// Invariants: every task's return objects become ready exactly once per
// execution (value, error, or cancellation; a lineage re-run makes them
// pending and ready again); a task leaves tasks_ exactly when FinishLocked
// runs.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/core_worker/borrower_protocol.h"
#include "core/core_worker/lineage_cache.h"
#include "core/core_worker/object_manager.h"
#include "core/core_worker/reference_counter.h"
#include "core/core_worker/task_records.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class NormalTaskSubmitter;
class ActorTaskSubmitter;
class TaskReceiver;

class TaskManager {
 public:
  TaskManager(WorkerContext& ctx, Transport& transport, ObjectManager& objects, BorrowerProtocol& borrowers,
              ReferenceCounter* refs, PlasmaClient* plasma, uint64_t lineage_max_bytes)
      : ctx_(ctx), transport_(transport), objects_(objects), borrowers_(borrowers), refs_(refs), plasma_(plasma),
        lineage_(lineage_max_bytes) {}
  // Breaks the task <-> lease cycles of tasks still in flight.
  ~TaskManager() {
    for (auto& [id, t] : tasks_) t->lease.reset();
  }
  void Wire(NormalTaskSubmitter* normal, ActorTaskSubmitter* actors, TaskReceiver* receiver) {
    normal_ = normal;
    actors_ = actors;
    receiver_ = receiver;
  }

  // Cancels a task this process owns: a queued one fails with
  // TaskCancelledError at once; a running one is asked to stop (force: its
  // worker process exits). recursive: the executing worker also cancels the
  // tasks that one submitted. Finished or unknown: no-op. InvalidArgument for
  // force on an actor task. `owner`: the task's owner when it is another
  // process (a ref passed in): the request goes to it, which cancels as above.
  Status Cancel(const TaskID& task, bool force, bool recursive, const std::string& owner = "");
  // Owner: recovers `id` after its plasma copy was found missing: resubmits
  // the creating task (recovering lost arguments first). OK if it is being
  // recovered (wait for it) or was not lost; ObjectLost if not recomputable.
  Status Reconstruct(const ObjectID& id);
  // Owner: the primary copy of ready plasma object `id` died with a node
  // (`why`): recovered as Reconstruct does, or, when it cannot be, `id`
  // becomes an ObjectLostError naming why.
  void OnPrimaryLostLocked(const ObjectID& id, const std::string& why) REQUIRES(core_lock);

  // A new task record (not yet known to the manager: AddLocked).
  std::shared_ptr<PendingTask> NewTaskLocked(SubmitRequest req, uint64_t key, std::vector<ObjectID>* return_ids)
      REQUIRES(core_lock);
  // A refused submission: the nested refs staged for it are held by nothing.
  void DiscardStagedLocked() REQUIRES(core_lock) { borrowers_.ClearStagedLocked(); }
  // Known from now on; `child_of_running`: a child of the task executing
  // here that submitted it (for recursive cancel).
  void AddLocked(const std::shared_ptr<PendingTask>& t, bool child_of_running = true) REQUIRES(core_lock);
  std::shared_ptr<PendingTask> FindLocked(const TaskID& task) const REQUIRES(core_lock);
  // Waits for its owned arguments, then hands it to its submitter.
  void ScheduleLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  void OnObjectReadyLocked(const ObjectID& id) REQUIRES(core_lock);
  // The reply of a pushed task: fails it (a system error), or stores its
  // returns, calls `on_stored` (actor bookkeeping) and finishes it, or
  // (retryExceptions allowed it and retries are left) requeues it.
  void HandleReplyLocked(const std::shared_ptr<PendingTask>& t, const proto::PushTaskReply& r,
                         const std::function<void()>& on_stored) REQUIRES(core_lock);
  // A streamed item of a running generator task.
  void OnGeneratorItemLocked(const proto::GeneratorItem& g) REQUIRES(core_lock);
  // Every return object gets the error record `json`; the task finishes.
  void FailLocked(const std::shared_ptr<PendingTask>& t, const std::string& json) REQUIRES(core_lock);
  // Done: forgotten, its pins dropped, out of its actor's call queue.
  void FinishLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  // May it run again (not cancelled, retries left)? If so its attempt is
  // counted and it goes back to the front of its submitter's queue.
  bool RetryLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  // Cancels the tasks that `parent` (executing here) submitted.
  void CancelChildrenLocked(const TaskID& parent, bool force) REQUIRES(core_lock);
  void DropChildrenLocked(const TaskID& parent) REQUIRES(core_lock) { children_.erase(parent); }
  // An owned object was released everywhere: its lineage entry may go.
  void OnOwnedReleasedLocked(const ObjectID& id) REQUIRES(core_lock);
  Status CancelLocked(const TaskID& task, bool force, bool recursive) REQUIRES(core_lock);

  size_t size() const REQUIRES(core_lock) { return tasks_.size(); }
  const LineageCache& lineage() const REQUIRES(core_lock) { return lineage_; }
  uint64_t reconstructions() const REQUIRES(core_lock) { return reconstructions_; }

 private:
  void PinOwnedArgLocked(const std::shared_ptr<PendingTask>& t, const ObjectID& id) REQUIRES(core_lock);
  void ReadyLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  void RecordLineageLocked(const std::shared_ptr<PendingTask>& t) REQUIRES(core_lock);
  Status ReconstructLocked(const ObjectID& id, int depth) REQUIRES(core_lock);
  // Whether the plasma copy of ready object `o` is gone: not in this node's
  // store (a primary here), or its node is dead (a primary elsewhere).
  bool PlasmaLostLocked(const ObjectID& id, const StoredObject& o) REQUIRES(core_lock);
  void ResubmitLocked(const TaskID& task, const SubmitRequest& req) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  ObjectManager& objects_;
  BorrowerProtocol& borrowers_;
  ReferenceCounter* const refs_ PT_GUARDED_BY(core_lock);
  PlasmaClient* const plasma_;  // thread-safe; nullptr in tests without a node
  NormalTaskSubmitter* normal_ = nullptr;
  ActorTaskSubmitter* actors_ = nullptr;
  TaskReceiver* receiver_ = nullptr;

  TaskMap tasks_ GUARDED_BY(core_lock);  // submitted, not finished
  std::unordered_map<ObjectID, std::vector<std::shared_ptr<PendingTask>>, IdHash> dependents_ GUARDED_BY(core_lock);
  // Tasks this process submitted while executing a task (by that task's
  // id), for recursive cancellation. Dropped when the parent replies.
  std::unordered_map<TaskID, std::vector<TaskID>, IdHash> children_ GUARDED_BY(core_lock);
  LineageCache lineage_ GUARDED_BY(core_lock);
  uint64_t reconstructions_ GUARDED_BY(core_lock) = 0;  // tasks re-run to recover lost objects
};

}  // namespace rayts
