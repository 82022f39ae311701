#include "core/core_worker/core_worker.h"

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
    refs_.AddSubmitted(a.id);
    t->owned_arg_refs.push_back(a.id);
    const StoredObject* o = memory_store_.Find(a.id);
    if (o && !o->ready) {
      t->unresolved++;
      dependents_[a.id].push_back(t);
    }
  }
  t->req = std::move(req);
  auto& ks = keys_[t->key];
  if (!ks) {
    ks = std::make_unique<KeyState>();
    ks->key = t->key;
    ks->resources = t->req.cls->resources;
  }
  if (ks->actor && ks->actor_dead) {
    tasks_[tid] = t;
    FailTaskLocked(t, ActorDiedJson(ks->actor_id, ks->death_cause));
    return tid;
  }
  tasks_[tid] = t;
  if (t->unresolved == 0) EnqueueReadyLocked(t);
  return tid;
}

// The actor's worker is gone (died, or killed for a restart): restart it if
// its budget allows, else it is dead. `inflight`: calls that were running.
void CoreWorker::ActorWorkerLostLocked(KeyState& ks,
                                       std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> inflight,
                                       const std::string& cause) {
  bool can_restart = !ks.actor_dead && !ks.no_restart && !ks.actor_borrowed &&
                     (ks.max_restarts < 0 || ks.num_restarts < ks.max_restarts);
  if (!can_restart) {
    ActorDiedLocked(ks, cause);
    std::string json = ActorDiedJson(ks.actor_id, ks.death_cause);
    for (auto& [tid, t] : inflight) {
      t->lease.reset();
      FailTaskLocked(t, json);
    }
    return;
  }
  // Restart: a new worker, the constructor again, then the calls. Calls cut
  // off by the death are retried (in order) while maxTaskRetries allows.
  ks.num_restarts++;
  ActorGcsLocked("actor_restarting", ks.actor_id.Hex() + std::string(1, '\0') + cause);
  std::vector<std::shared_ptr<Pending>> cut;
  for (auto& [tid, t] : inflight) {
    t->lease.reset();
    if (t->req.actor_creation) {  // replaced below
      FinishTaskLocked(t);
      continue;
    }
    cut.push_back(t);
  }
  // Submission order: task ids of one process count up in bytes 8..15.
  auto seq = [](const TaskID& id) {
    uint64_t n;
    std::memcpy(&n, id.data() + 8, 8);
    return n;
  };
  std::sort(cut.begin(), cut.end(), [&](const auto& a, const auto& b) { return seq(a->task_id) < seq(b->task_id); });
  std::string json = ActorDiedJson(ks.actor_id, "it restarted while the call was running (" + cause + "); maxTaskRetries exhausted");
  for (auto it = cut.rbegin(); it != cut.rend(); ++it) {
    auto& t = *it;
    if (t->retries_left != 0) {
      if (t->retries_left > 0) t->retries_left--;
      t->attempt++;
      ks.queue.push_front(t);
    } else {
      FailTaskLocked(t, json);
    }
  }
  SubmitLockedFront(ks.creation, ks.key);
  DispatchLocked(ks);
}

// Task ids of this process: its random prefix, then a counter in bytes 8..15
// (so ids of one process sort by submission order on that counter).
TaskID CoreWorker::NextTaskIdLocked() {
  TaskID tid = put_task_id_;
  uint64_t counter = ++task_counter_;
  std::memcpy(tid.bytes.data() + 8, &counter, 8);
  return tid;
}

// Re-submits an actor's constructor call ahead of every queued call.
StatusOr<TaskID> CoreWorker::SubmitLockedFront(SubmitRequest req, uint64_t key) {
  auto t = std::make_shared<Pending>();
  TaskID tid = NextTaskIdLocked();
  t->task_id = tid;
  t->key = key;
  // Its result only reports a constructor error: nobody holds a ref to it.
  t->req = std::move(req);
  t->req.num_returns = 1;
  tasks_[tid] = t;
  keys_[key]->queue.push_front(t);
  return tid;
}

