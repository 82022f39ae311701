// Owner/caller side of actors: creation, method calls through the per-actor
// ActorCallQueue (submission order, resends after a restart, failures with a
// cause), restarts, death and kill. An actor's own state is its ActorState
// (actor_state.h) in actors_; the lease of its worker is the KeyState of the
// same key in keys_. The executor side is task_execution.cc.
#include <cstring>

#include "core/common/json.h"
#include "core/common/error_record.h"
#include "core/core_worker/core_worker.h"
#include "core/core_worker/internal.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {
uint64_t ActorKey(const TaskID& actor) { return actor.Hash() ^ 0xac7042ac7042ull; }
}  // namespace

// An actor's state and its lease state (a fresh KeyState under its key):
// owned (created here) or borrowed (a handle to an actor owned elsewhere).
ActorState& CoreWorker::NewActorLocked(const TaskID& actor, bool borrowed) {
  uint64_t key = ActorKey(actor);
  auto& ks = keys_[key];
  ks = std::make_unique<KeyState>();
  ks->key = key;
  auto& a = actors_[key];
  a = std::make_unique<ActorState>(actor, key, borrowed);
  return *a;
}

StatusOr<TaskID> CoreWorker::CreateActor(SubmitRequest req, ObjectID* ready_id) {
  Guard lock(this);
  if (!req.cls) return Status::InvalidArgument("CreateActor: unknown class");
  TaskID actor = req.actor_id.IsNil() ? TaskID::FromRandom() : req.actor_id;
  ActorState& a = NewActorLocked(actor, /*borrowed=*/false);
  KeyState& ks = *keys_[a.key];
  ks.resources = req.cls->resources;
  a.max_restarts = req.max_restarts;
  a.detached = req.detached;
  a.max_task_retries = req.max_task_retries;
  req.actor_id = actor;
  req.actor_creation = true;
  req.num_returns = 1;
  req.max_retries = 0;
  // By-ref constructor arguments stay pinned for the actor's life (owned:
  // a submitted count; borrowed: this process's borrow stays registered):
  // a restart runs the constructor again with the same arguments.
  for (auto& arg : req.args) {
    if (!arg.by_ref) continue;
    if (IsSelf(arg.owner_address)) {
      arg.owner_address.clear();
    } else if (!refs_.Has(arg.id)) {
      continue;
    }
    refs_.AddSubmitted(arg.id);
    a.creation_arg_refs.push_back(arg.id);
  }
  a.creation = req;
  std::vector<ObjectID> ids;
  auto tid = SubmitLocked(std::move(req), ks.key, &ids);
  if (!tid.ok()) return tid.status();
  if (ready_id) *ready_id = ids[0];
  return actor;
}

StatusOr<TaskID> CoreWorker::SubmitActorTask(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  Guard lock(this);
  auto tid = SubmitActorTaskLocked(std::move(req), return_ids);
  // Refused: this call's nested refs (staged by the serializer) are held by
  // nothing.
  if (!tid.ok()) staged_nested_.clear();
  return tid;
}

StatusOr<TaskID> CoreWorker::SubmitActorTaskLocked(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  if (shutting_down_) return Status::Disconnected("rayts is shutting down");
  if (!req.cls) return Status::InvalidArgument("SubmitActorTask: unknown class");
  uint64_t key = ActorKey(req.actor_id);
  ActorState* a = FindPtr(actors_, key);
  if (!a) {
    if (keys_.count(key)) return Status::InvalidArgument("id " + req.actor_id.Hex() + " is not an actor");
    // A handle to an actor owned elsewhere: ask the GCS where it lives
    // (answered once it is alive or dead); calls queue meanwhile.
    a = &NewActorLocked(req.actor_id, /*borrowed=*/true);
    AskActorAddressLocked(*keys_[key], *a);
  }
  KeyState& ks = *keys_[key];
  a->calls.SetMaxPending(req.max_pending > 0 ? static_cast<size_t>(req.max_pending) : 0);
  RAYTS_RETURN_IF_ERROR(a->calls.CanEnqueue());
  // Retries of calls cut off by a restart are the owner's to give.
  int max_retries = a->CallRetries();
  auto t = NewPendingLocked(std::move(req), key, return_ids);
  tasks_[t->task_id] = t;
  NoteChildLocked(t->req.parent, t->task_id);
  t->actor_seq = a->calls.Enqueue(t->task_id, max_retries, /*ready=*/t->unresolved == 0);
  TakeActorFailuresLocked(*a);
  DispatchLocked(ks);
  return t->task_id;
}

