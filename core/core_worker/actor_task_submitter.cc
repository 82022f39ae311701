#include "core/core_worker/actor_task_submitter.h"

#include <algorithm>

#include "core/common/error_record.h"
#include "core/core_worker/task_frames.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {
uint64_t ActorKey(const TaskID& actor) { return actor.Hash() ^ 0xac7042ac7042ull; }
}  // namespace

ActorState* ActorTaskSubmitter::FindLocked(uint64_t key) {
  auto it = actors_.find(key);
  return it == actors_.end() ? nullptr : it->second.get();
}

// Owned (created here) or borrowed (a handle to an actor owned elsewhere).
ActorState& ActorTaskSubmitter::NewActorLocked(const TaskID& actor, bool borrowed) {
  uint64_t key = ActorKey(actor);
  auto& a = actors_[key];
  a = std::make_unique<ActorState>(actor, key, borrowed);
  return *a;
}

// ------------------------------------------------------------ submission --

StatusOr<TaskID> ActorTaskSubmitter::Create(SubmitRequest req, ObjectID* ready_id) {
  CoreGuard lock(ctx_);
  if (!req.cls) return Status::InvalidArgument("CreateActor: unknown class");
  if (ctx_.shutting_down) return Status::Disconnected("rayts is shutting down");
  TaskID actor = req.actor_id.IsNil() ? TaskID::FromRandom() : req.actor_id;
  ActorState& a = NewActorLocked(actor, /*borrowed=*/false);
  a.resources = req.cls->resources;
  a.scheduling = req.cls->scheduling;
  a.max_restarts = req.actor().max_restarts;
  a.detached = req.actor().detached;
  a.max_task_retries = req.actor().max_task_retries;
  req.actor_id = actor;
  req.mutable_actor().actor_creation = true;
  req.num_returns = 1;
  req.max_retries = 0;
  // By-ref constructor arguments stay pinned for the actor's life (owned:
  // a submitted count; borrowed: this process's borrow stays registered):
  // a restart runs the constructor again with the same arguments.
  for (auto& arg : req.args) {
    if (!arg.by_ref) continue;
    if (ctx_.IsSelf(arg.owner_address())) {
      arg.SetOwnedHere();
    } else if (!refs_->Has(arg.id)) {
      continue;
    }
    refs_->AddSubmitted(arg.id);
    a.creation_arg_refs.push_back(arg.id);
  }
  a.creation = req;
  std::vector<ObjectID> ids;
  auto t = tasks_.NewTaskLocked(std::move(req), a.key, &ids);
  tasks_.AddLocked(t);
  if (a.detached) {  // the GCS creates it again from this if its node dies once this owner is gone
    std::string why, spec = ActorRestartSpecBytes(*t, a.resources, a.scheduling, a.LeaseRetriable(), ctx_, objects_.store(), &why);
    transport_.SendToNode(gcs::ActorRestartSpecFrame(a.id, spec, why));
  }
  tasks_.ScheduleLocked(t);
  if (ready_id) *ready_id = ids[0];
  return actor;
}

StatusOr<TaskID> ActorTaskSubmitter::Submit(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  CoreGuard lock(ctx_);
  auto refuse = [&](Status s) {
    ctx_.AssertHeld();
    tasks_.DiscardStagedLocked();  // refused: this call's nested refs are held by nothing
    return s;
  };
  if (ctx_.shutting_down) return refuse(Status::Disconnected("rayts is shutting down"));
  if (!req.cls) return refuse(Status::InvalidArgument("SubmitActorTask: unknown class"));
  uint64_t key = ActorKey(req.actor_id);
  ActorState* a = FindLocked(key);
  if (!a) {
    // A handle to an actor owned elsewhere: ask the GCS where it lives
    // (answered once it is alive or dead); calls queue meanwhile.
    a = &NewActorLocked(req.actor_id, /*borrowed=*/true);
    a->max_task_retries = req.actor().max_task_retries;  // the handle carries the actor's maxTaskRetries
    AskAddressLocked(*a);
  }
  a->calls.SetMaxPending(req.actor().max_pending > 0 ? static_cast<size_t>(req.actor().max_pending) : 0);
  if (Status s = a->calls.CanEnqueue(); !s.ok()) return refuse(s);
  // Resends of calls cut off by a restart (maxTaskRetries).
  int max_retries = a->CallRetries();
  auto t = tasks_.NewTaskLocked(std::move(req), key, return_ids);
  tasks_.AddLocked(t);
  t->actor_seq = a->calls.Enqueue(t->task_id, max_retries, /*ready=*/t->unresolved == 0);
  TakeFailuresLocked(*a);
  DispatchLocked(*a);
  return t->task_id;
}

