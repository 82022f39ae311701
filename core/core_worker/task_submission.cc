#include "core/core_worker/core_worker.h"
#include "core/common/error_record.h"

#include <cstring>

#include "core/common/json.h"
#include "core/core_worker/internal.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

// ----------------------------------------------------------------- tasks --

uint32_t CoreWorker::RegisterTaskClass(TaskClass cls) {
  cls.scheduling_key = KeyOf(cls);
  Guard lock(this);
  task_classes_.push_back(std::make_shared<const TaskClass>(std::move(cls)));
  return static_cast<uint32_t>(task_classes_.size() - 1);
}

std::shared_ptr<const TaskClass> CoreWorker::GetTaskClass(uint32_t id) {
  Guard lock(this);
  return id < task_classes_.size() ? task_classes_[id] : nullptr;
}

StatusOr<TaskID> CoreWorker::SubmitTask(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  Guard lock(this);
  if (!req.cls) {
    staged_nested_.clear();
    return Status::InvalidArgument("SubmitTask: unknown task class");
  }
  uint64_t key = req.cls->scheduling_key;
  return SubmitLocked(std::move(req), key, return_ids);
}

StatusOr<TaskID> CoreWorker::SubmitLocked(SubmitRequest req, uint64_t key, std::vector<ObjectID>* return_ids) {
  if (shutting_down_) return Status::Disconnected("rayts is shutting down");
  if (!req.cls) return Status::InvalidArgument("SubmitTask: unknown task class");
  auto t = NewPendingLocked(std::move(req), key, return_ids);
  TaskID tid = t->task_id;
  auto& ks = keys_[t->key];
  if (!ks) {
    ks = std::make_unique<KeyState>();
    ks->key = t->key;
    ks->resources = t->req.cls->resources;
  }
  if (ActorState* a = FindPtr(actors_, t->key); a && a->dead) {
    tasks_[tid] = t;
    FailTaskLocked(t, a->DiedJson(a->death_cause));
    return tid;
  }
  tasks_[tid] = t;
  NoteChildLocked(t->req.parent, tid);
  if (t->unresolved == 0) EnqueueReadyLocked(t);
  return tid;
}

// An owned by-ref argument of `t`: pinned while `t` is pending; `t` waits
// for it if it is not computed yet.
void CoreWorker::PinOwnedArgLocked(const std::shared_ptr<Pending>& t, const ObjectID& id) {
  refs_.AddSubmitted(id);
  t->owned_arg_refs.push_back(id);
  const StoredObject* o = memory_store_.Find(id);
  if (o && !o->ready) {
    t->unresolved++;
    dependents_[id].push_back(t);
  }
}

// A new task record: its id, its return objects (owned, one local ref each
// for the caller) and its owned by-ref arguments pinned while it is pending.
std::shared_ptr<CoreWorker::Pending> CoreWorker::NewPendingLocked(SubmitRequest req, uint64_t key,
                                                                  std::vector<ObjectID>* return_ids) {
  auto t = std::make_shared<Pending>();
  TaskID tid = NextTaskIdLocked();
  t->task_id = tid;
  t->key = key;
  t->retries_left = req.max_retries;
  for (int i = 0; i < req.num_returns; i++) {
    ObjectID id = ObjectIdFor(tid, static_cast<uint32_t>(i + 1));
    refs_.AddOwned(id, 1);
    memory_store_.GetOrCreate(id);
    t->return_ids.push_back(id);
  }
  if (return_ids) *return_ids = t->return_ids;
  if (!staged_nested_.empty()) HoldNestedLocked(TakeStagedLocked(), nullptr, &t->held_refs);
  for (auto& a : req.args) {
    if (!a.by_ref) continue;
    if (!IsSelf(a.owner_address)) {
      // Borrowed: this process's entry (and so its registration at the
      // owner) stays until the task is done with the argument.
      if (refs_.Has(a.id)) {
        refs_.AddSubmitted(a.id);
        t->held_refs.push_back(a.id);
      }
      continue;
    }
    a.owner_address.clear();
    PinOwnedArgLocked(t, a.id);
  }
  t->req = std::move(req);
  return t;
}

