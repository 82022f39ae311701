#include "core/core_worker/task_receiver.h"

#include <algorithm>
#include <cstdio>

#include "core/common/error_record.h"
#include "core/core_worker/plasma_client.h"
#include "core/core_worker/wire.h"
#include "core/protocol/peer_address.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {
// A return value in this node's plasma store, for a caller on another node:
// the reply names this node, where the caller's node pulls it from
// (core/raylet/object_pull.h).
void NameNode(ReturnValue& v, const std::string& caller, const WorkerContext& ctx) {
  if (!v.in_plasma || SameNode(caller, ctx.address())) return;
  v.node = ctx.node_id();
}
}  // namespace

WorkerID TaskReceiver::CallerOfLocked(const TaskID& task) const {
  auto it = by_task_.find(task);
  if (it == by_task_.end()) return WorkerID::Nil();
  auto ex = executing_.find(it->second);
  return ex == executing_.end() ? WorkerID::Nil() : ex->second.cls->caller;
}

void TaskReceiver::OnAcceptedLocked(const std::shared_ptr<Link>& link) {
  inbound_.push_back(link);
}

std::shared_ptr<const ExecClass> TaskReceiver::ClassOfLocked(const std::shared_ptr<Link>& from,
                                                             const proto::TaskSpec& spec) {
  uint32_t ref = spec.class_ref();
  if (ref == 0 || spec.function()) {  // defined here (or not cached at all)
    auto c = std::make_shared<ExecClass>();
    if (auto* f = spec.function()) {
      c->function.hash = Str(f->hash());
      c->function.source = Str(f->source());
      c->function.module_url = Str(f->module_url());
      c->function.export_name = Str(f->export_name());
      c->name = Str(f->name());
    }
    if (c->name.empty()) c->name = Str(spec.name());
    c->retry_exceptions = Str(spec.retry_exceptions());
    c->owner_address = Str(spec.owner_address());
    c->caller = IdFrom<WorkerID>(spec.caller_id());
    c->serial = next_class_serial_++;
    if (ref != 0 && ref <= kMaxClassesPerLink) {
      LinkClasses& lc = classes_[from.get()];
      if (lc.link.lock() != from) lc = LinkClasses{from, {}};  // an earlier link's entry at this address
      if (lc.classes.size() < ref) lc.classes.resize(ref);
      lc.classes[ref - 1] = c;
    }
    return c;
  }
  auto it = classes_.find(from.get());
  if (it == classes_.end() || it->second.link.lock() != from || ref > it->second.classes.size()) return nullptr;
  return it->second.classes[ref - 1];
}

void TaskReceiver::OnPushTaskLocked(const std::shared_ptr<Link>& from, const proto::TaskSpec& spec) {
  auto cls = ClassOfLocked(from, spec);
  if (!cls) {
    // A slot this link never defined: the peer is broken. Closing the link
    // makes its owner retry or fail the task (nothing waits for ever).
    std::fprintf(stderr, "rayts: a task names class slot %u that its connection never defined; closing the connection\n",
                 spec.class_ref());
    from->Close();
    return;
  }
  auto task = std::make_shared<ExecTask>();
  task->handle = next_handle_++;
  task->task_id = IdFrom<TaskID>(spec.task_id());
  task->cls = cls;
  task->name = Str(spec.name());  // the call's own name, if any (empty: the class's)
  task->actor_id = IdFrom<TaskID>(spec.actor_id());
  task->actor_creation = spec.actor_creation();
  task->method = Str(spec.method());
  task->max_concurrency = spec.max_concurrency();
  task->concurrency_groups = Str(spec.concurrency_groups());
  task->release_cpu = spec.release_cpu();
  task->num_returns = spec.num_returns();
  task->attempt = spec.attempt();
  task->generator_skip = spec.generator_skip();
  if (spec.args()) {
    task->args.reserve(spec.args()->size());
    for (auto* a : *spec.args()) {
      ExecArg arg;
      if (a->data()) {
        arg.data = std::make_shared<const std::string>(reinterpret_cast<const char*>(a->data()->data()), a->data()->size());
      }
      arg.by_ref = !arg.data;
      arg.in_plasma = a->in_plasma();
      arg.id = IdFrom<ObjectID>(a->object_id());
      arg.owner_address = Str(a->owner_address());
      task->args.push_back(std::move(arg));
    }
  }
  executing_[task->handle] = Executing{from, task->task_id, task->num_returns, task->generator_skip, cls};
  by_task_[task->task_id] = task->handle;
  if (task->actor_creation) actor_max_concurrency_ = task->max_concurrency;
  if (!task->actor_id.IsNil() && !task->actor_creation) {
    OrderActorCallLocked(from, cls->caller, spec.actor_seq(), spec.actor_epoch_start(),
                         std::move(task));
    return;
  }
  Event e{Event::Type::kExecuteTask};
  e.task = std::move(task);
  ctx_.Emit(std::move(e));
}