// Fails the calls the call queue gave up on: with the actor's death record
// when it is dead, else with the queue's reason (no retries left).
void CoreWorker::TakeActorFailuresLocked(ActorState& a) {
  bool dead = a.calls.state() == ActorCallQueue::State::kDead;
  for (auto& [tid, reason] : a.calls.TakeFailed()) {
    auto it = tasks_.find(tid);
    if (it == tasks_.end()) continue;
    auto t = it->second;
    t->actor_seq = kNoActorSeq;  // already out of the queue
    t->lease.reset();
    FailTaskLocked(t, a.DiedJson(dead ? a.death_cause : reason));
  }
}

// The actor is reachable on a new connection (first placement, a restart,
// or a borrower's lookup): calls cut off earlier are resent or fail.
void CoreWorker::ActorConnectedLocked(ActorState& a) {
  a.calls.OnConnected(++a.epoch);
  TakeActorFailuresLocked(a);
}

void CoreWorker::DispatchActorLocked(KeyState& ks, ActorState& a) {
  if (a.dead) return;
  std::shared_ptr<Lease> lease;
  for (auto& l : ks.leases) {
    if (!l->returned) {
      lease = l;
      break;
    }
  }
  if (lease) {
    // The constructor first (a restart re-queues it), then the calls in
    // submission order on one connection; the executor orders by send_seq.
    while (!ks.queue.empty()) {
      auto t = ks.queue.front();
      ks.queue.pop_front();
      PushLocked(lease, t);
    }
    for (const ActorCallQueue::Call& c : a.calls.TakeSendable()) {
      auto it = tasks_.find(c.task);
      if (it == tasks_.end()) continue;
      auto& t = it->second;
      t->attempt = c.attempt;
      t->send_seq = c.send_seq;
      t->epoch_start = c.epoch_start;
      PushLocked(lease, t);
    }
    return;
  }
  // Owned: lease a worker once (the constructor call is queued); borrowed
  // actors wait for the GCS lookup instead.
  if (!a.borrowed && !ks.queue.empty() && ks.pending_requests == 0) RequestLeaseLocked(ks);
}

// The actor's worker is gone (died, or killed for a restart): restart it if
// its budget allows, else it is dead. `inflight`: calls that were running.
void CoreWorker::ActorWorkerLostLocked(KeyState& ks, ActorState& a,
                                       std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> inflight,
                                       const std::string& cause) {
  bool can_restart = a.CanRestart();
  for (auto& [tid, t] : inflight) t->lease.reset();
  if (!can_restart) {
    ActorDiedLocked(ks, a, cause);
    std::string json = a.DiedJson(a.death_cause);
    for (auto& [tid, t] : inflight) {
      if (t->req.actor_creation) FailTaskLocked(t, json);
    }
    return;
  }
  // Restart: a new worker, the constructor again, then the calls. The call
  // queue keeps the calls cut off here for a resend (while maxTaskRetries
  // allows) and fails the others now.
  a.num_restarts++;
  QueueControlLocked(gcs::ActorRestartingFrame(a.id, cause));
  for (auto& [tid, t] : inflight) {
    if (t->req.actor_creation) FinishTaskLocked(t);  // replaced below
  }
  a.calls.OnDisconnected(/*restarting=*/true, cause);
  TakeActorFailuresLocked(a);
  SubmitCreationLocked(ks, a);
  DispatchLocked(ks);
}

// A borrower's connection to the actor broke: the owner restarts it or
// records its death; ask the GCS again. Calls in flight fail (their
// retries are the owner's); queued calls wait for the new address.
void CoreWorker::BorrowedActorLostLocked(KeyState& ks, ActorState& a, const std::string& cause) {
  a.calls.OnDisconnected(/*restarting=*/true, "the connection to it was lost (" + cause + ")");
  TakeActorFailuresLocked(a);
  AskActorAddressLocked(ks, a);
}

// Queues the actor's constructor call ahead of everything (a restart).
void CoreWorker::SubmitCreationLocked(KeyState& ks, const ActorState& a) {
  auto t = std::make_shared<Pending>();
  TaskID tid = NextTaskIdLocked();
  t->task_id = tid;
  t->key = ks.key;
  // Its result only reports a constructor error: nobody holds a ref to it.
  t->req = a.creation;
  t->req.num_returns = 1;
  tasks_[tid] = t;
  ks.queue.push_front(t);
}

// Borrowed actor: ask the GCS where it lives (answered once it is alive or
// dead, in OnActorAddressLocked); its calls queue meanwhile.
void CoreWorker::AskActorAddressLocked(KeyState& ks, ActorState& a) {
  uint64_t rid = next_request_id_++;
  actor_waits_[rid] = ks.key;
  ks.pending_requests = 1;  // the lookup stands in for a lease request
  QueueControlLocked(gcs::WaitActorFrame(rid, a.id));
}