void ActorTaskSubmitter::EnqueueLocked(const std::shared_ptr<PendingTask>& t) {
  ActorState* a = FindLocked(t->key);
  if (!a) {
    tasks_.FailLocked(t, ErrorRecordJson(ErrorKind::kActorDied, "ActorDiedError",
                                         "the actor of task " + t->task_id.Hex() + " is unknown here"));
    return;
  }
  if (t->actor_seq != kNoActorSeq) {
    a->calls.MarkReady(t->actor_seq);  // sent in submission order
  } else {
    a->queue.push_back(t);
  }
  DispatchLocked(*a);
}

void ActorTaskSubmitter::RequeueFrontLocked(const std::shared_ptr<PendingTask>& t) {
  if (ActorState* a = FindLocked(t->key)) a->queue.push_front(t);
}

void ActorTaskSubmitter::RemoveQueuedLocked(const std::shared_ptr<PendingTask>& t) {
  ActorState* a = FindLocked(t->key);
  if (!a) return;
  a->queue.erase(std::remove(a->queue.begin(), a->queue.end(), t), a->queue.end());
}

void ActorTaskSubmitter::CallRepliedLocked(const PendingTask& t) {
  if (ActorState* a = FindLocked(t.key)) a->calls.OnReplied(t.actor_seq);
}

// Fails the calls the call queue gave up on: with the actor's death record
// when it is dead, else with the queue's reason (no retries left).
void ActorTaskSubmitter::TakeFailuresLocked(ActorState& a) {
  bool dead = a.calls.state() == ActorCallQueue::State::kDead;
  for (auto& [tid, reason] : a.calls.TakeFailed()) {
    auto t = tasks_.FindLocked(tid);
    if (!t) continue;
    t->actor_seq = kNoActorSeq;  // already out of the queue
    t->lease.reset();
    tasks_.FailLocked(t, a.DiedJson(dead ? a.death_cause : reason));
  }
}

// The actor is reachable on a new connection (first placement, a restart,
// or a borrower's lookup): calls cut off earlier are resent or fail.
void ActorTaskSubmitter::ConnectedLocked(ActorState& a) {
  a.calls.OnConnected(++a.epoch);
  TakeFailuresLocked(a);
}

void ActorTaskSubmitter::DispatchLocked(ActorState& a) {
  if (a.dead) return;
  std::shared_ptr<Lease> lease;
  for (auto& l : a.leases) {
    if (!l->returned) {
      lease = l;
      break;
    }
  }
  if (lease) {
    // The constructor first (a restart re-queues it), then the calls in
    // submission order on one connection; the executor orders by send_seq.
    while (!a.queue.empty()) {
      auto t = a.queue.front();
      a.queue.pop_front();
      PushOnLease(lease, t, transport_.Now(), ctx_, objects_.store());
    }
    if (!a.constructed && !a.borrowed) return;  // calls wait for the constructor's answer
    for (const ActorCallQueue::Call& c : a.calls.TakeSendable()) {
      auto t = tasks_.FindLocked(c.task);
      if (!t) continue;
      t->attempt = c.attempt;
      t->send_seq = c.send_seq;
      t->epoch_start = c.epoch_start;
      PushOnLease(lease, t, transport_.Now(), ctx_, objects_.store());
    }
    return;
  }
  // Owned: lease a worker once (the constructor call is queued); borrowed
  // actors wait for the GCS lookup instead.
  if (!a.borrowed && !a.queue.empty() && a.pending_requests == 0) RequestLeaseLocked(a);
}

// ----------------------------------------------------------------- lease --

void ActorTaskSubmitter::RequestLeaseLocked(ActorState& a, const std::string& node) {
  uint64_t req_id = ctx_.NextRequestId();
  a.pending_requests++;
  a.pending_request_id = req_id;
  a.pending_node = node;
  a.cancel_sent = false;
  lease_requests_[req_id] = a.key;
  // Retriable: the memory monitor kills such workers first.
  nodes_.SendRequestLocked(node, req_id,
                           LeaseRequestFrame(req_id, a.key, a.resources, true, a.detached, a.LeaseRetriable(),
                                             a.scheduling, /*grant_or_reject=*/!node.empty(), NodeID::Nil(),
                                             node.empty() ? "" : ctx_.address()));
}