// ---------------------------------------------------------------- actors --

namespace {
uint64_t ActorKey(const TaskID& actor) { return actor.Hash() ^ 0xac7042ac7042ull; }
}  // namespace

std::string CoreWorker::ActorDiedJson(const TaskID& actor, const std::string& cause) {
  std::string out = "{\"kind\":\"actor_died\",\"name\":\"ActorDiedError\",\"message\":";
  JsonEscapeTo(&out, cause);
  out += ",\"actorId\":";
  JsonEscapeTo(&out, actor.Hex());
  auto kit = keys_.find(ActorKey(actor));
  if (kit != keys_.end() && !kit->second->death_cause_record.empty()) {
    out += ",\"cause\":" + kit->second->death_cause_record;  // the constructor's error record (JSON)
  }
  out += "}";
  return out;
}

StatusOr<TaskID> CoreWorker::CreateActor(SubmitRequest req, ObjectID* ready_id) {
  Guard lock(this);
  if (!req.cls) return Status::InvalidArgument("CreateActor: unknown class");
  TaskID actor = req.actor_id.IsNil() ? TaskID::FromRandom() : req.actor_id;
  uint64_t key = ActorKey(actor);
  auto& ks = keys_[key];
  ks = std::make_unique<KeyState>();
  ks->key = key;
  ks->resources = req.cls->resources;
  ks->actor = true;
  ks->actor_id = actor;
  ks->max_restarts = req.max_restarts;
  ks->detached = req.detached;
  ks->max_task_retries = req.max_task_retries;
  req.actor_id = actor;
  req.actor_creation = true;
  req.num_returns = 1;
  req.max_retries = 0;
  ks->creation = req;
  std::vector<ObjectID> ids;
  auto tid = SubmitLocked(std::move(req), key, &ids);
  if (!tid.ok()) return tid.status();
  if (ready_id) *ready_id = ids[0];
  return actor;
}

StatusOr<TaskID> CoreWorker::SubmitActorTask(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  Guard lock(this);
  uint64_t key = ActorKey(req.actor_id);
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    // A handle to an actor owned elsewhere: ask the GCS where it lives
    // (answered once it is alive or dead); calls queue meanwhile.
    auto ks = std::make_unique<KeyState>();
    ks->key = key;
    ks->actor = true;
    ks->actor_borrowed = true;
    ks->actor_id = req.actor_id;
    it = keys_.emplace(key, std::move(ks)).first;
    AskActorAddressLocked(*it->second);
  } else if (!it->second->actor) {
    return Status::InvalidArgument("id " + req.actor_id.Hex() + " is not an actor");
  }
  req.max_retries = it->second->actor_borrowed ? 0 : it->second->max_task_retries;
  if (req.max_pending > 0) {
    KeyState& ks = *it->second;
    size_t pending = 0;  // method calls queued or running (not the constructor call)
    for (auto& q : ks.queue) pending += q->req.actor_creation ? 0 : 1;
    for (auto& l : ks.leases)
      for (auto& [id, t] : l->inflight) pending += t->req.actor_creation ? 0 : 1;
    if (pending >= static_cast<size_t>(req.max_pending)) {
      staged_nested_.clear();  // this call's nested refs: nothing holds them now
      return Status::Unavailable("actor " + req.actor_id.Hex() + " has " + std::to_string(pending) +
                                 " pending calls, the limit set by maxPendingCalls (" + std::to_string(req.max_pending) +
                                 "); wait for some to finish or raise maxPendingCalls");
    }
  }
  return SubmitLocked(std::move(req), key, return_ids);
}

void CoreWorker::ActorGcsLocked(const std::string& method, const std::string& body) {
  Fbb fbb(128 + body.size());
  auto m = fbb.CreateString(method);
  auto b = fbb.CreateString(body);
  // Request id 0: nobody waits for the answer.
  QueueControlLocked(FinishFrame(fbb, proto::CreateGcsRequest(fbb, 0, m, b)));
}

