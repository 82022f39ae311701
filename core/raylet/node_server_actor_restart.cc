// NodeServer in cluster mode: the GCS creates a detached actor again here
// (RestartActor: its node died after its creator was gone; see
// core/gcs/gcs_actor_restart.cc). This node acts as the creation's
// submitter, as Ray's GcsActorScheduler leases a worker from a raylet and
// pushes the creation task: its SchedulingPolicy places the actor (here;
// another node, named back to the GCS; or rejected / infeasible), then it
// leases a local worker (held for the actor's life, with no owner, as a
// detached actor's lease is once its owner is gone), pushes the
// constructor's PushTask (the owner's own frame, with the restart's
// attempt number) over a connection of its own, and tells the GCS how it
// ended (RestartActorReply).
#include "core/protocol/peer_address.h"
#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
using Kind = SchedulingDecision::Kind;
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
// The fair-share key of the GCS's restarts in the LeaseManager.
constexpr uint64_t kRestartShare = 0x6c5a6c5a6c5aull;

// The constructor's PushTask again, as `attempt` (the executor's
// wasCurrentActorReconstructed): every other field as the owner sent it.
flatbuffers::DetachedBuffer WithAttempt(const proto::TaskSpec& s, int attempt) {
  Fbb fbb(1024);
  auto bytes = [&fbb](const flatbuffers::Vector<uint8_t>* v) {
    return v ? fbb.CreateVector(v->data(), v->size()) : flatbuffers::Offset<flatbuffers::Vector<uint8_t>>();
  };
  auto str = [&fbb](const flatbuffers::String* v) {
    return v ? fbb.CreateString(v) : flatbuffers::Offset<flatbuffers::String>();
  };
  flatbuffers::Offset<proto::FunctionDescriptor> fd;
  if (auto* f = s.function()) {
    fd = proto::CreateFunctionDescriptor(fbb, str(f->hash()), str(f->source()), str(f->module_url()),
                                         str(f->export_name()), str(f->name()));
  }
  std::vector<flatbuffers::Offset<proto::TaskArg>> args;
  if (s.args()) {
    for (auto* a : *s.args()) args.push_back(proto::CreateTaskArg(fbb, bytes(a->object_id()), bytes(a->data()),
                                                                  a->in_plasma(), str(a->owner_address())));
  }
  auto argv = fbb.CreateVector(args);
  auto spec = proto::CreateTaskSpec(fbb, bytes(s.task_id()), s.job_id(), bytes(s.caller_id()), str(s.owner_address()),
                                    fd, argv, s.num_returns(), str(s.name()), attempt, bytes(s.actor_id()),
                                    s.actor_creation(), str(s.method()), s.max_concurrency(),
                                    str(s.concurrency_groups()), s.release_cpu(), s.actor_seq(),
                                    s.actor_epoch_start(), str(s.retry_exceptions()), s.class_ref(),
                                    s.generator_skip());
  return FinishFrame(fbb, proto::CreatePushTask(fbb, spec));
}
}  // namespace

void NodeServer::ReplyRestart(const TaskID& actor, const RestartOutcome& o) {
  if (!link_) return;
  Fbb fbb(256 + o.message.size() + o.address.size());
  auto aid = fbb.CreateVector(actor.data(), TaskID::kSize);
  auto msg = o.message.empty() ? 0 : fbb.CreateString(o.message);
  auto retry = o.retry_at.IsNil() ? 0 : fbb.CreateVector(o.retry_at.data(), NodeID::kSize);
  auto wid = o.worker.IsNil() ? 0 : fbb.CreateVector(o.worker.data(), WorkerID::kSize);
  auto addr = o.address.empty() ? 0 : fbb.CreateString(o.address);
  link_->SendToGcs(FinishFrame(fbb, proto::CreateRestartActorReply(fbb, aid, o.code, msg, retry, o.rejected, wid, addr,
                                                                  o.constructor_threw)));
}

