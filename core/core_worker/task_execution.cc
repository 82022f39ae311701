#include "core/core_worker/core_worker.h"

#include <unistd.h>

#include <cstring>

#include "core/common/json.h"
#include "core/core_worker/internal.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

// ------------------------------------------------------------- execution --

void CoreWorker::OnInbound(const std::shared_ptr<Connection>& c, const proto::Envelope& env) {
  Guard lock(this);
  switch (env.body_type()) {
    case proto::Body::PushTask: {
      auto* spec = env.body_as_PushTask()->spec();
      if (!spec) return;
      auto task = std::make_shared<ExecTask>();
      task->handle = next_exec_handle_++;
      task->task_id = IdFrom<TaskID>(spec->task_id());
      if (auto* f = spec->function()) {
        task->function.hash = Str(f->hash());
        task->function.source = Str(f->source());
        task->function.module_url = Str(f->module_url());
        task->function.export_name = Str(f->export_name());
      }
      task->name = Str(spec->name());
      task->actor_id = IdFrom<TaskID>(spec->actor_id());
      task->actor_creation = spec->actor_creation();
      task->method = Str(spec->method());
      task->max_concurrency = spec->max_concurrency();
      task->concurrency_groups = Str(spec->concurrency_groups());
      task->release_cpu = spec->release_cpu();
      task->num_returns = spec->num_returns();
      task->retry_exceptions = Str(spec->retry_exceptions());
      if (spec->args()) {
        for (auto* a : *spec->args()) {
          ExecArg arg;
          if (a->data()) arg.data = std::make_shared<const std::string>(reinterpret_cast<const char*>(a->data()->data()), a->data()->size());
          arg.by_ref = !arg.data;
          arg.in_plasma = a->in_plasma();
          arg.id = IdFrom<ObjectID>(a->object_id());
          arg.owner_address = Str(a->owner_address());
          task->args.push_back(std::move(arg));
        }
      }
      executing_[task->handle] = Executing{c, task->task_id, task->num_returns, 0, Str(spec->owner_address())};
      executing_by_task_[task->task_id] = task->handle;
      if (task->actor_creation) actor_max_concurrency_ = task->max_concurrency;
      if (!task->actor_id.IsNil() && !task->actor_creation) {
        OrderActorCallLocked(c, IdFrom<WorkerID>(spec->caller_id()), spec->actor_seq(), spec->actor_epoch_start(),
                             std::move(task));
        break;
      }
      Event e{Event::Type::kExecuteTask};
      e.task = std::move(task);
      EmitLocked(std::move(e));
      break;
    }
    case proto::Body::GetObject: {
      auto* g = env.body_as_GetObject();
      ObjectID id = IdFrom<ObjectID>(g->object_id());
      const StoredObject* o = memory_store_.Find(id);
      if (o && o->ready && o->in_plasma && g->lost() && refs_.Has(id)) {
        // The asker found the plasma copy missing: the host recovers it
        // (Reconstruct, on the JS thread); the answer follows when ready.
        remote_waiters_[id].emplace_back(c, g->request_id());
        if (recover_requested_.insert(id).second) {
          Event e{Event::Type::kRecoverObject};
          e.object_id = id;
          EmitLocked(std::move(e));
        }
      } else if (o && o->ready) {
        Fbb fbb(256);
        ReturnValue v{o->data, o->in_plasma, o->is_error, o->size};
        auto item = BuildReturn(fbb, id, v);
        QueueToLocked(c, FinishFrame(fbb, proto::CreateGetObjectReply(fbb, g->request_id(), 0, 0, item)));
      } else if (o || refs_.Has(id)) {
        remote_waiters_[id].emplace_back(c, g->request_id());
      } else {
        Fbb fbb(256);
        auto item = BuildReturn(fbb, id, ReturnValue{});
        auto msg = fbb.CreateString("object " + id.Hex() + " is not owned by this process or was already freed");
        QueueToLocked(c, FinishFrame(fbb, proto::CreateGetObjectReply(fbb, g->request_id(),
                                                                       static_cast<int>(StatusCode::kObjectLost), msg, item)));
      }
      break;
    }
    case proto::Body::MemorySummaryRequest: {
      Fbb fbb(4096);
      auto json = fbb.CreateString(MemorySummaryJsonLocked());
      QueueToLocked(c, FinishFrame(fbb, proto::CreateMemorySummaryReply(
                                            fbb, env.body_as_MemorySummaryRequest()->request_id(), json)));
      break;
    }
    case proto::Body::AddBorrower:
    case proto::Body::RemoveBorrower:
      OnBorrowerMessageLocked(c, env);
      break;
    case proto::Body::CancelTask:
      OnCancelRequestLocked(env.body_as_CancelTask());
      break;
    default:
      break;
  }
}