// Borrowed actor: ask the GCS where it lives (answered once it is alive or
// dead, in OnActorAddressLocked); its calls queue meanwhile.
void CoreWorker::AskActorAddressLocked(KeyState& ks) {
  uint64_t rid = next_request_id_++;
  actor_waits_[rid] = ks.key;
  ks.pending_requests = 1;  // the lookup stands in for a lease request
  Fbb fbb(128);
  auto m = fbb.CreateString("actor_wait");
  auto b = fbb.CreateString(ks.actor_id.Hex());
  QueueControlLocked(FinishFrame(fbb, proto::CreateGcsRequest(fbb, rid, m, b)));
}

void CoreWorker::OnActorAddressLocked(KeyState& ks, const std::string& reply, int code, const std::string& message) {
  ks.pending_requests = 0;
  if (code != 0) {
    ActorDiedLocked(ks, "it is unknown to the cluster (" + message + ")");
    return;
  }
  size_t z = reply.find('\0');
  std::string state = reply.substr(0, z);
  std::string rest = z == std::string::npos ? std::string() : reply.substr(z + 1);
  if (state != "ALIVE") {
    ActorDiedLocked(ks, rest.empty() ? std::string("it died") : rest);
    return;
  }
  auto lease = std::make_shared<Lease>();
  lease->lease_id = 0;
  lease->address = rest;
  lease->key = ks.key;
  if (!ConnectLeaseLocked(lease)) {
    // The table may not yet know the worker died (the owner reports the
    // restart): ask again shortly, a bounded number of times.
    if (++ks.lookup_retries > kActorLookupRetries) {
      ActorDiedLocked(ks, "its worker at " + rest + " is unreachable");
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(std::chrono::milliseconds(100));
    uint64_t key = ks.key;
    timer->async_wait([this, timer, key](const asio::error_code&) {
      Guard lock(this);
      auto kit = keys_.find(key);
      if (kit == keys_.end() || kit->second->actor_dead) return;
      AskActorAddressLocked(*kit->second);
    });
    ks.pending_requests = 1;
    return;
  }
  ks.lookup_retries = 0;
  ks.leases.push_back(lease);
  DispatchLocked(ks);
}

void CoreWorker::ActorDiedLocked(KeyState& ks, const std::string& cause) {
  if (!ks.actor_dead) {
    ks.actor_dead = true;
    ks.death_cause = cause;
    // The owner records the death in the GCS actor table.
    if (!ks.actor_borrowed) ActorGcsLocked("actor_dead", ks.actor_id.Hex() + std::string(1, '\0') + cause);
  }
  std::string json = ActorDiedJson(ks.actor_id, ks.death_cause);
  auto queue = std::move(ks.queue);
  ks.queue.clear();
  for (auto& t : queue) FailTaskLocked(t, json);
}

void CoreWorker::KillActor(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) {
  Guard lock(this);
  auto it = keys_.find(ActorKey(actor));
  if (it == keys_.end() || !it->second->actor) return;
  KeyState& ks = *it->second;
  if (when_idle) {
    size_t busy = ks.queue.size();
    for (auto& l : ks.leases) busy += l->inflight.size();
    if (busy > 0 || ks.pending_requests > 0) {
      ks.exit_when_idle = cause;  // OnPushReplyLocked ends it when the last call answers
      return;
    }
  }
  if (no_restart) {
    ks.no_restart = true;
    ActorDiedLocked(ks, cause);
    if (ks.pending_requests > 0 && !ks.actor_borrowed && !ks.cancel_sent) {
      // Not placed yet: withdraw the lease request.
      ks.cancel_sent = true;
      Fbb fbb(64);
      QueueControlLocked(FinishFrame(fbb, proto::CreateCancelLeaseRequest(fbb, ks.pending_request_id)));
    }
  } else {
    // Kill for a restart: handle the loss now, so calls made from here on
    // queue behind the constructor call of the new incarnation.
    auto leases = ks.leases;
    for (auto& l : leases) {
      auto inflight = std::move(l->inflight);
      l->inflight.clear();
      l->loss_handled = true;
      ReturnLeaseLocked(l, /*worker_exiting=*/true);
      ActorWorkerLostLocked(ks, std::move(inflight), cause);
    }
    return;
  }
  // The worker exits with its lease: calls in flight fail when it closes.
  auto leases = ks.leases;
  for (auto& l : leases) ReturnLeaseLocked(l, /*worker_exiting=*/true);
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
      FailTaskLocked(t, ErrorRecordJson("object_lost", "ObjectLostError",
                                        "argument object " + id.Hex() + " was freed before the task ran", id.Hex()));
      return;
    }
  }
  auto& ks = *keys_[t->key];
  ks.queue.push_back(t);
  DispatchLocked(ks);
}