void NodeServer::OnRestartActor(const proto::RestartActor& r) {
  if (!r.actor_id() || r.actor_id()->size() != TaskID::kSize) return;
  TaskID actor = TaskID::FromBytes(r.actor_id()->data());
  auto fail = [&](const Status& s) {
    RestartOutcome o;
    o.code = static_cast<int>(s.code());
    o.message = s.message();
    ReplyRestart(actor, o);
  };
  const proto::ActorRestartSpec* spec = nullptr;
  if (r.spec()) {
    flatbuffers::Verifier v(r.spec()->data(), r.spec()->size());
    if (v.VerifyBuffer<proto::ActorRestartSpec>(nullptr)) spec = flatbuffers::GetRoot<proto::ActorRestartSpec>(r.spec()->data());
  }
  const proto::Envelope* push = nullptr;
  if (!spec || !spec->push_task() ||
      !VerifyEnvelope(spec->push_task()->data(), spec->push_task()->size(), &push).ok() ||
      push->body_type() != proto::Body::PushTask || !push->body_as_PushTask()->spec()) {
    return fail(Status::InvalidArgument("RestartActor: the actor's creation spec is malformed"));
  }
  std::vector<std::pair<std::string, double>> shape;
  if (spec->resources())
    for (auto* e : *spec->resources()) shape.emplace_back(Str(e->name()), e->amount());
  auto rs = ResourceSet::FromMap(shape);
  if (!rs.ok()) return fail(rs.status());
  if (view_) {
    SchedulingRequest sr;
    sr.shape = *rs;
    sr.strategy = static_cast<proto::SchedulingStrategy>(spec->strategy());
    if (spec->affinity_node_id() && spec->affinity_node_id()->size() == NodeID::kSize) {
      sr.affinity = NodeID::FromBytes(spec->affinity_node_id()->data());
    }
    sr.soft = spec->affinity_soft();
    sr.grant_or_reject = r.grant_or_reject();
    view_->UpdateSelf(leases_->total(), leases_->available());
    SchedulingDecision d = policy_.Pick(*view_, sr);
    RestartOutcome o;
    switch (d.kind) {
      case Kind::kLocal:
        break;
      case Kind::kSpill:
        spilled_leases_++;
        view_->AllocateRemote(d.node, sr.shape);
        o.retry_at = d.node;
        return ReplyRestart(actor, o);
      case Kind::kReject:
        o.rejected = true;
        return ReplyRestart(actor, o);
      case Kind::kInfeasible:
        RecordInfeasible(sr.shape);
        return fail(Status::Infeasible(d.message));
      case Kind::kUnschedulable:
        return fail(Status::Infeasible(d.message));
    }
  }
  auto frame = std::make_shared<flatbuffers::DetachedBuffer>(WithAttempt(*push->body_as_PushTask()->spec(), r.attempt()));
  bool retriable = spec->retriable();
  NodeLog(node_id_, "restarting actor " + actor.Hex() + " here for the GCS (restart " + std::to_string(r.attempt()) + ")");
  leases_->RequestLease(next_request_key_++, *rs, [this, actor, frame, retriable](StatusOr<Lease> lease) {
    if (!lease.ok()) {
      RestartOutcome o;
      o.code = static_cast<int>(lease.status().code());
      o.message = "no worker for it here: " + lease.status().message();
      return ReplyRestart(actor, o);
    }
    granted_[lease->lease_id] = LeaseRecord{0, lease->worker_id, /*actor=*/true, /*detached=*/true, retriable};
    PushRestartCreation(actor, lease->lease_id, lease->worker_id, frame);
  }, kRestartShare);
}

void NodeServer::PushRestartCreation(const TaskID& actor, uint64_t lease_id, const WorkerID& worker,
                                     std::shared_ptr<flatbuffers::DetachedBuffer> frame) {
  std::string address = worker_address_[worker];
  UnixSocket sock(io_);
  asio::error_code ec;
  sock.connect(asio::local::stream_protocol::endpoint(ParsePeerAddress(address).path), ec);
  if (ec) {
    if (TakeLease(lease_id)) (void)leases_->ReturnLease(lease_id, /*worker_exiting=*/true);
    RestartOutcome o;
    o.code = static_cast<int>(StatusCode::kIOError);
    o.message = "its new worker at " + address + " could not be reached: " + ec.message();
    return ReplyRestart(actor, o);
  }
  auto conn = std::make_shared<Connection>(std::move(sock));
  uint64_t cid = conn->id();
  restart_links_[cid] = conn;
  auto answered = std::make_shared<bool>(false);
  conn->Start(
      [this, actor, worker, address, answered, cid](const proto::Envelope& e) {
        if (e.body_type() != proto::Body::PushTaskReply || *answered) return;
        *answered = true;
        auto* reply = e.body_as_PushTaskReply();
        RestartOutcome o;
        auto* ret = reply->returns() && reply->returns()->size() > 0 ? reply->returns()->Get(0) : nullptr;
        if (ret && ret->is_error()) {
          o.code = static_cast<int>(StatusCode::kInvalid);
          o.constructor_threw = true;
          if (ret->data()) o.message.assign(reinterpret_cast<const char*>(ret->data()->data()), ret->data()->size());
          KillWorkerAt(address);  // its worker and lease go
        } else {
          o.worker = worker;
          o.address = address;
        }
        ReplyRestart(actor, o);
        auto it = restart_links_.find(cid);
        if (it != restart_links_.end()) {
          auto c = it->second;
          restart_links_.erase(it);
          c->Close();  // the actor lives on; its callers connect to it themselves
        }
      },
      [this, actor, address, answered, cid](const Status& s) {
        restart_links_.erase(cid);
        if (*answered) return;
        *answered = true;
        RestartOutcome o;
        o.code = static_cast<int>(StatusCode::kIOError);
        o.message = "its new worker at " + address + " died before its constructor finished (" + s.message() + ")";
        ReplyRestart(actor, o);
      });
  conn->Send(std::move(*frame));
}

}  // namespace rayts::raylet