// Task ids of this process: its random prefix, then a counter in bytes 8..15
// (so ids of one process sort by submission order on that counter).
TaskID CoreWorker::NextTaskIdLocked() {
  TaskID tid = put_task_id_;
  uint64_t counter = ++task_counter_;
  std::memcpy(tid.bytes.data() + 8, &counter, 8);
  return tid;
}

void CoreWorker::EnqueueReadyLocked(const std::shared_ptr<Pending>& t) {
  // A failed dependency fails the task with the same error (as in Ray).
  for (auto& id : t->owned_arg_refs) {
    const StoredObject* o = memory_store_.Find(id);
    if (o && o->ready && o->is_error) {
      FailTaskLocked(t, o->data ? *o->data : std::string("{}"));
      return;
    }
    if (!o) {
      FailTaskLocked(t, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError",
                                        "argument object " + id.Hex() + " was freed before the task ran", id.Hex()));
      return;
    }
  }
  auto& ks = *keys_[t->key];
  if (t->actor_seq != kNoActorSeq) {
    actors_[t->key]->calls.MarkReady(t->actor_seq);  // sent in submission order
  } else {
    ks.queue.push_back(t);
  }
  DispatchLocked(ks);
}

void CoreWorker::DispatchLocked(KeyState& ks) {
  if (ActorState* a = FindPtr(actors_, ks.key)) {
    DispatchActorLocked(ks, *a);
    return;
  }
  // One task per worker while the node has room for more workers of this
  // shape, or while tasks of this key are not known to be short.
  bool pipeline = ks.spare_hint <= 0 && ks.avg_roundtrip_us >= 0 && ks.avg_roundtrip_us < kPipelineBelowUs;
  size_t cap = pipeline ? kMaxInflightPerLease : 1;
  for (auto& lease : ks.leases) {
    if (lease->returned) continue;
    while (!ks.queue.empty() && lease->inflight.size() < cap) {
      auto t = ks.queue.front();
      ks.queue.pop_front();
      PushLocked(lease, t);
    }
  }
  if (!ks.queue.empty() && ks.pending_requests == 0) RequestLeaseLocked(ks);
  if (ks.queue.empty() && ks.pending_requests > 0 && !ks.cancel_sent) {
    // Nothing left to run: withdraw the outstanding lease request (once).
    ks.cancel_sent = true;
    Fbb fbb(64);
    QueueControlLocked(FinishFrame(fbb, proto::CreateCancelLeaseRequest(fbb, ks.pending_request_id)));
  }
}

void CoreWorker::RequestLeaseLocked(KeyState& ks) {
  uint64_t req_id = next_request_id_++;
  ks.pending_requests++;
  ks.pending_request_id = req_id;
  ks.cancel_sent = false;
  lease_requests_[req_id] = ks.key;
  Fbb fbb(256);
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> res;
  for (auto& [name, amount] : ks.resources) res.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  auto rv = fbb.CreateVector(res);
  // Retriable: the memory monitor kills such workers first.
  const ActorState* a = FindPtr(actors_, ks.key);
  bool retriable = a ? a->LeaseRetriable() : (!ks.queue.empty() && ks.queue.front()->retries_left != 0);
  QueueControlLocked(FinishFrame(fbb, proto::CreateRequestWorkerLease(fbb, req_id, ks.key, rv, a != nullptr,
                                                                       a && a->detached, retriable)));
}