bool ActorTaskSubmitter::OnLeaseReplyLocked(const proto::LeaseReply& r) {
  auto it = lease_requests_.find(r.request_id());
  if (it == lease_requests_.end()) return false;
  uint64_t key = it->second;
  lease_requests_.erase(it);
  ActorState* a = FindLocked(key);
  if (!a) return true;
  a->pending_requests--;
  if (r.code() == 0 && (r.rejected() || r.retry_at_address())) {
    // Spillback: ask the node the reply names; rejected there: this node again.
    if (!r.rejected() && r.retry_at_node_id() && r.retry_at_node_id()->size() == NodeID::kSize) {
      node_ids_[Str(r.retry_at_address())] = IdFrom<NodeID>(r.retry_at_node_id()).Hex();
    }
    if (!a->dead && !a->cancel_sent && !a->queue.empty()) {
      RequestLeaseLocked(*a, r.rejected() ? "" : Str(r.retry_at_address()));
    }
    return true;
  }
  if (r.code() != 0) {
    if (static_cast<StatusCode>(r.code()) == StatusCode::kCancelled) {
      DispatchLocked(*a);
      return true;
    }
    // Infeasible or failed: the constructor call fails now with that
    // error, and the actor is dead with it as the cause, so its calls
    // reject at once instead of waiting for a worker that never comes.
    bool infeasible = r.code() == static_cast<int>(StatusCode::kInfeasible);
    std::string json = ErrorRecordJson(ErrorKind::kSystem, infeasible ? "InfeasibleResourceError" : "RaySystemError",
                                       Str(r.message()));
    auto queue = std::move(a->queue);
    a->queue.clear();
    for (auto& t : queue) tasks_.FailLocked(t, json);
    a->death_cause_record = json;
    DiedLocked(*a, (infeasible ? "it cannot be placed: " : "its worker lease failed: ") + Str(r.message()));
    return true;
  }
  auto lease = std::make_shared<Lease>();
  lease->lease_id = r.lease_id();
  lease->worker_id = IdFrom<WorkerID>(r.worker_id());
  lease->address = Str(r.worker_address());
  lease->key = key;
  lease->node = a->pending_node;
  lease->node_link = nodes_.LinkLocked(a->pending_node);
  if (a->dead) {
    // Killed before its worker arrived: give the worker (and its CPU) back.
    ReturnLeaseLocked(*a, lease, /*worker_exiting=*/false);
    return true;
  }
  if (!ConnectLeaseLocked(lease)) {
    ReturnLeaseLocked(*a, lease, true);
    DispatchLocked(*a);
    return true;
  }
  a->leases.push_back(lease);
  ConnectedLocked(*a);
  DispatchLocked(*a);
  return true;
}

bool ActorTaskSubmitter::ConnectLeaseLocked(const std::shared_ptr<Lease>& lease) {
  return ConnectLease(
      lease, transport_, ctx_, tasks_,
      [this](const std::shared_ptr<Lease>& l, const proto::PushTaskReply& r) {
        ctx_.AssertHeld();
        OnPushReplyLocked(l, r);
      },
      [this](const std::shared_ptr<Lease>& l, const Status& s) {
        ctx_.AssertHeld();
        OnLeaseClosedLocked(l, s);
      });
}

void ActorTaskSubmitter::ReturnLeaseLocked(ActorState& a, const std::shared_ptr<Lease>& lease, bool worker_exiting) {
  if (lease->returned) return;
  ReturnLease(*lease, transport_, worker_exiting);
  a.leases.erase(std::remove(a.leases.begin(), a.leases.end(), lease), a.leases.end());
}

