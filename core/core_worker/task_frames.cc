#include "core/core_worker/task_frames.h"

#include "core/core_worker/task_manager.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {

// The TaskSpec of `t`: its class defined inline (`define`: the function,
// owner and caller) or named by `class_ref`; by-ref arguments owned here
// travel inline when small and ready (in_plasma only to a local worker:
// `remote` off, and the object on this node).
flatbuffers::Offset<proto::TaskSpec> BuildTaskSpec(Fbb& fbb, const PendingTask& t, bool define, uint32_t class_ref,
                                                   bool remote, const WorkerContext& ctx, const MemoryStore& store) {
  const SubmitRequest& r = t.req;
  flatbuffers::Offset<proto::FunctionDescriptor> fd;
  flatbuffers::Offset<flatbuffers::String> owner, retry_exc;
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> caller;
  if (define) {
    auto& fn = r.cls->function;
    fd = proto::CreateFunctionDescriptor(fbb, fbb.CreateString(fn.hash), fn.source.empty() ? 0 : fbb.CreateString(fn.source),
                                         fn.module_url.empty() ? 0 : fbb.CreateString(fn.module_url),
                                         fn.export_name.empty() ? 0 : fbb.CreateString(fn.export_name),
                                         fbb.CreateString(r.cls->name));
    owner = fbb.CreateString(ctx.address());
    caller = IdBytes(fbb, ctx.worker_id());
    if (!r.cls->retry_exceptions.empty()) retry_exc = fbb.CreateString(r.cls->retry_exceptions);
  }
  std::vector<flatbuffers::Offset<proto::TaskArg>> args;
  args.reserve(r.args.size());
  for (auto& a : r.args) {
    if (!a.by_ref) {
      auto data = Bytes(fbb, reinterpret_cast<const uint8_t*>(a.data().data()), a.data().size());
      proto::TaskArgBuilder b(fbb);
      b.add_data(data);
      args.push_back(b.Finish());
      continue;
    }
    auto oid = IdBytes(fbb, a.id);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
    bool in_plasma = false;
    if (a.owner_address().empty()) {
      const StoredObject* o = store.Find(a.id);
      // For a worker of another node, or an object on another node, the
      // flag stays off: the worker asks this owner, which names the node to
      // pull the object from.
      if (o && o->in_plasma) in_plasma = !remote && o->location.IsNil();
      else if (o && o->data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(o->data->data()), o->data->size());
    }
    auto arg_owner = fbb.CreateString(a.owner_address().empty() ? ctx.address() : a.owner_address());
    proto::TaskArgBuilder b(fbb);
    b.add_object_id(oid);
    if (!data.IsNull()) b.add_data(data);
    b.add_in_plasma(in_plasma);
    b.add_owner_address(arg_owner);
    args.push_back(b.Finish());
  }
  auto argv = fbb.CreateVector(args);
  auto tid = IdBytes(fbb, t.task_id);
  flatbuffers::Offset<flatbuffers::String> name;
  if (r.name && !r.name->empty()) name = fbb.CreateString(*r.name);  // the call's own name
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> actor;
  flatbuffers::Offset<flatbuffers::String> method;
  flatbuffers::Offset<flatbuffers::String> groups;
  if (!r.actor().concurrency_groups.empty()) groups = fbb.CreateString(r.actor().concurrency_groups);
  if (!r.actor_id.IsNil()) {
    actor = IdBytes(fbb, r.actor_id);
    if (!r.actor().method.empty()) method = fbb.CreateString(r.actor().method);
  }
  return proto::CreateTaskSpec(fbb, tid, ctx.job_id(), caller, owner, fd, argv, r.num_returns, name, t.attempt, actor,
                               r.actor().actor_creation, method, r.actor().max_concurrency, groups,
                               r.actor().release_cpu, t.send_seq, t.epoch_start, retry_exc, class_ref, t.streamed);
}

}  // namespace

