#include "core/core_worker/task_frames.h"

#include "core/core_worker/task_manager.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

void PushOnLease(const std::shared_ptr<Lease>& lease, const std::shared_ptr<PendingTask>& t, Clock::time_point now,
                 const WorkerContext& ctx, const MemoryStore& store) {
  t->lease = lease;
  t->pushed_at = now;
  lease->inflight[t->task_id] = t;
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
      const StoredObject* o = store.Find(a.id);
      if (o && o->in_plasma) in_plasma = true;
      else if (o && o->data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(o->data->data()), o->data->size());
    }
    auto owner = fbb.CreateString(a.owner_address.empty() ? ctx.address() : a.owner_address);
    proto::TaskArgBuilder b(fbb);
    b.add_object_id(oid);
    if (!data.IsNull()) b.add_data(data);
    b.add_in_plasma(in_plasma);
    b.add_owner_address(owner);
    args.push_back(b.Finish());
  }
  auto argv = fbb.CreateVector(args);
  auto tid = IdBytes(fbb, t->task_id);
  auto caller = IdBytes(fbb, ctx.worker_id());
  auto owner = fbb.CreateString(ctx.address());
  auto name = fbb.CreateString(r.name && !r.name->empty() ? *r.name : r.cls->name);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> actor;
  flatbuffers::Offset<flatbuffers::String> method;
  flatbuffers::Offset<flatbuffers::String> groups;
  if (!r.concurrency_groups.empty()) groups = fbb.CreateString(r.concurrency_groups);
  if (!r.actor_id.IsNil()) {
    actor = IdBytes(fbb, r.actor_id);
    if (!r.method.empty()) method = fbb.CreateString(r.method);
  }
  auto retry_exc = r.cls->retry_exceptions.empty() ? 0 : fbb.CreateString(r.cls->retry_exceptions);
  auto spec = proto::CreateTaskSpec(fbb, tid, ctx.job_id(), caller, owner, fd, argv, r.num_returns, name, t->attempt,
                                    actor, r.actor_creation, method, r.max_concurrency, groups, r.release_cpu,
                                    t->send_seq, t->epoch_start, retry_exc);
  lease->link->Send(FinishFrame(fbb, proto::CreatePushTask(fbb, spec)));
}

Frame LeaseRequestFrame(uint64_t request_id, uint64_t key, const std::vector<std::pair<std::string, double>>& resources,
                        bool is_actor, bool detached, bool retriable) {
  Fbb fbb(256);
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> res;
  for (auto& [name, amount] : resources) res.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  auto rv = fbb.CreateVector(res);
  return FinishFrame(fbb, proto::CreateRequestWorkerLease(fbb, request_id, key, rv, is_actor, detached, retriable));
}

void ReturnLease(Lease& lease, Transport& transport, bool worker_exiting) {
  if (lease.returned) return;
  lease.returned = true;
  if (lease.lease_id != 0) {  // 0: a link to an actor owned elsewhere
    Fbb fbb(64);
    // A worker that said it exits (WorkerExiting) must not be leased again.
    transport.SendToNode(
        FinishFrame(fbb, proto::CreateReturnWorkerLease(fbb, lease.lease_id, worker_exiting || lease.exit_code >= 0)));
  }
  if (lease.link) lease.link->Close();
}

bool ConnectLease(const std::shared_ptr<Lease>& lease, Transport& transport, WorkerContext& ctx, TaskManager& tasks,
                  ReplyHandler on_reply, LeaseClosedHandler on_closed) {
  std::weak_ptr<Lease> weak = lease;
  WorkerContext* c = &ctx;
  TaskManager* tm = &tasks;
  lease->link = transport.Connect(
      lease->address,
      [c, tm, weak, on_reply = std::move(on_reply)](const proto::Envelope& e) {
        c->AssertHeld();
        auto l = weak.lock();
        if (!l) return;
        switch (e.body_type()) {
          case proto::Body::WorkerExiting:
            l->exit_code = e.body_as_WorkerExiting()->code();
            l->oom_message = Str(e.body_as_WorkerExiting()->oom_message());
            break;
          case proto::Body::PushTaskReply:
            on_reply(l, *e.body_as_PushTaskReply());
            break;
          case proto::Body::GeneratorItem:
            tm->OnGeneratorItemLocked(*e.body_as_GeneratorItem());
            break;
          default:
            break;
        }
      },
      [c, weak, on_closed = std::move(on_closed)](const Status& s) {
        c->AssertHeld();
        if (auto l = weak.lock()) on_closed(l, s);
      });
  return lease->link != nullptr;
}

}  // namespace rayts
