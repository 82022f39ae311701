// CoreWorker: ending tasks early. Owner side: ray.cancel (CancelTask),
// retries (RetryLocked, shared by worker death, the memory monitor and
// retryExceptions). Executor side: a CancelTask request from an owner
// (recursive cancellation of the tasks the cancelled one submitted, force),
// and the node's memory monitor ending this worker (KillWorker).
// Thread safety: as core_worker.h; *Locked methods run under mu_.
#include <unistd.h>

#include <algorithm>

#include "core/common/json.h"
#include "core/common/error_record.h"
#include "core/core_worker/core_worker.h"
#include "core/core_worker/internal.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {
std::string CancelledJson(const std::string& name, const TaskID& task) {
  return ErrorRecordJson(ErrorKind::kCancelled, "TaskCancelledError", "task " + name + " (" + task.Hex() + ") was cancelled");
}
}  // namespace

Status CoreWorker::CancelTask(const TaskID& task, bool force, bool recursive) {
  Guard lock(this);
  return CancelTaskLocked(task, force, recursive);
}

Status CoreWorker::CancelTaskLocked(const TaskID& task, bool force, bool recursive) {
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return Status::OK();  // finished (or never ours): nothing to do
  auto t = it->second;
  if (force && !t->req.actor_id.IsNil()) {
    return Status::InvalidArgument("ray.cancel: force is not supported for actor tasks (task " + t->req.cls->name +
                                   "); use ray.kill(actor) to stop the actor process");
  }
  t->cancelled = true;  // never retried from here on
  if (!t->lease) {
    // Not pushed yet (queued, or waiting for its arguments): fails at once.
    auto kit = keys_.find(t->key);
    if (kit != keys_.end()) {
      auto& q = kit->second->queue;
      q.erase(std::remove(q.begin(), q.end(), t), q.end());
    }
    for (auto& [id, v] : dependents_) v.erase(std::remove(v.begin(), v.end(), t), v.end());
    FailTaskLocked(t, CancelledJson(t->req.cls->name, task));
    return Status::OK();
  }
  // Pushed: the executor decides. It answers TaskCancelledError (the task
  // saw its AbortSignal, or its result is discarded), or with force exits,
  // and the closed connection fails the task as cancelled.
  Fbb fbb(64);
  auto tid = IdBytes(fbb, task);
  QueueToLocked(t->lease->conn, FinishFrame(fbb, proto::CreateCancelTask(fbb, tid, force, recursive)));
  return Status::OK();
}

void CoreWorker::NoteChildLocked(const TaskID& parent, const TaskID& child) {
  if (parent.IsNil() || !executing_by_task_.count(parent)) return;
  children_[parent].push_back(child);
}

bool CoreWorker::RetryLocked(const std::shared_ptr<Pending>& t) {
  if (t->cancelled || t->retries_left == 0) return false;
  auto kit = keys_.find(t->key);
  if (kit == keys_.end()) return false;
  if (t->retries_left > 0) t->retries_left--;
  t->attempt++;
  t->lease.reset();
  kit->second->queue.push_front(t);
  return true;
}

void CoreWorker::OnCancelRequestLocked(const proto::CancelTask* ct) {
  TaskID tid = IdFrom<TaskID>(ct->task_id());
  // Finished here already (the reply is on its way): nothing to cancel.
  if (!executing_by_task_.count(tid)) return;
  if (ct->recursive()) {
    auto kids = children_.find(tid);
    if (kids != children_.end()) {
      auto list = kids->second;
      for (auto& child : list) {
        auto c = tasks_.find(child);
        // force does not apply to actor tasks: those get a plain cancel.
        bool child_force = ct->force() && c != tasks_.end() && c->second->req.actor_id.IsNil();
        (void)CancelTaskLocked(child, child_force, true);  // a finished child needs nothing
      }
    }
  }
  if (ct->force()) {
    // The task may be stuck in JS: end the process from here, after the
    // children's cancellations are written.
    SendOutboxLocked();
    ::_exit(1);
  }
  Event e{Event::Type::kCancelTask};
  e.task_id = tid;
  EmitLocked(std::move(e));
}

void CoreWorker::OnKillWorkerLocked(const std::string& reason) {
  // Tell every process pushing tasks here why this worker goes away, on the
  // connection that closes next (so the reason arrives first), then exit.
  for (auto& w : inbound_) {
    auto c = w.lock();
    if (!c || c->closed()) continue;
    Fbb fbb(128 + reason.size());
    auto msg = fbb.CreateString(reason);
    c->Send(FinishFrame(fbb, proto::CreateWorkerExiting(fbb, 137, msg)));
  }
  ::_exit(137);
}

}  // namespace rayts