void CoreWorker::OnLeaseReplyLocked(const proto::LeaseReply* r) {
  auto it = lease_requests_.find(r->request_id());
  if (it == lease_requests_.end()) return;
  uint64_t key = it->second;
  lease_requests_.erase(it);
  auto kit = keys_.find(key);
  if (kit == keys_.end()) return;
  KeyState& ks = *kit->second;
  ks.pending_requests--;
  if (r->code() != 0) {
    if (static_cast<StatusCode>(r->code()) == StatusCode::kCancelled) {
      DispatchLocked(ks);
      return;
    }
    // Infeasible or failed: every queued task of this shape fails now.
    std::string json = ErrorRecordJson(ErrorKind::kSystem, r->code() == static_cast<int>(StatusCode::kInfeasible)
                                                     ? "InfeasibleResourceError" : "RaySystemError",
                                       Str(r->message()));
    auto queue = std::move(ks.queue);
    ks.queue.clear();
    for (auto& t : queue) FailTaskLocked(t, json);
    return;
  }
  ks.spare_hint = r->spare();
  auto lease = std::make_shared<Lease>();
  lease->lease_id = r->lease_id();
  lease->worker_id = IdFrom<WorkerID>(r->worker_id());
  lease->address = Str(r->worker_address());
  lease->key = key;
  ActorState* a = FindPtr(actors_, key);
  if (a && a->dead) {
    // Killed before its worker arrived: give the worker (and its CPU) back.
    ReturnLeaseLocked(lease, /*worker_exiting=*/false);
    return;
  }
  if (!ConnectLeaseLocked(lease)) {
    ReturnLeaseLocked(lease, true);
    DispatchLocked(ks);
    return;
  }
  ks.leases.push_back(lease);
  if (a) ActorConnectedLocked(*a);
  DispatchLocked(ks);
  MaybeReturnLeaseLocked(lease);
}

bool CoreWorker::ConnectLeaseLocked(const std::shared_ptr<Lease>& lease) {
  auto sock = ConnectUnix(io_, lease->address);
  if (!sock.ok()) return false;
  lease->conn = std::make_shared<Connection>(std::move(sock).value());
  std::weak_ptr<Lease> weak = lease;
  lease->conn->Start(
      [this, weak](const proto::Envelope& e) {
        if (auto l = weak.lock()) OnWorkerMessage(l, e);
      },
      [this, weak](const Status& s) {
        if (auto l = weak.lock()) {
          Guard lock(this);
          OnLeaseConnectionClosedLocked(l, s);
        }
      });
  lease->idle_timer = std::make_unique<asio::steady_timer>(io_);
  return true;
}

