#include "core/core_worker/normal_task_submitter.h"

#include <algorithm>
#include <cmath>

#include "core/common/error_record.h"
#include "core/core_worker/task_frames.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

uint32_t NormalTaskSubmitter::RegisterTaskClass(TaskClass cls) {
  cls.scheduling_key = KeyOf(cls);
  CoreGuard lock(ctx_);
  classes_.push_back(std::make_shared<const TaskClass>(std::move(cls)));
  return static_cast<uint32_t>(classes_.size() - 1);
}

std::shared_ptr<const TaskClass> NormalTaskSubmitter::GetTaskClass(uint32_t id) {
  CoreGuard lock(ctx_);
  return id < classes_.size() ? classes_[id] : nullptr;
}

StatusOr<TaskID> NormalTaskSubmitter::Submit(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  CoreGuard lock(ctx_);
  if (!req.cls || ctx_.shutting_down) {
    tasks_.DiscardStagedLocked();  // refused: nothing holds this call's nested refs
    if (!req.cls) return Status::InvalidArgument("SubmitTask: unknown task class");
    return Status::Disconnected("rayts is shutting down");
  }
  uint64_t key = req.cls->scheduling_key;
  auto t = tasks_.NewTaskLocked(std::move(req), key, return_ids);
  tasks_.AddLocked(t);
  tasks_.ScheduleLocked(t);
  return t->task_id;
}

NormalTaskSubmitter::KeyState& NormalTaskSubmitter::KeyFor(const std::shared_ptr<PendingTask>& t) {
  auto& ks = keys_[t->key];
  if (!ks) {
    ks = std::make_unique<KeyState>();
    ks->key = t->key;
    ks->resources = t->req.cls->resources;
    ks->scheduling = t->req.cls->scheduling;
  }
  return *ks;
}

NodeID NormalTaskSubmitter::LocalityNodeLocked(const PendingTask& t) {
  if (t.req.cls->scheduling.strategy != 0) return NodeID::Nil();
  // Few arguments per task: a linear table beats a hash map.
  std::vector<std::pair<NodeID, uint64_t>> bytes;
  const MemoryStore& store = objects_.store();
  for (const auto& a : t.req.args) {
    if (!a.by_ref) continue;
    const StoredObject* o = store.Find(a.id);
    if (!o || !o->ready || !o->in_plasma) continue;  // unknown here: not counted (as Ray)
    // Every copy's node counts (the primary's and the others the owner knows).
    auto count = [&](const NodeID& n) {
      auto it = std::find_if(bytes.begin(), bytes.end(), [&](const auto& e) { return e.first == n; });
      if (it == bytes.end()) bytes.emplace_back(n, o->size);
      else it->second += o->size;
    };
    count(o->location.IsNil() ? ctx_.node_id() : o->location);
    if (const auto* copies = objects_.CopiesOfLocked(a.id)) {
      for (const NodeID& n : *copies) count(n);
    }
  }
  const std::pair<NodeID, uint64_t>* best = nullptr;
  for (const auto& e : bytes) {
    if (!best || e.second > best->second) best = &e;
  }
  if (!best || best->first == ctx_.node_id()) return NodeID::Nil();
  return best->first;
}

void NormalTaskSubmitter::EnqueueLocked(const std::shared_ptr<PendingTask>& t) {
  NodeID near = LocalityNodeLocked(*t);
  if (!near.IsNil()) t->key = t->req.cls->scheduling_key ^ IdHash{}(near);
  KeyState& ks = KeyFor(t);
  ks.locality = near;
  ks.queue.push_back(t);
  DispatchLocked(ks);
}

void NormalTaskSubmitter::RequeueFrontLocked(const std::shared_ptr<PendingTask>& t) { KeyFor(t).queue.push_front(t); }

void NormalTaskSubmitter::RemoveQueuedLocked(const std::shared_ptr<PendingTask>& t) {
  auto kit = keys_.find(t->key);
  if (kit == keys_.end()) return;
  auto& q = kit->second->queue;
  q.erase(std::remove(q.begin(), q.end(), t), q.end());
}