// ------------------------------------------------------- actor call order --

// One caller's actor call arrived: run it when it is that caller's next one.
// A caller sends in order on one connection, so calls wait here only when a
// frame of a newer connection overtakes an older one, and frames of an
// older connection arriving late are stale (never run twice).
void TaskReceiver::OrderActorCallLocked(const std::shared_ptr<Link>& from, const WorkerID& caller, uint64_t seq,
                                        uint64_t epoch_start, std::shared_ptr<ExecTask> task) {
  auto& co = callers_[caller];
  if (!co) co = std::make_unique<CallerOrder>(actor_max_concurrency_);
  co->link = from;
  co->queue.ObserveEpochStart(epoch_start);
  uint64_t handle = task->handle;
  held_calls_[handle] = std::move(task);
  co->queue.Add(seq, handle);
  ReleaseActorCallsLocked(caller, co->queue.TakeRunnable());
}

void TaskReceiver::ForgetLocked(uint64_t handle) {
  auto ex = executing_.find(handle);
  if (ex == executing_.end()) return;
  by_task_.erase(ex->second.task_id);
  executing_.erase(ex);
}

// Hands `runnable` to the host in order, drops stale calls, and arms the
// bounded wait for a missing number (a caller that died between sends).
void TaskReceiver::ReleaseActorCallsLocked(const WorkerID& caller, std::vector<uint64_t> runnable) {
  auto it = callers_.find(caller);
  if (it == callers_.end()) return;
  CallerOrder& co = *it->second;
  for (uint64_t h : runnable) {
    auto hit = held_calls_.find(h);
    if (hit == held_calls_.end()) continue;
    Event e{Event::Type::kExecuteTask};
    e.task = std::move(hit->second);
    held_calls_.erase(hit);
    ctx_.Emit(std::move(e));
  }
  for (uint64_t h : co.queue.TakeStale()) {
    // A resend already went out on the caller's newer connection; this
    // attempt's reply would have nowhere to go.
    held_calls_.erase(h);
    ForgetLocked(h);
  }
  if (!co.queue.HasGap() || co.gap_timer_armed) return;
  if (!co.gap_timer) co.gap_timer = transport_.NewTimer();
  co.gap_timer_armed = true;
  co.gap_timer->Arm(kActorCallGapWait, [this, caller] {
    ctx_.AssertHeld();
    auto cit = callers_.find(caller);
    if (cit == callers_.end()) return;
    cit->second->gap_timer_armed = false;
    ReleaseActorCallsLocked(caller, cit->second->queue.OnGapTimeout());
  });
}

// Callers whose calls came on `link` forget their order (a reconnecting
// caller starts a new epoch) and their held calls, whose replies could not
// be delivered, are dropped.
void TaskReceiver::OnLinkClosedLocked(const std::shared_ptr<Link>& link) {
  classes_.erase(link.get());
  std::erase_if(inbound_, [&](const std::weak_ptr<Link>& w) {
    auto l = w.lock();
    return !l || l == link;
  });
  for (auto it = callers_.begin(); it != callers_.end();) {
    auto l = it->second->link.lock();
    if (l && l != link) {
      ++it;
      continue;
    }
    if (it->second->gap_timer) it->second->gap_timer->Cancel();
    it = callers_.erase(it);
  }
  for (auto it = held_calls_.begin(); it != held_calls_.end();) {
    auto ex = executing_.find(it->first);
    auto l = ex == executing_.end() ? nullptr : ex->second.link.lock();
    if (l && l != link) {
      ++it;
      continue;
    }
    ForgetLocked(it->first);
    it = held_calls_.erase(it);
  }
}

// ---------------------------------------------------------------- replies --