void ActorTaskSubmitter::OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply& r) {
  auto it = lease->inflight.find(IdFrom<TaskID>(r.task_id()));
  if (it == lease->inflight.end()) return;
  auto t = it->second;
  lease->inflight.erase(it);
  tasks_.HandleReplyLocked(t, r, [&] {
    ctx_.AssertHeld();
    ActorState* a = FindLocked(lease->key);
    if (!a || !r.returns()) return;
    const SubmitRequest& req = t->req;
    if (r.actor_exited() && !req.actor().actor_creation) {
      // ray.exitActor(): the actor's last call reports its exit.
      DiedLocked(*a, "it exited (ray.exitActor())");
    }
    if (req.actor().actor_creation && r.returns()->size() > 0 && !r.returns()->Get(0)->is_error()) {
      // Constructed: only now may other processes call it, and this one send its calls.
      a->constructed = true;
      if (!a->borrowed) transport_.SendToNode(gcs::ActorAliveFrame(a->id, lease->address));
    }
    if (req.actor().actor_creation && r.returns()->size() > 0 && r.returns()->Get(0)->is_error()) {
      // The constructor threw: the actor is dead, with that error as cause.
      if (auto* d = r.returns()->Get(0)->data()) {
        a->death_cause_record.assign(reinterpret_cast<const char*>(d->data()), d->size());
      }
      DiedLocked(*a, "its constructor threw");
    }
  });
  if (ActorState* a = FindLocked(lease->key)) {
    DispatchLocked(*a);
    MaybeEndIdleLocked(*a);
  }
}

void ActorTaskSubmitter::OnLeaseClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) {
  if (ctx_.shutting_down) return;
  bool was_returned = lease->returned;
  lease->returned = true;
  ActorState* a = FindLocked(lease->key);
  if (!a) return;
  a->leases.erase(std::remove(a->leases.begin(), a->leases.end(), lease), a->leases.end());
  auto inflight = std::move(lease->inflight);
  lease->inflight.clear();
  if (lease->loss_handled) return;
  // Granted by another node whose connection broke too (its daemon died:
  // its workers end with it): the node's death is the cause.
  bool node_lost = !lease->node.empty() && (lease->node_lost || (lease->node_link && lease->node_link->closed()));
  std::string cause = was_returned && !a->death_cause.empty() ? a->death_cause
                      : node_lost                              ? NodeLostCauseLocked(lease->node)
                      : !lease->oom_message.empty()            ? lease->oom_message
                      : lease->exit_code >= 0 ? "its worker process exited with code " + std::to_string(lease->exit_code)
                                              : "its worker process died (" + s.message() + ")";
  if (a->borrowed && !a->dead) {
    for (auto& [tid, t] : inflight) t->lease.reset();
    BorrowedLostLocked(*a, lease->address, s.message());
    return;
  }
  if (!node_lost && !was_returned && !a->dead && lease->exit_code < 0 && lease->oom_message.empty() &&
      !lease->node.empty() && !a->held_lease) {
    HoldLossLocked(*a, lease, std::move(inflight), std::move(cause));
    return;
  }
  WorkerLostLocked(*a, std::move(inflight), cause);
}

// ------------------------------------------------------------ restarts --

// The actor's worker is gone (died, or killed for a restart): restart it if
// its budget allows, else it is dead. `inflight`: calls that were running.
void ActorTaskSubmitter::WorkerLostLocked(ActorState& a, Inflight inflight, const std::string& cause) {
  bool can_restart = a.CanRestart();
  for (auto& [tid, t] : inflight) t->lease.reset();
  if (!can_restart) {
    DiedLocked(a, cause);
    std::string json = a.DiedJson(a.death_cause);
    for (auto& [tid, t] : inflight) {
      if (t->req.actor().actor_creation) tasks_.FailLocked(t, json);
    }
    return;
  }
  // Restart: a new worker, the constructor again, then the calls. The call
  // queue keeps the calls cut off here for a resend (while maxTaskRetries
  // allows) and fails the others now.
  a.num_restarts++;
  a.constructed = false;
  transport_.SendToNode(gcs::ActorRestartingFrame(a.id, cause));
  for (auto& [tid, t] : inflight) {
    if (t->req.actor().actor_creation) tasks_.FinishLocked(t);  // replaced below
  }
  a.calls.OnDisconnected(/*restarting=*/true, cause);
  TakeFailuresLocked(a);
  SubmitCreationLocked(a);
  DispatchLocked(a);
}

// A borrower's connection to the actor broke: the owner restarts it or
// records its death; ask the GCS again. Calls in flight are resent to the
// new address while the actor's maxTaskRetries (from the handle) allows,
// else they fail; queued calls wait for the new address.
void ActorTaskSubmitter::BorrowedLostLocked(ActorState& a, const std::string& address, const std::string& cause) {
  a.lost_address = address;
  a.calls.OnDisconnected(/*restarting=*/true, "the connection to it was lost (" + cause + ")");
  TakeFailuresLocked(a);
  AskAddressLocked(a);
}