void NormalTaskSubmitter::DispatchLocked(KeyState& ks) {
  // One task per worker while the node has room for more workers of this
  // shape, or while tasks of this key are not known to be short.
  bool pipeline = ks.spare_hint <= 0 && ks.avg_service_us >= 0 && ks.avg_service_us < kPipelineBelowUs;
  size_t cap = 1;
  if (pipeline) {
    double by_time = kPipelineBudgetUs / std::max(ks.avg_service_us, 1.0);
    cap = by_time >= static_cast<double>(kMaxInflightPerLease) ? kMaxInflightPerLease
                                                               : std::max<size_t>(2, static_cast<size_t>(by_time));
  }
  Clock::time_point now = transport_.Now();
  // Each task to the usable lease (not expired, worker not exiting) with the
  // fewest in flight, so tasks submitted one by one spread over the workers
  // instead of filling the first.
  while (!ks.queue.empty()) {
    Lease* best = nullptr;
    const std::shared_ptr<Lease>* best_ptr = nullptr;
    for (auto& lease : ks.leases) {
      if (lease->returned || lease->exit_code >= 0 || now - lease->granted_at >= kLeaseMaxHold) continue;
      if (lease->inflight.size() >= cap) continue;
      if (!best || lease->inflight.size() < best->inflight.size()) {
        best = lease.get();
        best_ptr = &lease;
      }
    }
    if (!best) break;
    auto t = ks.queue.front();
    ks.queue.pop_front();
    PushOnLease(*best_ptr, t, now, ctx_, objects_.store());
  }
  if (!ks.queue.empty() && ks.pending_requests == 0) RequestLeaseLocked(ks);
  if (ks.queue.empty() && ks.pending_requests > 0 && !ks.cancel_sent) {
    // Nothing left to run: withdraw the outstanding lease request (once).
    ks.cancel_sent = true;
    Fbb fbb(64);
    nodes_.SendLocked(ks.pending_node, FinishFrame(fbb, proto::CreateCancelLeaseRequest(fbb, ks.pending_request_id)));
  }
}

void NormalTaskSubmitter::RequestLeaseLocked(KeyState& ks, const std::string& node) {
  uint64_t req_id = ctx_.NextRequestId();
  ks.pending_requests++;
  ks.pending_request_id = req_id;
  ks.pending_node = node;
  ks.cancel_sent = false;
  lease_requests_[req_id] = ks.key;
  // Retriable: the memory monitor kills such workers first.
  bool retriable = !ks.queue.empty() && ks.queue.front()->retries_left != 0;
  nodes_.SendRequestLocked(node, req_id,
                           LeaseRequestFrame(req_id, ks.key, ks.resources, false, false, retriable, ks.scheduling,
                                             /*grant_or_reject=*/!node.empty(), ks.locality,
                                             node.empty() ? "" : ctx_.address()));
}

bool NormalTaskSubmitter::OnLeaseReplyLocked(const proto::LeaseReply& r) {
  auto it = lease_requests_.find(r.request_id());
  if (it == lease_requests_.end()) return false;
  uint64_t key = it->second;
  lease_requests_.erase(it);
  auto kit = keys_.find(key);
  if (kit == keys_.end()) return true;
  KeyState& ks = *kit->second;
  ks.pending_requests--;
  if (r.code() == 0 && (r.rejected() || r.retry_at_address())) {
    // Spillback: ask the node the reply names (it grants or rejects);
    // rejected there: ask this process's node again. Not when the queue
    // emptied meanwhile (a cancel crossed the reply).
    if (!ks.queue.empty() && !ks.cancel_sent) RequestLeaseLocked(ks, r.rejected() ? "" : Str(r.retry_at_address()));
    else DispatchLocked(ks);
    return true;
  }
  if (r.code() != 0) {
    if (static_cast<StatusCode>(r.code()) == StatusCode::kCancelled) {
      DispatchLocked(ks);
      return true;
    }
    // Infeasible or failed: every queued task of this shape fails now.
    std::string json = ErrorRecordJson(
        ErrorKind::kSystem,
        r.code() == static_cast<int>(StatusCode::kInfeasible) ? "InfeasibleResourceError" : "RaySystemError",
        Str(r.message()));
    auto queue = std::move(ks.queue);
    ks.queue.clear();
    for (auto& t : queue) tasks_.FailLocked(t, json);
    return true;
  }
  ks.spare_hint = r.spare();
  auto lease = std::make_shared<Lease>();
  lease->lease_id = r.lease_id();
  lease->worker_id = IdFrom<WorkerID>(r.worker_id());
  lease->address = Str(r.worker_address());
  lease->key = key;
  lease->granted_at = transport_.Now();
  lease->node = ks.pending_node;
  lease->node_link = nodes_.LinkLocked(ks.pending_node);
  if (!ConnectLeaseLocked(lease)) {
    ReturnLeaseLocked(lease, true);
    DispatchLocked(ks);
    return true;
  }
  ks.leases.push_back(lease);
  DispatchLocked(ks);
  MaybeReturnLeaseLocked(lease);
  return true;
}