void PushOnLease(const std::shared_ptr<Lease>& lease, const std::shared_ptr<PendingTask>& t, Clock::time_point now,
                 const WorkerContext& ctx, const MemoryStore& store) {
  t->lease = lease;
  t->pushed_at = now;
  lease->inflight[t->task_id] = t;
  Fbb fbb(256);
  // The class's part goes once per link; later specs name its slot.
  uint32_t class_ref = 0;
  auto& sent = lease->sent_classes;
  for (size_t i = 0; i < sent.size(); i++) {
    if (sent[i] == t->req.cls.get()) {
      class_ref = static_cast<uint32_t>(i + 1);
      break;
    }
  }
  const bool define = class_ref == 0;
  if (define) {
    sent.push_back(t->req.cls.get());
    class_ref = static_cast<uint32_t>(sent.size());
  }
  auto spec = BuildTaskSpec(fbb, *t, define, class_ref, lease->link->remote(), ctx, store);
  lease->link->Send(FinishFrame(fbb, proto::CreatePushTask(fbb, spec)));
}

std::string ActorRestartSpecBytes(const PendingTask& creation, const std::vector<std::pair<std::string, double>>& resources,
                                  const SchedulingOptions& scheduling, bool retriable, const WorkerContext& ctx,
                                  const MemoryStore& store, std::string* not_restartable) {
  for (auto& a : creation.req.args) {
    if (a.by_ref) {
      *not_restartable = "its constructor took an argument by reference (an ObjectRef), which its owner held";
      return {};
    }
  }
  Fbb task(512);
  auto spec = BuildTaskSpec(task, creation, /*define=*/true, /*class_ref=*/1, /*remote=*/true, ctx, store);
  Frame push = FinishFrame(task, proto::CreatePushTask(task, spec));
  Fbb fbb(256 + push.size());
  auto pv = fbb.CreateVector(push.data(), push.size());
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> res;
  for (auto& [name, amount] : resources) res.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  auto rv = fbb.CreateVector(res);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> affinity;
  if (!scheduling.node.IsNil()) affinity = IdBytes(fbb, scheduling.node);
  fbb.Finish(proto::CreateActorRestartSpec(fbb, pv, rv, static_cast<int8_t>(scheduling.strategy), affinity,
                                           scheduling.soft, retriable));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

Frame LeaseRequestFrame(uint64_t request_id, uint64_t key, const std::vector<std::pair<std::string, double>>& resources,
                        bool is_actor, bool detached, bool retriable, const SchedulingOptions& scheduling,
                        bool grant_or_reject, const NodeID& locality, const std::string& owner_address) {
  Fbb fbb(256 + owner_address.size());
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> res;
  for (auto& [name, amount] : resources) res.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  auto rv = fbb.CreateVector(res);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> affinity;
  if (!scheduling.node.IsNil()) affinity = IdBytes(fbb, scheduling.node);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> near;
  if (!locality.IsNil()) near = IdBytes(fbb, locality);
  flatbuffers::Offset<flatbuffers::String> owner;
  if (!owner_address.empty()) owner = fbb.CreateString(owner_address);
  return FinishFrame(fbb, proto::CreateRequestWorkerLease(fbb, request_id, key, rv, is_actor, detached, retriable,
                                                          static_cast<proto::SchedulingStrategy>(scheduling.strategy),
                                                          affinity, scheduling.soft, grant_or_reject, near, owner));
}

void ReturnLease(Lease& lease, Transport& transport, bool worker_exiting) {
  if (lease.returned) return;
  lease.returned = true;
  if (lease.lease_id != 0) {  // 0: a link to an actor owned elsewhere
    Fbb fbb(64);
    // A worker that said it exits (WorkerExiting) must not be leased again.
    auto frame =
        FinishFrame(fbb, proto::CreateReturnWorkerLease(fbb, lease.lease_id, worker_exiting || lease.exit_code >= 0));
    if (lease.node_link) lease.node_link->Send(std::move(frame));  // granted by another node
    else transport.SendToNode(std::move(frame));
  }
  if (lease.link) lease.link->Close();
}

bool ConnectLease(const std::shared_ptr<Lease>& lease, Transport& transport, WorkerContext& ctx, TaskManager& tasks,
                  ReplyHandler on_reply, LeaseClosedHandler on_closed) {
  std::weak_ptr<Lease> weak = lease;
  WorkerContext* c = &ctx;
  TaskManager* tm = &tasks;
  lease->sent_classes.clear();  // a new link knows no class yet
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