// Queues the actor's constructor call ahead of everything (a restart).
void ActorTaskSubmitter::SubmitCreationLocked(ActorState& a) {
  auto t = std::make_shared<PendingTask>();
  t->task_id = ctx_.NextTaskId();
  t->key = a.key;
  // Its result only reports a constructor error: nobody holds a ref to it.
  t->req = a.creation;
  t->req.num_returns = 1;
  t->attempt = a.num_restarts;  // the executor's wasCurrentActorReconstructed
  tasks_.AddLocked(t, /*child_of_running=*/false);
  a.queue.push_front(t);
}

// Borrowed actor: ask the GCS where it lives (answered once it is alive or
// dead, in OnAddressLocked); its calls queue meanwhile.
void ActorTaskSubmitter::AskAddressLocked(ActorState& a) {
  uint64_t rid = ctx_.NextRequestId();
  lookups_[rid] = a.key;
  a.pending_requests = 1;  // the lookup stands in for a lease request
  transport_.SendToNode(gcs::WaitActorFrame(rid, a.id));
}

bool ActorTaskSubmitter::OnGcsReplyLocked(uint64_t request_id, const proto::Envelope& env) {
  auto it = lookups_.find(request_id);
  if (it == lookups_.end()) return false;
  uint64_t key = it->second;
  lookups_.erase(it);
  ActorState* a = FindLocked(key);
  if (a && env.body_type() == proto::Body::GcsReply) OnAddressLocked(*a, gcs::ReadWaitActorReply(*env.body_as_GcsReply()));
  return true;
}

void ActorTaskSubmitter::OnAddressLocked(ActorState& a, const StatusOr<gcs::ActorLocation>& where) {
  a.pending_requests = 0;
  if (!where.ok()) {
    DiedLocked(a, "it is unknown to the cluster (" + where.status().message() + ")");
    return;
  }
  if (!where->alive) {
    DiedLocked(a, where->death_cause.empty() ? std::string("it died") : where->death_cause);
    return;
  }
  const std::string& address = where->address;
  auto lease = std::make_shared<Lease>();
  lease->lease_id = 0;
  lease->address = address;
  lease->key = a.key;
  // The address whose connection just broke: the table does not know yet
  // that the worker died (a dying process may even still accept, then
  // reset). Treated as unreachable, so the call is not resent into it.
  if (address == a.lost_address || !ConnectLeaseLocked(lease)) {
    // The table may not yet know the worker died (the owner reports the
    // restart): ask again shortly, a bounded number of times.
    if (a.LookupFailed(/*stale=*/address == a.lost_address)) {
      DiedLocked(a, "its worker at " + address + " is unreachable");
      return;
    }
    if (!a.lookup_timer) a.lookup_timer = transport_.NewTimer();
    uint64_t key = a.key;
    a.lookup_timer->Arm(std::chrono::milliseconds(100), [this, key] {
      ctx_.AssertHeld();
      ActorState* act = FindLocked(key);
      if (act && !act->dead) AskAddressLocked(*act);
    });
    a.pending_requests = 1;
    return;
  }
  a.lookup_retries = 0;
  a.lost_address.clear();
  a.leases.push_back(lease);
  ConnectedLocked(a);
  DispatchLocked(a);
}

// ------------------------------------------------------------- death --

void ActorTaskSubmitter::DiedLocked(ActorState& a, const std::string& cause) {
  Inflight held = TakeHeldLossLocked(a);  // killed while a lost worker's loss was held
  if (a.MarkDead(cause)) {
    // The owner records the death in the GCS actor table.
    if (!a.borrowed) transport_.SendToNode(gcs::ActorDeadFrame(a.id, cause));
    if (a.borrowed && !owners_.empty()) owners_.erase(a.id);
    for (auto& id : a.TakeCreationArgRefs()) refs_->RemoveSubmitted(id);
  }
  a.calls.OnDisconnected(/*restarting=*/false, a.death_cause);
  TakeFailuresLocked(a);
  std::string json = a.DiedJson(a.death_cause);
  auto queue = std::move(a.queue);  // a constructor call not sent yet
  a.queue.clear();
  for (auto& t : queue) tasks_.FailLocked(t, json);
  for (auto& [tid, t] : held) {
    if (t->req.actor().actor_creation) tasks_.FailLocked(t, json);  // method calls: failed by the call queue above
  }
}

void ActorTaskSubmitter::SetOwner(const TaskID& actor, std::string owner_address) {
  CoreGuard lock(ctx_);
  if (owner_address.empty()) return;
  owners_[actor] = std::move(owner_address);
}