bool NormalTaskSubmitter::ConnectLeaseLocked(const std::shared_ptr<Lease>& lease) {
  bool ok = ConnectLease(
      lease, transport_, ctx_, tasks_,
      [this](const std::shared_ptr<Lease>& l, const proto::PushTaskReply& r) {
        ctx_.AssertHeld();
        OnPushReplyLocked(l, r);
      },
      [this](const std::shared_ptr<Lease>& l, const Status& s) {
        ctx_.AssertHeld();
        OnLeaseClosedLocked(l, s);
      });
  if (ok) lease->idle_timer = transport_.NewTimer();
  return ok;
}

void NormalTaskSubmitter::OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply& r) {
  auto it = lease->inflight.find(IdFrom<TaskID>(r.task_id()));
  if (it == lease->inflight.end()) return;
  auto t = it->second;
  lease->inflight.erase(it);
  Clock::time_point now = transport_.Now();
  Clock::time_point started = std::max(t->pushed_at, lease->last_reply_at);
  lease->last_reply_at = now;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    KeyState& ks = *kit->second;
    double us = std::chrono::duration<double, std::micro>(now - started).count();
    // A mean over the replies of about the last kServiceWindow: both sums
    // decay with the time since the previous reply, not per reply. The
    // replies of a pipelined batch leave the worker together (it flushes
    // once per macrotask), so the first carries the whole batch's time and
    // the others none; a per-reply average (the EWMA this replaced) fell
    // towards 0 over them and let the depth grow to 256 tasks, 512 ms of
    // 2 ms tasks for a lease past kLeaseMaxHold to drain.
    double keep = ks.avg_service_us < 0
                      ? 0.0
                      : std::exp(-std::chrono::duration<double>(now - ks.service_at) / kServiceWindow);
    ks.service_sum_us = ks.service_sum_us * keep + us;
    ks.service_replies = ks.service_replies * keep + 1;
    ks.service_at = now;
    ks.avg_service_us = ks.service_sum_us / ks.service_replies;
  }
  tasks_.HandleReplyLocked(t, r, nullptr);
  kit = keys_.find(lease->key);
  if (kit != keys_.end()) DispatchLocked(*kit->second);
  MaybeReturnLeaseLocked(lease);
}

void NormalTaskSubmitter::MaybeReturnLeaseLocked(const std::shared_ptr<Lease>& lease) {
  if (lease->returned || !lease->inflight.empty()) return;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end() && !kit->second->queue.empty()) {
    if (transport_.Now() - lease->granted_at < kLeaseMaxHold) return;
    // Held long enough while tasks queue: back to the node, which may give
    // the worker to another key that waits; this key asks again.
    ReturnLeaseLocked(lease, false);
    DispatchLocked(*kit->second);
    return;
  }
  lease->idle_since = transport_.Now();
  if (!lease->idle_armed) ArmIdleTimerLocked(lease, kLeaseIdleReturn);
}

// Armed once per idle period: when it fires, a lease that was busy since
// (and is idle again) gets the rest of its idle time; a busy one is left to
// its next reply, which arms it again.
void NormalTaskSubmitter::ArmIdleTimerLocked(const std::shared_ptr<Lease>& lease, Clock::duration after) {
  lease->idle_armed = true;
  std::weak_ptr<Lease> weak = lease;
  lease->idle_timer->Arm(after, [this, weak] {
    ctx_.AssertHeld();
    auto l = weak.lock();
    if (!l) return;
    l->idle_armed = false;
    if (l->returned || !l->inflight.empty()) return;
    Clock::duration idle = transport_.Now() - l->idle_since;
    if (idle >= kLeaseIdleReturn) {
      ReturnLeaseLocked(l, false);
    } else {
      ArmIdleTimerLocked(l, kLeaseIdleReturn - idle);
    }
  });
}

