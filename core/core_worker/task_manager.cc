#include "core/core_worker/task_manager.h"

#include <algorithm>

#include "core/common/error_record.h"
#include "core/core_worker/actor_task_submitter.h"
#include "core/core_worker/normal_task_submitter.h"
#include "core/core_worker/task_receiver.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {
std::string CancelledJson(const std::string& name, const TaskID& task) {
  return ErrorRecordJson(ErrorKind::kCancelled, "TaskCancelledError",
                         "task " + name + " (" + task.Hex() + ") was cancelled");
}
}  // namespace

// ------------------------------------------------------------- records --

// An owned by-ref argument of `t`: pinned while `t` is pending; `t` waits
// for it if it is not computed yet.
void TaskManager::PinOwnedArgLocked(const std::shared_ptr<PendingTask>& t, const ObjectID& id) {
  refs_->AddSubmitted(id);
  t->owned_arg_refs.push_back(id);
  const StoredObject* o = objects_.store().Find(id);
  if (o && !o->ready) {
    t->unresolved++;
    dependents_[id].push_back(t);
  }
}

std::shared_ptr<PendingTask> TaskManager::NewTaskLocked(SubmitRequest req, uint64_t key,
                                                        std::vector<ObjectID>* return_ids) {
  auto t = std::make_shared<PendingTask>();
  TaskID tid = ctx_.NextTaskId();
  t->task_id = tid;
  t->key = key;
  t->retries_left = req.max_retries;
  for (int i = 0; i < req.num_returns; i++) {
    ObjectID id = ObjectIdFor(tid, static_cast<uint32_t>(i + 1));
    refs_->AddOwned(id, 1);
    objects_.store().GetOrCreate(id);
    if (return_ids) return_ids->push_back(id);
  }
  if (borrowers_.HasStagedLocked()) borrowers_.HoldNestedLocked(borrowers_.TakeStagedLocked(), nullptr, &t->held_refs);
  for (auto& a : req.args) {
    if (!a.by_ref) continue;
    if (!ctx_.IsSelf(a.owner_address())) {
      // Borrowed: this process's entry (and so its registration at the
      // owner) stays until the task is done with the argument.
      if (refs_->Has(a.id)) {
        refs_->AddSubmitted(a.id);
        t->held_refs.push_back(a.id);
      }
      continue;
    }
    a.SetOwnedHere();
    PinOwnedArgLocked(t, a.id);
  }
  t->req = std::move(req);
  return t;
}

void TaskManager::AddLocked(const std::shared_ptr<PendingTask>& t, bool child_of_running) {
  tasks_[t->task_id] = t;
  const TaskID& parent = t->req.parent;
  if (child_of_running && !parent.IsNil() && receiver_ && receiver_->IsExecutingLocked(parent)) {
    children_[parent].push_back(t->task_id);
  }
}

std::shared_ptr<PendingTask> TaskManager::FindLocked(const TaskID& task) const {
  auto it = tasks_.find(task);
  return it == tasks_.end() ? nullptr : it->second;
}

void TaskManager::ScheduleLocked(const std::shared_ptr<PendingTask>& t) {
  if (t->unresolved == 0) ReadyLocked(t);
}

void TaskManager::OnObjectReadyLocked(const ObjectID& id) {
  auto dep = dependents_.find(id);
  if (dep == dependents_.end()) return;
  auto waiting = std::move(dep->second);
  dependents_.erase(dep);
  for (auto& t : waiting) {
    if (--t->unresolved == 0 && !t->cancelled) ReadyLocked(t);
  }
}

void TaskManager::ReadyLocked(const std::shared_ptr<PendingTask>& t) {
  // A failed dependency fails the task (as in Ray): a task error is wrapped
  // in a dependency record naming this task (RayTaskError whose cause is
  // the upstream error); any other error (cancelled, lost, actor died, ...)
  // is the task's error as it is.
  for (auto& id : t->owned_arg_refs) {
    const StoredObject* o = objects_.store().Find(id);
    if (o && o->ready && o->is_error) {
      const std::string upstream = o->data ? *o->data : std::string("{}");
      FailLocked(t, IsTaskErrorRecord(upstream)
                        ? DependencyErrorJson(t->req.name ? *t->req.name : t->req.cls->name, upstream)
                        : upstream);
      return;
    }
    if (!o) {
      FailLocked(t, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError",
                                    "argument object " + id.Hex() + " was freed before the task ran", id.Hex()));
      return;
    }
  }
  if (t->is_actor_task()) {
    actors_->EnqueueLocked(t);
  } else {
    normal_->EnqueueLocked(t);
  }
}