void CoreWorker::PushLocked(const std::shared_ptr<Lease>& lease, const std::shared_ptr<Pending>& t) {
  t->lease = lease;
  t->pushed_at = std::chrono::steady_clock::now();
  lease->inflight[t->task_id] = t;
  lease->idle_epoch++;
  const SubmitRequest& r = t->req;
  Fbb fbb(512);
  auto& fn = r.cls->function;
  bool send_source = lease->sent_functions.insert(fn.hash).second;
  auto fd = proto::CreateFunctionDescriptor(fbb, fbb.CreateString(fn.hash),
                                            send_source ? fbb.CreateString(fn.source) : 0,
                                            fn.module_url.empty() ? 0 : fbb.CreateString(fn.module_url),
                                            fn.export_name.empty() ? 0 : fbb.CreateString(fn.export_name));
  std::vector<flatbuffers::Offset<proto::TaskArg>> args;
  args.reserve(r.args.size());
  for (auto& a : r.args) {
    if (!a.by_ref) {
      auto data = Bytes(fbb, reinterpret_cast<const uint8_t*>(a.data->data()), a.data->size());
      proto::TaskArgBuilder b(fbb);
      b.add_data(data);
      args.push_back(b.Finish());
      continue;
    }
    auto oid = IdBytes(fbb, a.id);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
    bool in_plasma = false;
    if (a.owner_address.empty()) {
      const StoredObject* o = memory_store_.Find(a.id);
      if (o && o->in_plasma) in_plasma = true;
      else if (o && o->data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(o->data->data()), o->data->size());
    }
    auto owner = fbb.CreateString(a.owner_address.empty() ? opts_.listen_path : a.owner_address);
    proto::TaskArgBuilder b(fbb);
    b.add_object_id(oid);
    if (!data.IsNull()) b.add_data(data);
    b.add_in_plasma(in_plasma);
    b.add_owner_address(owner);
    args.push_back(b.Finish());
  }
  auto argv = fbb.CreateVector(args);
  auto tid = IdBytes(fbb, t->task_id);
  auto caller = IdBytes(fbb, opts_.worker_id);
  auto owner = fbb.CreateString(opts_.listen_path);
  auto name = fbb.CreateString(r.cls->name);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> actor;
  flatbuffers::Offset<flatbuffers::String> method;
  flatbuffers::Offset<flatbuffers::String> groups;
  if (!r.concurrency_groups.empty()) groups = fbb.CreateString(r.concurrency_groups);
  if (!r.actor_id.IsNil()) {
    actor = IdBytes(fbb, r.actor_id);
    if (!r.method.empty()) method = fbb.CreateString(r.method);
  }
  auto retry_exc = r.cls->retry_exceptions.empty() ? 0 : fbb.CreateString(r.cls->retry_exceptions);
  auto spec = proto::CreateTaskSpec(fbb, tid, job_id_, caller, owner, fd, argv, r.num_returns, name, t->attempt,
                                    actor, r.actor_creation, method, r.max_concurrency, groups, r.release_cpu,
                                    t->send_seq, t->epoch_start, retry_exc);
  QueueToLocked(lease->conn, FinishFrame(fbb, proto::CreatePushTask(fbb, spec)));
}

void CoreWorker::OnWorkerMessage(const std::shared_ptr<Lease>& lease, const proto::Envelope& env) {
  Guard lock(this);
  if (env.body_type() == proto::Body::WorkerExiting) {
    lease->exit_code = env.body_as_WorkerExiting()->code();
    lease->oom_message = Str(env.body_as_WorkerExiting()->oom_message());
    return;
  }
  if (env.body_type() == proto::Body::PushTaskReply) {
    OnPushReplyLocked(lease, env.body_as_PushTaskReply());
  } else if (env.body_type() == proto::Body::GeneratorItem) {
    auto* g = env.body_as_GeneratorItem();
    if (!g->item()) return;
    ObjectID id = IdFrom<ObjectID>(g->item()->object_id());
    TaskID tid = IdFrom<TaskID>(g->task_id());
    refs_.AddOwned(id, 1);  // held for the generator until JS adopts it
    StoreResultLocked(id, g->item());
    Event e{Event::Type::kGeneratorItem};
    e.task_id = tid;
    e.object_id = id;
    e.index = g->index();
    EmitLocked(std::move(e));
  }
}