void TaskReceiver::TaskDone(uint64_t handle, std::vector<ReturnValue> returns, bool retryable, bool actor_exited) {
  CoreGuard lock(ctx_);
  auto it = executing_.find(handle);
  if (it == executing_.end()) {
    borrowers_.ClearStagedLocked();  // staged for this reply: nobody will hold them
    return;
  }
  Executing ex = it->second;
  executing_.erase(it);
  by_task_.erase(ex.task_id);
  tasks_.DropChildrenLocked(ex.task_id);
  auto link = ex.link.lock();
  if (!link) return;
  // Refs inside the return values: the caller becomes their borrower
  // (registered on its behalf now; the reply waits for the acks).
  std::vector<std::vector<NestedRefIn>> nested;
  if (borrowers_.HasStagedLocked()) nested.resize(returns.size());
  for (auto& n : borrowers_.TakeStagedLocked()) {
    if (n.slot < 0 || static_cast<size_t>(n.slot) >= returns.size()) continue;
    borrowers_.RegisterOnBehalfLocked(n.id, n.owner_address, ex.cls->owner_address);
    if (n.owner_address.empty()) n.owner_address = ctx_.address();
    nested[n.slot].push_back(std::move(n));
  }
  Fbb fbb(256);
  std::vector<flatbuffers::Offset<proto::ReturnObject>> rets;
  rets.reserve(returns.size());
  for (size_t i = 0; i < returns.size(); i++) {
    uint32_t index = ex.num_returns < 0 ? static_cast<uint32_t>(ex.streamed + 1) : static_cast<uint32_t>(i + 1);
    NameNode(returns[i], ex.cls->owner_address, ctx_);
    rets.push_back(BuildReturn(fbb, ObjectIdFor(ex.task_id, index), returns[i], nested.empty() ? nullptr : &nested[i]));
  }
  auto rv = fbb.CreateVector(rets);
  auto tid = IdBytes(fbb, ex.task_id);
  Frame reply = FinishFrame(fbb, proto::CreatePushTaskReply(fbb, tid, 0, 0, rv, static_cast<int>(ex.streamed),
                                                            retryable, actor_exited));
  if (!actor_exited) {
    borrowers_.QueueReleasingLocked(link, std::move(reply));
    return;
  }
  // ray.exitActor(): the process exits next. This reply tells the owner
  // why, so it must not wait behind an acknowledgement that will never
  // come, nor stay in a full socket buffer: written now (bounded wait).
  borrowers_.SendAllForExitLocked(link, std::move(reply));
  transport_.Flush();
}

void TaskReceiver::ReportGeneratorItem(uint64_t handle, int64_t index, ReturnValue item) {
  CoreGuard lock(ctx_);
  auto it = executing_.find(handle);
  if (it == executing_.end()) {
    borrowers_.ClearStagedLocked();
    return;
  }
  auto link = it->second.link.lock();
  it->second.streamed = std::max(it->second.streamed, index + 1);
  std::vector<NestedRefIn> nested = borrowers_.TakeStagedLocked();
  if (!link) return;
  for (auto& n : nested) {
    borrowers_.RegisterOnBehalfLocked(n.id, n.owner_address, it->second.cls->owner_address);
    if (n.owner_address.empty()) n.owner_address = ctx_.address();
  }
  Fbb fbb(256);
  ObjectID item_id = ObjectIdFor(it->second.task_id, static_cast<uint32_t>(index + 1));
  NameNode(item, it->second.cls->owner_address, ctx_);
  auto ret = BuildReturn(fbb, item_id, item, &nested);
  auto tid = IdBytes(fbb, it->second.task_id);
  borrowers_.QueueReleasingLocked(link, FinishFrame(fbb, proto::CreateGeneratorItem(fbb, tid, static_cast<int>(index), ret)));
}

void TaskReceiver::SetBlocked(bool blocked) {
  CoreGuard lock(ctx_);
  if (ctx_.is_driver()) return;
  int before = blocked_depth_;
  blocked_depth_ += blocked ? 1 : -1;
  if (blocked_depth_ < 0) blocked_depth_ = 0;
  if ((before == 0) != (blocked_depth_ == 0)) {
    Fbb fbb(32);
    transport_.SendToNode(FinishFrame(fbb, proto::CreateNotifyBlocked(fbb, blocked_depth_ > 0)));
  }
}

// ------------------------------------------------------------ exits --

void TaskReceiver::SendExitNoticesLocked(int code, const std::string& reason) {
  for (auto& w : inbound_) {
    auto l = w.lock();
    if (!l || l->closed()) continue;
    Fbb fbb(128 + reason.size());
    auto msg = reason.empty() ? 0 : fbb.CreateString(reason);
    l->SendNow(FinishFrame(fbb, proto::CreateWorkerExiting(fbb, code, msg)));  // written at once if nothing is queued
  }
}

void TaskReceiver::ReportExit(int code) {
  CoreGuard lock(ctx_);
  SendExitNoticesLocked(code, "");
}

void TaskReceiver::OnKillWorkerLocked(const std::string& reason) {
  // Tell every process pushing tasks here why this worker goes away, on the
  // connection that closes next (so the reason arrives first), then exit.
  SendExitNoticesLocked(137, reason);
  transport_.Exit(137);
}

void TaskReceiver::OnCancelRequestLocked(const proto::CancelTask& ct) {
  TaskID tid = IdFrom<TaskID>(ct.task_id());
  if (!by_task_.count(tid)) {
    // Not executing here: a borrower asking the owner (a task this process
    // submitted), or one that finished here already (then a no-op).
    (void)tasks_.CancelLocked(tid, ct.force(), ct.recursive());
    return;
  }
  if (ct.recursive()) tasks_.CancelChildrenLocked(tid, ct.force());
  if (ct.force()) {
    // The task may be stuck in JS: end the process from here, after the
    // children's cancellations are written.
    transport_.Flush();
    transport_.Exit(1);
    return;
  }
  Event e{Event::Type::kCancelTask};
  e.task_id = tid;
  ctx_.Emit(std::move(e));
}

}  // namespace rayts