void NormalTaskSubmitter::ReturnLeaseLocked(const std::shared_ptr<Lease>& lease, bool worker_exiting) {
  if (lease->returned) return;
  ReturnLease(*lease, transport_, worker_exiting);
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    auto& v = kit->second->leases;
    v.erase(std::remove(v.begin(), v.end(), lease), v.end());
  }
}

void NormalTaskSubmitter::OnLeaseClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) {
  if (ctx_.shutting_down) return;
  lease->returned = true;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    auto& v = kit->second->leases;
    v.erase(std::remove(v.begin(), v.end(), lease), v.end());
  }
  auto inflight = std::move(lease->inflight);
  lease->inflight.clear();
  std::vector<std::shared_ptr<PendingTask>> crashed;
  for (auto& [tid, t] : inflight) {
    t->lease.reset();
    const std::string& name = t->req.cls->name;
    if (t->cancelled) {
      tasks_.FailLocked(t, ErrorRecordJson(ErrorKind::kCancelled, "TaskCancelledError",
                                           "task " + name + " (" + tid.Hex() + ") was cancelled"));
    } else if (tasks_.RetryLocked(t)) {
      // back at the front of its key's queue, for another worker
    } else if (!lease->oom_message.empty()) {
      tasks_.FailLocked(t, ErrorRecordJson(ErrorKind::kOom, "OutOfMemoryError",
                                           "task " + name + " (" + tid.Hex() + ") failed after " +
                                               std::to_string(t->attempt + 1) + " attempt(s): " + lease->oom_message));
    } else {
      crashed.push_back(t);
    }
  }
  if (!crashed.empty()) FailCrashedLocked(*lease, std::move(crashed), s);
  kit = keys_.find(lease->key);
  if (kit != keys_.end()) DispatchLocked(*kit->second);
}

void NormalTaskSubmitter::FailCrashedLocked(const Lease& lease, std::vector<std::shared_ptr<PendingTask>> crashed,
                                            const Status& s) {
  std::string fallback = lease.exit_code >= 0
                             ? "exited with code " + std::to_string(lease.exit_code) + " (" + s.message() + ")"
                             : "died unexpectedly (" + s.message() + ")";
  // A worker of another node: when that node is dead (now, or by the time
  // the wait ends) the error names the node's death.
  std::string node = lease.node;
  auto fail = [this, crashed = std::move(crashed), fallback, node](const std::optional<WorkerExitCause>& cause) {
    ctx_.AssertHeld();
    std::string why = fallback;
    if (const DeadNode* d = cause ? nullptr : ctx_.dead_nodes().AtManager(node)) why = "died with its node: " + d->Describe();
    for (auto& t : crashed) {
      if (tasks_.FindLocked(t->task_id) != t) continue;  // finished meanwhile (cancelled)
      tasks_.FailLocked(t, WorkerCrashedJson(t->req.cls->name, cause, why));
    }
  };
  // The node of a remote lease sends no WorkerDied: no need to wait when it is known dead.
  if (ctx_.dead_nodes().AtManager(node)) {
    fail(std::nullopt);
    return;
  }
  causes_.AwaitLocked(lease.worker_id, std::move(fail), node);
}

void NormalTaskSubmitter::OnNodeLostLocked(const std::string& node) {
  for (auto& [key, ks] : keys_) {
    auto leases = ks->leases;
    for (auto& l : leases) {
      // Its worker's connection goes too: what was in flight is retried
      // (OnLeaseClosedLocked). Meanwhile nothing more is pushed there, and
      // nothing goes back to that node.
      if (l->node != node) continue;
      l->returned = true;
      if (l->link) l->link->Close();
    }
  }
}

SubmitterStats NormalTaskSubmitter::GetStatsLocked() const {
  SubmitterStats s;
  for (auto& [k, ks] : keys_) s.Add(ks->queue, ks->leases);
  return s;
}

}  // namespace rayts