void ActorTaskSubmitter::OwnedDiedWithLocked(const ActorState& owner) {
  owners_.erase(owner.id);
  if (owners_.empty()) return;
  std::vector<TaskID> victims;
  for (const auto& [child, address] : owners_) {
    for (const auto& l : owner.leases) {
      if (l->address == address) victims.push_back(child);
    }
  }
  const std::string cause = "the actor is dead because its owner has died (actor " + owner.id.Hex() +
                            " was killed by ray.kill())";
  for (const TaskID& child : victims) {
    owners_.erase(child);
    // Known here even before its first call: later calls fail at once.
    ActorState* c = FindLocked(ActorKey(child));
    if (!c) c = &NewActorLocked(child, /*borrowed=*/true);
    c->no_restart = true;
    DiedLocked(*c, cause);  // its node ends its worker when the owner's connection closes
  }
}

void ActorTaskSubmitter::SetToken(const TaskID& actor, const ObjectID& token) {
  CoreGuard lock(ctx_);
  tokens_[token] = actor;
}

// Called from inside a reference-counter operation: the kill runs after
// the current handler, never re-entering the counter.
void ActorTaskSubmitter::OnOwnedReleasedLocked(const ObjectID& token) {
  if (tokens_.empty()) return;
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return;
  TaskID actor = it->second;
  tokens_.erase(it);
  transport_.Post([this, actor] {
    ctx_.AssertHeld();
    KillLocked(actor, "all handles to it were released", /*no_restart=*/true, /*when_idle=*/true);
  });
}

void ActorTaskSubmitter::Kill(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) {
  CoreGuard lock(ctx_);
  KillLocked(actor, cause, no_restart, when_idle);
}

void ActorTaskSubmitter::KillLocked(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) {
  ActorState* a = FindLocked(ActorKey(actor));
  if (!a) return;
  if (when_idle && !IdleLocked(*a)) {
    a->exit_when_idle = cause;  // OnPushReplyLocked ends it when the last call answers
    return;
  }
  if (no_restart) {
    a->no_restart = true;
    DiedLocked(*a, cause);
    OwnedDiedWithLocked(*a);
    if (a->pending_requests > 0 && !a->borrowed && !a->cancel_sent) {
      // Not placed yet: withdraw the lease request.
      a->cancel_sent = true;
      Fbb fbb(64);
      nodes_.SendLocked(a->pending_node, FinishFrame(fbb, proto::CreateCancelLeaseRequest(fbb, a->pending_request_id)));
    }
  } else {
    // Kill for a restart: handle the loss now, so calls made from here on
    // queue behind the constructor call of the new incarnation.
    auto leases = a->leases;
    for (auto& l : leases) {
      auto inflight = std::move(l->inflight);
      l->inflight.clear();
      l->loss_handled = true;
      ReturnLeaseLocked(*a, l, /*worker_exiting=*/true);
      WorkerLostLocked(*a, std::move(inflight), cause);
    }
    return;
  }
  // The worker exits with its lease: calls in flight fail when it closes.
  auto leases = a->leases;
  for (auto& l : leases) ReturnLeaseLocked(*a, l, /*worker_exiting=*/true);
}

// No call queued, in flight or waiting for arguments, no constructor call
// pending and no lease request outstanding.
bool ActorTaskSubmitter::IdleLocked(const ActorState& a) const {
  if (!a.queue.empty() || a.pending_requests > 0 || a.calls.num_pending() > 0 || a.held_lease) return false;
  for (auto& l : a.leases) {
    if (!l->inflight.empty()) return false;
  }
  return true;
}

// After a reply: a kill deferred until the actor is idle happens now.
void ActorTaskSubmitter::MaybeEndIdleLocked(ActorState& a) {
  if (a.exit_when_idle.empty() || !IdleLocked(a)) return;
  std::string cause = a.exit_when_idle;
  a.exit_when_idle.clear();
  a.no_restart = true;
  DiedLocked(a, cause);
  auto leases = a.leases;
  for (auto& l : leases) ReturnLeaseLocked(a, l, /*worker_exiting=*/true);
}

SubmitterStats ActorTaskSubmitter::GetStatsLocked() const {
  SubmitterStats s;
  for (auto& [k, a] : actors_) s.Add(a->queue, a->leases);
  return s;
}

}  // namespace rayts