// ------------------------------------------------------------- results --

void TaskManager::HandleReplyLocked(const std::shared_ptr<PendingTask>& t, const proto::PushTaskReply& r,
                                    const std::function<void()>& on_stored) {
  const TaskID& tid = t->task_id;
  if (r.code() != 0) {
    FailLocked(t, ErrorRecordJson(ErrorKind::kSystem, "RaySystemError", Str(r.message())));
    return;
  }
  if (r.retryable_error() && RetryLocked(t)) return;  // retryExceptions: thrown, may be retried
  if (t->req.num_returns < 0) {
    // Streaming: an error (if any) is the last item.
    int64_t n = std::max<int64_t>(r.num_streamed(), t->streamed);
    if (r.returns() && r.returns()->size() > 0) {
      auto* ret = r.returns()->Get(0);
      ObjectID id = IdFrom<ObjectID>(ret->object_id());
      refs_->AddOwned(id, 1);
      objects_.StoreResultLocked(id, ret);
      Event e{Event::Type::kGeneratorItem};
      e.task_id = tid;
      e.object_id = id;
      e.index = n;
      ctx_.Emit(std::move(e));
      n++;
    }
    Event e{Event::Type::kGeneratorEnd};
    e.task_id = tid;
    e.index = n;
    ctx_.Emit(std::move(e));
    FinishLocked(t);
    return;
  }
  if (r.returns()) {
    for (auto* ret : *r.returns()) objects_.StoreResultLocked(IdFrom<ObjectID>(ret->object_id()), ret);
    if (on_stored) on_stored();
    RecordLineageLocked(t);  // normal tasks with a plasma return: kept for reconstruction
  }
  FinishLocked(t);
}

void TaskManager::OnGeneratorItemLocked(const proto::GeneratorItem& g) {
  if (!g.item()) return;
  // Items arrive in order; one the consumer already has (a retry's executor
  // skips them, so only a stale frame) is dropped, as in Ray.
  auto t = FindLocked(IdFrom<TaskID>(g.task_id()));
  if (t) {
    if (g.index() < t->streamed) return;
    t->streamed = g.index() + 1;
  }
  ObjectID id = IdFrom<ObjectID>(g.item()->object_id());
  refs_->AddOwned(id, 1);  // held for the generator until the host adopts it
  objects_.StoreResultLocked(id, g.item());
  Event e{Event::Type::kGeneratorItem};
  e.task_id = IdFrom<TaskID>(g.task_id());
  e.object_id = id;
  e.index = g.index();
  ctx_.Emit(std::move(e));
}

void TaskManager::FinishLocked(const std::shared_ptr<PendingTask>& t) {
  tasks_.erase(t->task_id);
  t->lease.reset();
  if (t->actor_seq != kNoActorSeq) {  // leaves its actor's call queue
    actors_->CallRepliedLocked(*t);
    t->actor_seq = kNoActorSeq;
  }
  auto args = std::move(t->owned_arg_refs);
  t->owned_arg_refs.clear();
  auto held = std::move(t->held_refs);
  t->held_refs.clear();
  for (auto& id : args) refs_->RemoveSubmitted(id);
  for (auto& id : held) refs_->RemoveSubmitted(id);
}

void TaskManager::FailLocked(const std::shared_ptr<PendingTask>& t, const std::string& json) {
  auto data = std::make_shared<const std::string>(json);
  if (t->req.num_returns < 0) {
    // The error is the item after those the consumer has.
    ObjectID id = ObjectIdFor(t->task_id, static_cast<uint32_t>(t->streamed + 1));
    refs_->AddOwned(id, 1);
    objects_.store().Put(id, data, false, true, data->size());
    Event e{Event::Type::kGeneratorItem};
    e.task_id = t->task_id;
    e.object_id = id;
    e.index = t->streamed;
    ctx_.Emit(std::move(e));
    Event end{Event::Type::kGeneratorEnd};
    end.task_id = t->task_id;
    end.index = t->streamed + 1;
    ctx_.Emit(std::move(end));
  }
  for (auto& id : t->return_ids()) {
    if (!refs_->Has(id)) continue;
    objects_.PutErrorLocked(id, data);
  }
  FinishLocked(t);
}

bool TaskManager::RetryLocked(const std::shared_ptr<PendingTask>& t) {
  if (t->cancelled || t->retries_left == 0) return false;
  if (t->retries_left > 0) t->retries_left--;
  t->attempt++;
  t->lease.reset();
  if (t->is_actor_task()) {
    actors_->RequeueFrontLocked(t);
  } else {
    normal_->RequeueFrontLocked(t);
  }
  return true;
}

