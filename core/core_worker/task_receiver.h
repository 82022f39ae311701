// TaskReceiver: the executor side of this process (Ray's TaskReceiver):
// tasks pushed here by their owners, handed to the host to run, and their
// replies.
//
// Role: a PushTask from an owner becomes an ExecTask event for the host
// (kExecuteTask); the host answers TaskDone (the reply, with the refs
// inside the return values registered for the caller first) or streams
// generator items. Actor calls run in each caller's send order
// (ActorSchedulingQueue per caller): a call that overtook an earlier one
// waits; a missing number (the caller died between two sends) is skipped
// after kActorCallGapWait; calls of a caller's older connection arriving
// late are stale and never run twice. Cancellation requests from owners
// become kCancelTask events (recursive: the tasks the cancelled one
// submitted are cancelled too; force: the process exits). The node's
// memory monitor (KillWorker) and the host (ReportExit) end the process
// after telling every caller why.
// Ownership: owned by the CoreWorker; keeps the links tasks arrived on
// (weakly: the transport owns accepted links).
// Thread safety: TaskDone/ReportGeneratorItem/SetBlocked/ReportExit take the
// core lock (worker_context.h); *Locked methods require it.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/core_worker/actor_scheduling_queue.h"
#include "core/core_worker/borrower_protocol.h"
#include "core/core_worker/task_manager.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class TaskReceiver {
 public:
  TaskReceiver(WorkerContext& ctx, Transport& transport, TaskManager& tasks, BorrowerProtocol& borrowers)
      : ctx_(ctx), transport_(transport), tasks_(tasks), borrowers_(borrowers) {}

  // retryable: the task threw an error its retryExceptions allows to retry.
  // actor_exited: the method called ray.exitActor(); the process ends next.
  void TaskDone(uint64_t handle, std::vector<ReturnValue> returns, bool retryable = false, bool actor_exited = false);
  void ReportGeneratorItem(uint64_t handle, int64_t index, ReturnValue item);
  // A task here waits (ray.get inside a task): the node may lend its CPU.
  void SetBlocked(bool blocked);
  // The process is exiting on its own with `code`: tell every process that
  // pushes tasks to it (best effort, one non-blocking write each).
  void ReportExit(int code);

  void OnAcceptedLocked(const std::shared_ptr<Link>& link) REQUIRES(core_lock);
  void OnPushTaskLocked(const std::shared_ptr<Link>& from, const proto::TaskSpec& spec) REQUIRES(core_lock);
  void OnCancelRequestLocked(const proto::CancelTask& ct) REQUIRES(core_lock);
  // The node's memory monitor ends this worker: never returns (real transport).
  void OnKillWorkerLocked(const std::string& reason) REQUIRES(core_lock);
  // An inbound link closed: its callers' order and held calls are dropped.
  void OnLinkClosedLocked(const std::shared_ptr<Link>& link) REQUIRES(core_lock);
  bool IsExecutingLocked(const TaskID& task) const REQUIRES(core_lock) { return by_task_.count(task) != 0; }
  // The worker that submitted `task`, executing here (nil if none).
  WorkerID CallerOfLocked(const TaskID& task) const REQUIRES(core_lock);
  size_t executing() const REQUIRES(core_lock) { return executing_.size(); }
  // Links accepted on this process's listen socket and still open.
  size_t inbound_links() const REQUIRES(core_lock) { return inbound_.size(); }

 private:
  struct Executing {
    std::weak_ptr<Link> link;
    TaskID task_id;
    int num_returns = 1;
    int64_t streamed = 0;
    // Its class: owner_address is the borrower of the refs inside the
    // return values, caller their owner.
    std::shared_ptr<const ExecClass> cls;
  };
  // The classes a link defined (TaskSpec.class_ref - 1 = index).
  struct LinkClasses {
    std::weak_ptr<Link> link;  // entries are keyed by address: this tells a reused one
    std::vector<std::shared_ptr<const ExecClass>> classes;
  };
  static constexpr uint32_t kMaxClassesPerLink = 1 << 16;

  // The class of `spec`: defined by it, or the one its link defined; null
  // when the link never defined that slot.
  std::shared_ptr<const ExecClass> ClassOfLocked(const std::shared_ptr<Link>& from, const proto::TaskSpec& spec)
      REQUIRES(core_lock);
  // One actor caller's order.
  struct CallerOrder {
    explicit CallerOrder(int max_concurrency) : queue(max_concurrency) {}
    ActorSchedulingQueue queue;
    std::weak_ptr<Link> link;  // the caller's current connection
    std::unique_ptr<Timer> gap_timer;
    bool gap_timer_armed = false;
  };

  void OrderActorCallLocked(const std::shared_ptr<Link>& from, const WorkerID& caller, uint64_t seq,
                            uint64_t epoch_start, std::shared_ptr<ExecTask> task) REQUIRES(core_lock);
  void ReleaseActorCallsLocked(const WorkerID& caller, std::vector<uint64_t> runnable) REQUIRES(core_lock);
  void ForgetLocked(uint64_t handle) REQUIRES(core_lock);
  void SendExitNoticesLocked(int code, const std::string& reason) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  TaskManager& tasks_;
  BorrowerProtocol& borrowers_;
  std::vector<std::weak_ptr<Link>> inbound_ GUARDED_BY(core_lock);  // links accepted here, open
  std::unordered_map<uint64_t, Executing> executing_ GUARDED_BY(core_lock);  // by exec handle
  IdMap<TaskID, uint64_t> by_task_ GUARDED_BY(core_lock);
  std::unordered_map<const Link*, LinkClasses> classes_ GUARDED_BY(core_lock);
  uint64_t next_class_serial_ GUARDED_BY(core_lock) = 1;
  uint64_t next_handle_ GUARDED_BY(core_lock) = 1;
  int blocked_depth_ GUARDED_BY(core_lock) = 0;
  std::unordered_map<WorkerID, std::unique_ptr<CallerOrder>, IdHash> callers_ GUARDED_BY(core_lock);
  std::unordered_map<uint64_t, std::shared_ptr<ExecTask>> held_calls_ GUARDED_BY(core_lock);  // by exec handle
  int actor_max_concurrency_ GUARDED_BY(core_lock) = 0;
};

}  // namespace rayts