void CoreWorker::OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply* r) {
  TaskID tid = IdFrom<TaskID>(r->task_id());
  auto it = lease->inflight.find(tid);
  if (it == lease->inflight.end()) return;
  auto t = it->second;
  lease->inflight.erase(it);
  {
    auto kit = keys_.find(lease->key);
    if (kit != keys_.end()) {
      double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t->pushed_at).count();
      double& avg = kit->second->avg_roundtrip_us;
      avg = avg < 0 ? us : 0.8 * avg + 0.2 * us;
    }
  }
  if (r->code() != 0) {
    FailTaskLocked(t, ErrorRecordJson(ErrorKind::kSystem, "RaySystemError", Str(r->message())));
  } else if (r->retryable_error() && RetryLocked(t)) {
    // retryExceptions: the task threw an error it may be retried for.
  } else if (t->req.num_returns < 0) {
    // Streaming: an error (if any) is the last item.
    int64_t n = r->num_streamed();
    if (r->returns() && r->returns()->size() > 0) {
      auto* ret = r->returns()->Get(0);
      ObjectID id = IdFrom<ObjectID>(ret->object_id());
      refs_.AddOwned(id, 1);
      StoreResultLocked(id, ret);
      Event e{Event::Type::kGeneratorItem};
      e.task_id = tid;
      e.object_id = id;
      e.index = n;
      EmitLocked(std::move(e));
      n++;
    }
    Event e{Event::Type::kGeneratorEnd};
    e.task_id = tid;
    e.index = n;
    EmitLocked(std::move(e));
    FinishTaskLocked(t);
  } else {
    if (r->returns()) {
      for (auto* ret : *r->returns()) StoreResultLocked(IdFrom<ObjectID>(ret->object_id()), ret);
      if (r->actor_exited() && !t->req.actor_creation && !t->req.actor_id.IsNil()) {
        // ray.exitActor(): the actor's last call reports its exit.
        KeyState* k = FindPtr(keys_, lease->key);
        ActorState* a = FindPtr(actors_, lease->key);
        if (k && a) ActorDiedLocked(*k, *a, "it exited (ray.exitActor())");
      }
      if (t->req.actor_creation && r->returns()->size() > 0 && !r->returns()->Get(0)->is_error()) {
        // Constructed: only now may other processes call it.
        ActorState* a = FindPtr(actors_, lease->key);
        if (a && !a->borrowed) QueueControlLocked(gcs::ActorAliveFrame(a->id, lease->address));
      }
      if (t->req.actor_creation && r->returns()->size() > 0 && r->returns()->Get(0)->is_error()) {
        // The constructor threw: the actor is dead, with that error as cause.
        KeyState* k = FindPtr(keys_, lease->key);
        ActorState* a = FindPtr(actors_, lease->key);
        auto* d = r->returns()->Get(0)->data();
        if (k && a) {
          if (d) a->death_cause_record.assign(reinterpret_cast<const char*>(d->data()), d->size());
          ActorDiedLocked(*k, *a, "its constructor threw");
        }
      }
      RecordLineageLocked(t);  // normal tasks with a plasma return: kept for reconstruction
    }
    FinishTaskLocked(t);
  }
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) DispatchLocked(*kit->second);
  if (ActorState* a = FindPtr(actors_, lease->key); kit != keys_.end() && a) {
    MaybeEndIdleActorLocked(*kit->second, *a);
    return;
  }
  MaybeReturnLeaseLocked(lease);
}

void CoreWorker::FinishTaskLocked(const std::shared_ptr<Pending>& t) {
  tasks_.erase(t->task_id);
  t->lease.reset();
  if (t->actor_seq != kNoActorSeq) {  // leaves its actor's call queue
    if (ActorState* a = FindPtr(actors_, t->key)) a->calls.OnReplied(t->actor_seq);
    t->actor_seq = kNoActorSeq;
  }
  auto args = std::move(t->owned_arg_refs);
  t->owned_arg_refs.clear();
  auto held = std::move(t->held_refs);
  t->held_refs.clear();
  for (auto& id : args) refs_.RemoveSubmitted(id);
  for (auto& id : held) refs_.RemoveSubmitted(id);
}

void CoreWorker::FailTaskLocked(const std::shared_ptr<Pending>& t, const std::string& json) {
  auto data = std::make_shared<const std::string>(json);
  if (t->req.num_returns < 0) {
    ObjectID id = ObjectIdFor(t->task_id, 1);
    refs_.AddOwned(id, 1);
    memory_store_.Put(id, data, false, true, data->size());
    Event e{Event::Type::kGeneratorItem};
    e.task_id = t->task_id;
    e.object_id = id;
    e.index = 0;
    EmitLocked(std::move(e));
    Event end{Event::Type::kGeneratorEnd};
    end.task_id = t->task_id;
    end.index = 1;
    EmitLocked(std::move(end));
  }
  for (auto& id : t->return_ids) {
    if (!refs_.Has(id)) continue;
    memory_store_.Put(id, data, false, true, data->size());
    ObjectReadyLocked(id);
  }
  FinishTaskLocked(t);
}