// ---------------------------------------------------------- cancellation --

Status TaskManager::Cancel(const TaskID& task, bool force, bool recursive, const std::string& owner) {
  CoreGuard lock(ctx_);
  if (!ctx_.IsSelf(owner)) {
    // Owned elsewhere: the owner decides (TaskReceiver::OnCancelRequestLocked
    // routes a request for a task it does not execute to CancelLocked).
    auto link = borrowers_.LinkToLocked(owner);
    if (!link) return Status::OK();  // the owner is gone: so is its task
    Fbb fbb(64);
    auto tid = IdBytes(fbb, task);
    link->Send(FinishFrame(fbb, proto::CreateCancelTask(fbb, tid, force, recursive)));
    return Status::OK();
  }
  return CancelLocked(task, force, recursive);
}

Status TaskManager::CancelLocked(const TaskID& task, bool force, bool recursive) {
  auto t = FindLocked(task);
  if (!t) return Status::OK();  // finished (or never ours): nothing to do
  if (force && t->is_actor_task()) {
    return Status::InvalidArgument("ray.cancel: force is not supported for actor tasks (task " + t->req.cls->name +
                                   "); use ray.kill(actor) to stop the actor process");
  }
  t->cancelled = true;  // never retried from here on
  if (!t->lease) {
    // Not pushed yet (queued, or waiting for its arguments): fails at once.
    if (t->is_actor_task()) {
      actors_->RemoveQueuedLocked(t);
    } else {
      normal_->RemoveQueuedLocked(t);
    }
    for (auto& [id, v] : dependents_) v.erase(std::remove(v.begin(), v.end(), t), v.end());
    FailLocked(t, CancelledJson(t->req.cls->name, task));
    return Status::OK();
  }
  // Pushed: the executor decides. It answers TaskCancelledError (the task
  // saw its AbortSignal, or its result is discarded), or with force exits,
  // and the closed connection fails the task as cancelled.
  Fbb fbb(64);
  auto tid = IdBytes(fbb, task);
  t->lease->link->Send(FinishFrame(fbb, proto::CreateCancelTask(fbb, tid, force, recursive)));
  return Status::OK();
}

void TaskManager::CancelChildrenLocked(const TaskID& parent, bool force) {
  auto kids = children_.find(parent);
  if (kids == children_.end()) return;
  auto list = kids->second;
  for (auto& child : list) {
    auto c = FindLocked(child);
    // force does not apply to actor tasks: those get a plain cancel.
    bool child_force = force && c && !c->is_actor_task();
    (void)CancelLocked(child, child_force, true);  // a finished child needs nothing
  }
}

// --------------------------------------------------------------- lineage --

void TaskManager::OnOwnedReleasedLocked(const ObjectID& id) {
  if (!IsPutObject(id)) lineage_.ReturnReleased(TaskIdOf(id));
}

void TaskManager::RecordLineageLocked(const std::shared_ptr<PendingTask>& t) {
  const SubmitRequest& r = t->req;
  // Only normal tasks are re-executable; only plasma copies can be lost; a
  // task holding nested refs would need them kept too (not done).
  if (!r.actor_id.IsNil() || r.num_returns < 1 || r.max_retries == 0 || !t->held_refs.empty()) return;
  int64_t live = 0;
  bool any_plasma = false;
  for (auto& id : t->return_ids()) {
    const StoredObject* o = objects_.store().Find(id);
    if (o && o->ready && o->is_error) return;
    if (o && o->in_plasma) any_plasma = true;
    if (refs_->Has(id)) live++;
  }
  if (!any_plasma || lineage_.Has(t->task_id)) return;
  uint64_t bytes = 256 + r.cls->name.size();
  std::vector<TaskID> parents;
  for (auto& a : r.args) {
    bytes += sizeof(TaskArgIn) + (a.by_ref ? 0 : a.data().size());
    if (a.by_ref && a.owner_address().empty() && !IsPutObject(a.id)) parents.push_back(TaskIdOf(a.id));
  }
  lineage_.Add(t->task_id, std::make_shared<const SubmitRequest>(r), bytes, live, parents, r.max_retries);
}