// ------------------------------------------------------- actor call order --

// One caller's actor call arrived: run it when it is that caller's next one.
// A caller sends in order on one connection, so calls wait here only when a
// frame of a newer connection overtakes an older one, and frames of an
// older connection arriving late are stale (never run twice).
void CoreWorker::OrderActorCallLocked(const std::shared_ptr<Connection>& c, const WorkerID& caller, uint64_t seq,
                                      uint64_t epoch_start, std::shared_ptr<ExecTask> task) {
  auto& co = callers_[caller];
  if (!co) co = std::make_unique<CallerOrder>(actor_max_concurrency_);
  co->conn = c;
  co->queue.ObserveEpochStart(epoch_start);
  uint64_t handle = task->handle;
  held_calls_[handle] = std::move(task);
  co->queue.Add(seq, handle);
  ReleaseActorCallsLocked(caller, co->queue.TakeRunnable());
}

// Hands `runnable` to the host in order, drops stale calls, and arms the
// bounded wait for a missing number (a caller that died between sends).
void CoreWorker::ReleaseActorCallsLocked(const WorkerID& caller, std::vector<uint64_t> runnable) {
  auto it = callers_.find(caller);
  if (it == callers_.end()) return;
  CallerOrder& co = *it->second;
  for (uint64_t h : runnable) {
    auto hit = held_calls_.find(h);
    if (hit == held_calls_.end()) continue;
    Event e{Event::Type::kExecuteTask};
    e.task = std::move(hit->second);
    held_calls_.erase(hit);
    EmitLocked(std::move(e));
  }
  for (uint64_t h : co.queue.TakeStale()) {
    // A resend already went out on the caller's newer connection; this
    // attempt's reply would have nowhere to go.
    held_calls_.erase(h);
    auto ex = executing_.find(h);
    if (ex != executing_.end()) {
      executing_by_task_.erase(ex->second.task_id);
      executing_.erase(ex);
    }
  }
  if (!co.queue.HasGap() || co.gap_timer_armed) return;
  if (!co.gap_timer) co.gap_timer = std::make_unique<asio::steady_timer>(io_);
  co.gap_timer_armed = true;
  co.gap_timer->expires_after(kActorCallGapWait);
  co.gap_timer->async_wait([this, caller](const asio::error_code& ec) {
    if (ec) return;
    Guard lock(this);
    auto cit = callers_.find(caller);
    if (cit == callers_.end()) return;
    cit->second->gap_timer_armed = false;
    ReleaseActorCallsLocked(caller, cit->second->queue.OnGapTimeout());
  });
}