void CoreWorker::OnActorAddressLocked(KeyState& ks, ActorState& a, const StatusOr<gcs::ActorLocation>& where) {
  ks.pending_requests = 0;
  if (!where.ok()) {
    ActorDiedLocked(ks, a, "it is unknown to the cluster (" + where.status().message() + ")");
    return;
  }
  if (!where->alive) {
    ActorDiedLocked(ks, a, where->death_cause.empty() ? std::string("it died") : where->death_cause);
    return;
  }
  const std::string& rest = where->address;
  auto lease = std::make_shared<Lease>();
  lease->lease_id = 0;
  lease->address = rest;
  lease->key = ks.key;
  if (!ConnectLeaseLocked(lease)) {
    // The table may not yet know the worker died (the owner reports the
    // restart): ask again shortly, a bounded number of times.
    if (a.LookupFailed()) {
      ActorDiedLocked(ks, a, "its worker at " + rest + " is unreachable");
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(std::chrono::milliseconds(100));
    uint64_t key = ks.key;
    timer->async_wait([this, timer, key](const asio::error_code&) {
      Guard lock(this);
      KeyState* k = FindPtr(keys_, key);
      ActorState* act = FindPtr(actors_, key);
      if (!k || !act || act->dead) return;
      AskActorAddressLocked(*k, *act);
    });
    ks.pending_requests = 1;
    return;
  }
  a.lookup_retries = 0;
  ks.leases.push_back(lease);
  ActorConnectedLocked(a);
  DispatchLocked(ks);
}

void CoreWorker::ActorDiedLocked(KeyState& ks, ActorState& a, const std::string& cause) {
  if (a.MarkDead(cause)) {
    // The owner records the death in the GCS actor table.
    if (!a.borrowed) QueueControlLocked(gcs::ActorDeadFrame(a.id, cause));
    for (auto& id : a.TakeCreationArgRefs()) refs_.RemoveSubmitted(id);
  }
  a.calls.OnDisconnected(/*restarting=*/false, a.death_cause);
  TakeActorFailuresLocked(a);
  std::string json = a.DiedJson(a.death_cause);
  auto queue = std::move(ks.queue);  // a constructor call not sent yet
  ks.queue.clear();
  for (auto& t : queue) FailTaskLocked(t, json);
}

void CoreWorker::SetActorToken(const TaskID& actor, const ObjectID& token) {
  Guard lock(this);
  actor_tokens_[token] = actor;
}

// Called from OnReleased (inside a reference-counter operation): the kill
// runs on the io thread afterwards, never re-entering the counter.
void CoreWorker::ActorTokenReleasedLocked(const ObjectID& token) {
  auto it = actor_tokens_.find(token);
  if (it == actor_tokens_.end()) return;
  TaskID actor = it->second;
  actor_tokens_.erase(it);
  asio::post(io_, [this, actor] {
    Guard lock(this);
    KillActorLocked(actor, "all handles to it were released", /*no_restart=*/true, /*when_idle=*/true);
  });
}

void CoreWorker::KillActor(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) {
  Guard lock(this);
  KillActorLocked(actor, cause, no_restart, when_idle);
}

void CoreWorker::KillActorLocked(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) {
  uint64_t key = ActorKey(actor);
  ActorState* a = FindPtr(actors_, key);
  KeyState* k = FindPtr(keys_, key);
  if (!a || !k) return;
  KeyState& ks = *k;
  if (when_idle && !ActorIdleLocked(ks, *a)) {
    a->exit_when_idle = cause;  // OnPushReplyLocked ends it when the last call answers
    return;
  }
  if (no_restart) {
    a->no_restart = true;
    ActorDiedLocked(ks, *a, cause);
    if (ks.pending_requests > 0 && !a->borrowed && !ks.cancel_sent) {
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
      ActorWorkerLostLocked(ks, *a, std::move(inflight), cause);
    }
    return;
  }
  // The worker exits with its lease: calls in flight fail when it closes.
  auto leases = ks.leases;
  for (auto& l : leases) ReturnLeaseLocked(l, /*worker_exiting=*/true);
}

// No call queued, in flight or waiting for arguments, no constructor call
// pending and no lease request outstanding.
bool CoreWorker::ActorIdleLocked(const KeyState& ks, const ActorState& a) const {
  if (!ks.queue.empty() || ks.pending_requests > 0 || a.calls.num_pending() > 0) return false;
  for (auto& l : ks.leases) {
    if (!l->inflight.empty()) return false;
  }
  return true;
}

// After a reply: a kill deferred until the actor is idle happens now.
void CoreWorker::MaybeEndIdleActorLocked(KeyState& ks, ActorState& a) {
  if (a.exit_when_idle.empty() || !ActorIdleLocked(ks, a)) return;
  std::string cause = a.exit_when_idle;
  a.exit_when_idle.clear();
  a.no_restart = true;
  ActorDiedLocked(ks, a, cause);
  auto leases = ks.leases;
  for (auto& l : leases) ReturnLeaseLocked(l, /*worker_exiting=*/true);
}

}  // namespace rayts