void CoreWorker::MaybeReturnLeaseLocked(const std::shared_ptr<Lease>& lease) {
  if (lease->returned || !lease->inflight.empty()) return;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end() && !kit->second->queue.empty()) return;
  if (kit != keys_.end() && actors_.count(lease->key)) return;  // held for the actor's life
  uint64_t epoch = ++lease->idle_epoch;
  std::weak_ptr<Lease> weak = lease;
  lease->idle_timer->expires_after(kLeaseIdleReturn);
  lease->idle_timer->async_wait([this, weak, epoch](const asio::error_code& ec) {
    if (ec) return;
    auto l = weak.lock();
    if (!l) return;
    Guard lock(this);
    if (l->idle_epoch == epoch && l->inflight.empty()) ReturnLeaseLocked(l, false);
  });
}

void CoreWorker::ReturnLeaseLocked(const std::shared_ptr<Lease>& lease, bool worker_exiting) {
  if (lease->returned) return;
  lease->returned = true;
  if (lease->lease_id != 0) {  // 0: a connection to an actor owned elsewhere
    Fbb fbb(64);
    QueueControlLocked(FinishFrame(fbb, proto::CreateReturnWorkerLease(fbb, lease->lease_id, worker_exiting)));
  }
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    auto& v = kit->second->leases;
    v.erase(std::remove(v.begin(), v.end(), lease), v.end());
  }
  if (lease->conn) {
    auto c = lease->conn;
    asio::post(io_, [c] { c->Close(); });
  }
}

void CoreWorker::OnLeaseConnectionClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) {
  if (shutting_down_) return;
  bool was_returned = lease->returned;
  lease->returned = true;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    auto& v = kit->second->leases;
    v.erase(std::remove(v.begin(), v.end(), lease), v.end());
  }
  auto inflight = std::move(lease->inflight);
  lease->inflight.clear();
  ActorState* a = FindPtr(actors_, lease->key);
  if (kit != keys_.end() && a) {
    if (lease->loss_handled) return;
    KeyState& ks = *kit->second;
    std::string cause = was_returned && !a->death_cause.empty() ? a->death_cause
                        : !lease->oom_message.empty() ? lease->oom_message
                        : lease->exit_code >= 0 ? "its worker process exited with code " + std::to_string(lease->exit_code)
                                                : "its worker process died (" + s.message() + ")";
    if (a->borrowed && !a->dead) {
      for (auto& [tid, t] : inflight) t->lease.reset();
      BorrowedActorLostLocked(ks, *a, s.message());
      return;
    }
    ActorWorkerLostLocked(ks, *a, std::move(inflight), cause);
    return;
  }
  for (auto& [tid, t] : inflight) {
    t->lease.reset();
    if (t->cancelled) {
      FailTaskLocked(t, ErrorRecordJson(ErrorKind::kCancelled, "TaskCancelledError",
                                        "task " + t->req.cls->name + " (" + tid.Hex() + ") was cancelled"));
    } else if (RetryLocked(t)) {
      // back at the front of its key's queue, for another worker
    } else if (!lease->oom_message.empty()) {
      FailTaskLocked(t, ErrorRecordJson(ErrorKind::kOom, "OutOfMemoryError",
                                        "task " + t->req.cls->name + " (" + tid.Hex() + ") failed after " +
                                            std::to_string(t->attempt + 1) + " attempt(s): " + lease->oom_message));
    } else {
      FailTaskLocked(t, ErrorRecordJson(ErrorKind::kWorkerCrashed, "WorkerCrashedError",
                                        "the worker running task " + t->req.cls->name +
                                            " died unexpectedly (" + s.message() + "); retries exhausted"));
    }
  }
  if (kit != keys_.end()) DispatchLocked(*kit->second);
}

}  // namespace rayts