// An inbound connection closed: callers whose calls came on it forget their
// order (a reconnecting caller starts a new epoch) and their held calls,
// whose replies could not be delivered, are dropped.
void CoreWorker::DropCallerLocked(const std::shared_ptr<Connection>& c) {
  for (auto it = callers_.begin(); it != callers_.end();) {
    auto conn = it->second->conn.lock();
    if (conn && conn != c) {
      ++it;
      continue;
    }
    if (it->second->gap_timer) it->second->gap_timer->cancel();
    it = callers_.erase(it);
  }
  for (auto it = held_calls_.begin(); it != held_calls_.end();) {
    auto ex = executing_.find(it->first);
    auto conn = ex == executing_.end() ? nullptr : ex->second.conn.lock();
    if (conn && conn != c) {
      ++it;
      continue;
    }
    if (ex != executing_.end()) {
      executing_by_task_.erase(ex->second.task_id);
      executing_.erase(ex);
    }
    it = held_calls_.erase(it);
  }
}

void CoreWorker::SendReplyLocked(uint64_t handle, std::vector<ReturnValue> returns, int code, const std::string& msg,
                                 bool retryable, bool actor_exited) {
  auto it = executing_.find(handle);
  if (it == executing_.end()) {
    staged_nested_.clear();  // staged for this reply: nobody will hold them
    return;
  }
  Executing ex = it->second;
  executing_.erase(it);
  executing_by_task_.erase(ex.task_id);
  children_.erase(ex.task_id);
  auto c = ex.conn.lock();
  if (!c) return;
  // Refs inside the return values: the caller becomes their borrower
  // (registered on its behalf now; the reply waits for the acks).
  std::vector<std::vector<NestedRefIn>> nested;
  if (!staged_nested_.empty()) nested.resize(returns.size());
  for (auto& n : TakeStagedLocked()) {
    if (n.slot < 0 || static_cast<size_t>(n.slot) >= returns.size()) continue;
    RegisterOnBehalfLocked(n.id, n.owner_address, ex.caller_address);
    if (n.owner_address.empty()) n.owner_address = opts_.listen_path;
    nested[n.slot].push_back(std::move(n));
  }
  Fbb fbb(256);
  std::vector<flatbuffers::Offset<proto::ReturnObject>> rets;
  for (size_t i = 0; i < returns.size(); i++) {
    uint32_t index = ex.num_returns < 0 ? static_cast<uint32_t>(ex.streamed + 1) : static_cast<uint32_t>(i + 1);
    rets.push_back(BuildReturn(fbb, ObjectIdFor(ex.task_id, index), returns[i], nested.empty() ? nullptr : &nested[i]));
  }
  auto rv = fbb.CreateVector(rets);
  auto tid = IdBytes(fbb, ex.task_id);
  auto m = msg.empty() ? 0 : fbb.CreateString(msg);
  QueueReleasingLocked(c, FinishFrame(fbb, proto::CreatePushTaskReply(fbb, tid, code, m, rv, static_cast<int>(ex.streamed),
                                                                      retryable, actor_exited)));
}

void CoreWorker::TaskDone(uint64_t handle, std::vector<ReturnValue> returns, bool retryable, bool actor_exited) {
  Guard lock(this);
  SendReplyLocked(handle, std::move(returns), 0, "", retryable, actor_exited);
}

void CoreWorker::ReportGeneratorItem(uint64_t handle, int64_t index, ReturnValue item) {
  Guard lock(this);
  auto it = executing_.find(handle);
  if (it == executing_.end()) {
    staged_nested_.clear();
    return;
  }
  auto c = it->second.conn.lock();
  it->second.streamed = std::max(it->second.streamed, index + 1);
  std::vector<NestedRefIn> nested = TakeStagedLocked();
  if (!c) return;
  for (auto& n : nested) {
    RegisterOnBehalfLocked(n.id, n.owner_address, it->second.caller_address);
    if (n.owner_address.empty()) n.owner_address = opts_.listen_path;
  }
  Fbb fbb(256);
  auto ret = BuildReturn(fbb, ObjectIdFor(it->second.task_id, static_cast<uint32_t>(index + 1)), item, &nested);
  auto tid = IdBytes(fbb, it->second.task_id);
  QueueReleasingLocked(c, FinishFrame(fbb, proto::CreateGeneratorItem(fbb, tid, static_cast<int>(index), ret)));
}

}  // namespace rayts