Status TaskManager::Reconstruct(const ObjectID& id) {
  CoreGuard lock(ctx_);
  objects_.RecoveryStartedLocked(id);
  const ReferenceCounter::Ref* r = refs_->Find(id);
  if (!r || !r->owned) {
    Status s = Status::ObjectLost("object " + id.Hex() +
                                  " is not owned by this process (or was freed): cannot recover it");
    objects_.FailRemoteWaitersLocked(id, s);
    return s;
  }
  const StoredObject* o = objects_.store().Find(id);
  if (o && !o->ready) return Status::OK();  // being produced (or recovered) already
  if (o && o->ready && (!o->in_plasma || (plasma_ && plasma_->Contains(id)))) {
    objects_.ObjectReadyLocked(id);  // not lost: answer whoever asked
    return Status::OK();
  }
  // Another node holds a copy: it becomes the primary (no re-run).
  if (objects_.PromoteCopyLocked(id)) {
    objects_.ObjectReadyLocked(id);
    return Status::OK();
  }
  Status s = ReconstructLocked(id, 0);
  if (!s.ok()) objects_.FailRemoteWaitersLocked(id, s);
  return s;
}

void TaskManager::OnPrimaryLostLocked(const ObjectID& id, const std::string& why) {
  const ReferenceCounter::Ref* r = refs_->Find(id);
  if (!r || !r->owned) return;
  Status s = ReconstructLocked(id, 0);
  if (s.ok()) return;  // its task runs again: the entry is pending
  objects_.store().Erase(id);
  objects_.StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError",
                                                "object " + id.Hex() + " was lost with its primary copy: " + why + "; " +
                                                    s.message(),
                                                id.Hex()));
}

bool TaskManager::PlasmaLostLocked(const ObjectID& id, const StoredObject& o) {
  if (!o.ready || !o.in_plasma) return false;
  if (!o.location.IsNil() && o.location != ctx_.node_id()) return ctx_.dead_nodes().Find(o.location) != nullptr;
  return !(plasma_ && plasma_->Contains(id));
}

Status TaskManager::ReconstructLocked(const ObjectID& id, int depth) {
  if (IsPutObject(id)) {
    return Status::ObjectLost("object " + id.Hex() +
                              " was lost from the object store and cannot be reconstructed: "
                              "it was created by ray.put(), which has no lineage (only task results are recomputable)");
  }
  TaskID task = TaskIdOf(id);
  if (tasks_.count(task)) return Status::OK();  // its task is running again
  LineageCache::Entry* e = lineage_.Find(task);
  if (!e) {
    return Status::ObjectLost("object " + id.Hex() +
                              " was lost from the object store and cannot be reconstructed: "
                              "the lineage of the task that created it is not kept (it was evicted past lineageMaxBytes, "
                              "or the task is an actor call, streaming, has maxRetries 0, or took nested refs)");
  }
  if (e->reconstructions_left == 0) {
    return Status::ObjectLost("object " + id.Hex() + " was lost again and its task's retries (maxRetries) are used up");
  }
  if (depth > 100000) return Status::ObjectLost("object " + id.Hex() + ": lineage too deep to reconstruct");
  if (e->reconstructions_left > 0) e->reconstructions_left--;
  SubmitRequest req = *std::static_pointer_cast<const SubmitRequest>(e->spec);
  // Recover the arguments first (recursively): those freed since, or whose
  // plasma copy is gone too.
  std::vector<ObjectID> revived;
  for (auto& a : req.args) {
    if (!a.by_ref || !a.owner_address().empty()) continue;
    const StoredObject* o = objects_.store().Find(a.id);
    bool lost = !o || PlasmaLostLocked(a.id, *o);
    if (!lost) continue;
    if (!refs_->Has(a.id)) {
      refs_->AddOwned(a.id, 0);  // held by the re-run task below (submitted count)
      if (!IsPutObject(a.id)) lineage_.ReturnRevived(TaskIdOf(a.id));
      revived.push_back(a.id);
    }
    Status s = ReconstructLocked(a.id, depth + 1);
    if (!s.ok()) {
      for (auto& rv : revived) refs_->ReleaseIfUnused(rv);
      return s;
    }
  }
  for (int i = 0; i < req.num_returns; i++) {
    ObjectID rid = ObjectIdFor(task, static_cast<uint32_t>(i + 1));
    if (!refs_->Has(rid)) continue;
    objects_.store().Erase(rid);
    objects_.store().GetOrCreate(rid);  // pending until the re-run answers
  }
  ResubmitLocked(task, req);
  return Status::OK();
}

void TaskManager::ResubmitLocked(const TaskID& task, const SubmitRequest& req) {
  auto t = std::make_shared<PendingTask>();
  t->task_id = task;
  t->key = req.cls->scheduling_key;
  t->retries_left = req.max_retries;
  reconstructions_++;
  for (auto& a : req.args) {
    if (!a.by_ref || !a.owner_address().empty()) continue;
    PinOwnedArgLocked(t, a.id);
  }
  t->req = req;
  AddLocked(t, /*child_of_running=*/false);
  ScheduleLocked(t);
}

}  // namespace rayts