void CoreWorker::DispatchLocked(KeyState& ks) {
  if (ks.actor) {
    // The actor's one worker runs calls in arrival order: push them all, in
    // order; lease once, keep it for the actor's life.
    if (ks.actor_dead) return;
    for (auto& lease : ks.leases) {
      if (lease->returned) continue;
      while (!ks.queue.empty()) {
        auto t = ks.queue.front();
        ks.queue.pop_front();
        PushLocked(lease, t);
      }
    }
    if (!ks.queue.empty() && ks.leases.empty() && ks.pending_requests == 0) RequestLeaseLocked(ks);
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
  QueueControlLocked(FinishFrame(fbb, proto::CreateRequestWorkerLease(fbb, req_id, ks.key, rv, ks.actor, ks.detached)));
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
    std::string json = ErrorRecordJson("system", r->code() == static_cast<int>(StatusCode::kInfeasible)
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
  if (ks.actor && ks.actor_dead) {
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
  auto spec = proto::CreateTaskSpec(fbb, tid, job_id_, caller, owner, fd, argv, r.num_returns, name, t->attempt,
                                    actor, r.actor_creation, method, r.max_concurrency, groups, r.release_cpu);
  QueueToLocked(lease->conn, FinishFrame(fbb, proto::CreatePushTask(fbb, spec)));
}

void CoreWorker::OnWorkerMessage(const std::shared_ptr<Lease>& lease, const proto::Envelope& env) {
  Guard lock(this);
  if (env.body_type() == proto::Body::WorkerExiting) {
    lease->exit_code = env.body_as_WorkerExiting()->code();
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
    FailTaskLocked(t, ErrorRecordJson("system", "RaySystemError", Str(r->message())));
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
      if (!t->req.actor_creation && !t->req.actor_id.IsNil() && r->returns()->size() > 0 &&
          r->returns()->Get(0)->is_error()) {
        // ray.exitActor(): the actor's last call reports its exit.
        auto* d = r->returns()->Get(0)->data();
        std::string_view rec = d ? std::string_view(reinterpret_cast<const char*>(d->data()), d->size()) : std::string_view();
        if (rec.find("\"kind\":\"actor_died\"") != std::string_view::npos && rec.find("ray.exitActor") != std::string_view::npos) {
          auto kit = keys_.find(lease->key);
          if (kit != keys_.end()) ActorDiedLocked(*kit->second, "it exited (ray.exitActor())");
        }
      }
      if (t->req.actor_creation && r->returns()->size() > 0 && !r->returns()->Get(0)->is_error()) {
        // Constructed: only now may other processes call it.
        auto kit = keys_.find(lease->key);
        if (kit != keys_.end() && !kit->second->actor_borrowed) {
          ActorGcsLocked("actor_alive", kit->second->actor_id.Hex() + std::string(1, '\0') + lease->address);
        }
      }
      if (t->req.actor_creation && r->returns()->size() > 0 && r->returns()->Get(0)->is_error()) {
        // The constructor threw: the actor is dead, with that error as cause.
        auto kit = keys_.find(lease->key);
        auto* d = r->returns()->Get(0)->data();
        if (kit != keys_.end()) {
          if (d) kit->second->death_cause_record.assign(reinterpret_cast<const char*>(d->data()), d->size());
          ActorDiedLocked(*kit->second, "its constructor threw");
        }
      }
      RecordLineageLocked(t);  // normal tasks with a plasma return: kept for reconstruction
    }
    FinishTaskLocked(t);
  }
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) DispatchLocked(*kit->second);
  if (kit != keys_.end() && kit->second->actor && !kit->second->exit_when_idle.empty() &&
      kit->second->queue.empty() && lease->inflight.empty()) {
    KeyState& ks = *kit->second;
    std::string cause = ks.exit_when_idle;
    ks.exit_when_idle.clear();
    ks.no_restart = true;
    ActorDiedLocked(ks, cause);
    auto leases = ks.leases;
    for (auto& l : leases) ReturnLeaseLocked(l, /*worker_exiting=*/true);
    return;
  }
  MaybeReturnLeaseLocked(lease);
}

void CoreWorker::FinishTaskLocked(const std::shared_ptr<Pending>& t) {
  tasks_.erase(t->task_id);
  t->lease.reset();
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
  if (kit != keys_.end() && kit->second->actor) return;  // held for the actor's life
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
  if (kit != keys_.end() && kit->second->actor) {
    if (lease->loss_handled) return;
    KeyState& ks = *kit->second;
    std::string cause = was_returned && !ks.death_cause.empty() ? ks.death_cause
                        : lease->exit_code >= 0 ? "its worker process exited with code " + std::to_string(lease->exit_code)
                                                : "its worker process died (" + s.message() + ")";
    if (ks.actor_borrowed && !ks.actor_dead) {
      // Owned elsewhere: the owner restarts it or records its death; ask the
      // GCS again. Calls cut off here fail (their retries are the owner's).
      std::string json = ActorDiedJson(ks.actor_id, "the connection to it was lost (" + s.message() + ")");
      for (auto& [tid, t] : inflight) {
        t->lease.reset();
        FailTaskLocked(t, json);
      }
      AskActorAddressLocked(ks);
      return;
    }
    ActorWorkerLostLocked(ks, std::move(inflight), cause);
    return;
  }
  for (auto& [tid, t] : inflight) {
    t->lease.reset();
    if (t->cancelled) {
      FailTaskLocked(t, ErrorRecordJson("cancelled", "TaskCancelledError",
                                        "task " + t->req.cls->name + " (" + tid.Hex() + ") was cancelled"));
    } else if (t->retries_left != 0) {
      if (t->retries_left > 0) t->retries_left--;
      t->attempt++;
      if (kit != keys_.end()) kit->second->queue.push_front(t);
    } else {
      FailTaskLocked(t, ErrorRecordJson("worker_crashed", "WorkerCrashedError",
                                        "the worker running task " + t->req.cls->name +
                                            " died unexpectedly (" + s.message() + "); retries exhausted"));
    }
  }
  if (kit != keys_.end()) DispatchLocked(*kit->second);
}

void CoreWorker::CancelTask(const TaskID& task, bool force, bool recursive) {
  Guard lock(this);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return;
  auto t = it->second;
  t->cancelled = true;
  std::string json = ErrorRecordJson("cancelled", "TaskCancelledError",
                                     "task " + t->req.cls->name + " (" + task.Hex() + ") was cancelled");
  if (!t->lease) {
    auto kit = keys_.find(t->key);
    if (kit != keys_.end()) {
      auto& q = kit->second->queue;
      q.erase(std::remove(q.begin(), q.end(), t), q.end());
    }
    for (auto& [id, v] : dependents_) v.erase(std::remove(v.begin(), v.end(), t), v.end());
    FailTaskLocked(t, json);
    return;
  }
  Fbb fbb(64);
  auto tid = IdBytes(fbb, task);
  QueueToLocked(t->lease->conn, FinishFrame(fbb, proto::CreateCancelTask(fbb, tid, force, recursive)));
}

}  // namespace rayts
