#include "core/gcs/gcs_service.h"

#include <utility>
#include <vector>

namespace rayts::gcs {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
using Body = std::pair<proto::GcsReplyBody, flatbuffers::Offset<void>>;

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

bool ActorIdFrom(const flatbuffers::Vector<uint8_t>* v, ActorID* out) {
  if (!v || v->size() != ActorID::kSize) return false;
  *out = ActorID::FromBytes(v->data());
  return true;
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<proto::ResourceEntry>>> Resources(
    Fbb& fbb, const std::vector<std::pair<std::string, double>>& r) {
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> v;
  v.reserve(r.size());
  for (auto& [name, amount] : r) v.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  return fbb.CreateVector(v);
}

std::vector<std::pair<std::string, double>> ResourcesFrom(
    const flatbuffers::Vector<flatbuffers::Offset<proto::ResourceEntry>>* v) {
  std::vector<std::pair<std::string, double>> out;
  if (v)
    for (auto* e : *v) out.emplace_back(Str(e->name()), e->amount());
  return out;
}

Body ResourcesBody(Fbb& fbb, const std::vector<std::pair<std::string, double>>& r) {
  auto v = Resources(fbb, r);
  return {proto::GcsReplyBody::ResourcesReply, proto::CreateResourcesReply(fbb, v).Union()};
}

}  // namespace

flatbuffers::DetachedBuffer BuildGcsReply(uint64_t request_id, const Status& status, const GcsReplyBodyFn& body) {
  Fbb fbb(256);
  Body b{proto::GcsReplyBody::NONE, 0};
  if (status.ok()) {
    if (body) b = body(fbb);
    else b = {proto::GcsReplyBody::GcsEmptyReply, proto::CreateGcsEmptyReply(fbb).Union()};
  }
  auto msg = status.ok() ? 0 : fbb.CreateString(status.message());
  auto reply = proto::CreateGcsReply(fbb, request_id, static_cast<int>(status.code()), msg, b.first, b.second);
  auto env = proto::CreateEnvelope(fbb, proto::Body::GcsReply, reply.Union());
  fbb.FinishSizePrefixed(env);
  return fbb.Release();
}

GcsService::GcsService(HostHooks hooks) : hooks_(std::move(hooks)) {}

void GcsService::HandleRequest(const std::shared_ptr<GcsPeer>& peer, const GcsCaller& caller,
                               const proto::GcsRequest& request) {
  const uint64_t rid = request.request_id();
  auto reply = [&](const Status& s, const GcsReplyBodyFn& body = nullptr) {
    peer->SendGcsReply(BuildGcsReply(rid, s, body));
  };
  // The verifier accepts a union type whose value is absent: answer it here
  // rather than dereference a missing body.
  if (request.body() == nullptr) {
    reply(Status::InvalidArgument("GCS request has no body"));
    return;
  }
  switch (request.body_type()) {
    case proto::GcsRequestBody::GetAllNodesRequest:
      reply(Status::OK(), [this](Fbb& fbb) -> Body {
        std::vector<flatbuffers::Offset<proto::GcsNode>> nodes;
        for (const NodeInfo& n : tables_.nodes()) {
          auto id = fbb.CreateVector(n.node_id.data(), NodeID::kSize);
          auto addr = fbb.CreateString(n.address);
          auto res = Resources(fbb, n.resources);
          auto ip = fbb.CreateString(n.node_ip);
          auto host = fbb.CreateString(n.hostname);
          auto sd = fbb.CreateString(n.session_dir);
          auto avail = Resources(fbb, n.available);
          auto why = fbb.CreateString(n.death_reason);
          std::vector<flatbuffers::Offset<proto::ResourceDemand>> demand;
          for (auto& [shape, count] : n.pending_demand)
            demand.push_back(proto::CreateResourceDemand(fbb, Resources(fbb, shape), count));
          auto dv = fbb.CreateVector(demand);
          std::vector<flatbuffers::Offset<proto::ResourceDemand>> infeasible;
          for (auto& [shape, count] : n.infeasible_demand)
            infeasible.push_back(proto::CreateResourceDemand(fbb, Resources(fbb, shape), count));
          auto iv = fbb.CreateVector(infeasible);
          auto nm = fbb.CreateString(n.node_manager_address);
          nodes.push_back(proto::CreateGcsNode(fbb, id, addr, n.alive, res, n.start_time_ms, ip, host, n.is_head, n.pid,
                                               sd, avail, why, n.end_time_ms, dv, nm, iv));
        }
        auto v = fbb.CreateVector(nodes);
        return {proto::GcsReplyBody::GetAllNodesReply, proto::CreateGetAllNodesReply(fbb, v).Union()};
      });
      return;
    case proto::GcsRequestBody::GetClusterResourcesRequest:
      reply(Status::OK(), [this](Fbb& fbb) { return ResourcesBody(fbb, tables_.ClusterTotals()); });
      return;
    case proto::GcsRequestBody::GetAvailableResourcesRequest:
      reply(Status::OK(), [this](Fbb& fbb) { return ResourcesBody(fbb, tables_.ClusterAvailable()); });
      return;
    case proto::GcsRequestBody::GetAllJobsRequest:
      reply(Status::OK(), [this](Fbb& fbb) -> Body {
        std::vector<flatbuffers::Offset<proto::GcsJob>> jobs;
        for (auto& [id, j] : tables_.jobs()) {
          auto ns = fbb.CreateString(j.namespace_);
          jobs.push_back(proto::CreateGcsJob(fbb, id, j.driver_pid, j.alive, j.start_time_ms, ns));
        }
        auto v = fbb.CreateVector(jobs);
        return {proto::GcsReplyBody::GetAllJobsReply, proto::CreateGetAllJobsReply(fbb, v).Union()};
      });
      return;
    case proto::GcsRequestBody::KvPutRequest: {
      auto* r = request.body_as_KvPutRequest();
      std::string value;
      if (r->value()) value.assign(reinterpret_cast<const char*>(r->value()->data()), r->value()->size());
      tables_.KvPut(Str(r->key()), std::move(value));
      reply(Status::OK());
      return;
    }
    case proto::GcsRequestBody::KvGetRequest: {
      auto v = tables_.KvGet(Str(request.body_as_KvGetRequest()->key()));
      if (!v.ok()) { reply(v.status()); return; }
      reply(Status::OK(), [&v](Fbb& fbb) -> Body {
        auto bytes = fbb.CreateVector(reinterpret_cast<const uint8_t*>(v->data()), v->size());
        return {proto::GcsReplyBody::KvGetReply, proto::CreateKvGetReply(fbb, bytes).Union()};
      });
      return;
    }
    case proto::GcsRequestBody::KvDelRequest: {
      bool deleted = tables_.KvDel(Str(request.body_as_KvDelRequest()->key()));
      reply(Status::OK(), [deleted](Fbb& fbb) -> Body {
        return {proto::GcsReplyBody::KvDelReply, proto::CreateKvDelReply(fbb, deleted).Union()};
      });
      return;
    }
    case proto::GcsRequestBody::KvKeysRequest: {
      auto keys = tables_.KvKeys(Str(request.body_as_KvKeysRequest()->prefix()));
      reply(Status::OK(), [&keys](Fbb& fbb) -> Body {
        auto v = fbb.CreateVectorOfStrings(keys);
        return {proto::GcsReplyBody::KvKeysReply, proto::CreateKvKeysReply(fbb, v).Union()};
      });
      return;
    }
    case proto::GcsRequestBody::RegisterNodeRequest: {
      auto* r = request.body_as_RegisterNodeRequest();
      if (!r->node_id() || r->node_id()->size() != NodeID::kSize) {
        reply(Status::InvalidArgument("RegisterNodeRequest: node_id must be 16 bytes"));
        return;
      }
      NodeInfo n;
      n.node_id = NodeID::FromBytes(r->node_id()->data());
      if (const NodeInfo* old = tables_.node(n.node_id); old && !old->alive) {
        // Ray: a node the GCS declared dead does not come back (its tasks and
        // actors were handled as lost); it must start again as a new node.
        reply(Status::Invalid("node " + n.node_id.Hex() + " was marked dead (" + old->death_reason +
                              "); it cannot rejoin: start it again"));
        return;
      }
      n.address = Str(r->address());
      n.node_ip = Str(r->node_ip());
      n.hostname = Str(r->hostname());
      n.is_head = r->is_head();
      n.pid = r->pid();
      n.session_dir = Str(r->session_dir());
      n.node_manager_address = Str(r->node_manager_address());
      n.resources = ResourcesFrom(r->resources());
      if (const NodeInfo* old = tables_.node(n.node_id)) {
        n.start_time_ms = old->start_time_ms;  // a reconnect, not a new node
        n.available = old->available;
        n.report_version = old->report_version;
      }
      tables_.RegisterNode(std::move(n));
      reply(Status::OK());
      return;
    }
    case proto::GcsRequestBody::AddJobRequest: {
      auto* r = request.body_as_AddJobRequest();
      JobID job = tables_.AddJob(r->driver_pid(), Str(r->namespace_()));
      reply(Status::OK(), [job](Fbb& fbb) -> Body {
        return {proto::GcsReplyBody::AddJobReply, proto::CreateAddJobReply(fbb, job).Union()};
      });
      return;
    }
    case proto::GcsRequestBody::RegisterActorRequest:
    case proto::GcsRequestBody::ActorAliveRequest:
    case proto::GcsRequestBody::ActorRestartingRequest:
    case proto::GcsRequestBody::ActorDeadRequest:
    case proto::GcsRequestBody::KillActorRequest:
    case proto::GcsRequestBody::WaitActorRequest:
    case proto::GcsRequestBody::GetNamedActorRequest:
    case proto::GcsRequestBody::ActorRestartSpecRequest:
      HandleActorRequest(peer, caller, request);
      return;
    case proto::GcsRequestBody::NONE:
      break;
  }
  reply(Status::InvalidArgument("GCS request has no known body (type " +
                                std::to_string(static_cast<int>(request.body_type())) + ")"));
}

void GcsService::HandleActorRequest(const std::shared_ptr<GcsPeer>& peer, const GcsCaller& caller,
                                    const proto::GcsRequest& request) {
  const uint64_t rid = request.request_id();
  auto reply = [&](const Status& s, const GcsReplyBodyFn& body = nullptr) {
    peer->SendGcsReply(BuildGcsReply(rid, s, body));
  };
  auto bad_id = [&](const char* what) {
    reply(Status::InvalidArgument(std::string(what) + ": actor_id must be " + std::to_string(ActorID::kSize) +
                                  " bytes"));
  };
  ActorTable& table = tables_.actors();
  ActorID id;
  switch (request.body_type()) {
    case proto::GcsRequestBody::RegisterActorRequest: {
      auto* r = request.body_as_RegisterActorRequest();
      if (!ActorIdFrom(r->actor_id(), &id)) return bad_id("RegisterActorRequest");
      ActorInfo info;
      info.id = id;
      info.name = Str(r->name());
      info.ns = Str(r->namespace_());
      info.class_name = Str(r->class_name());
      info.detached = r->detached();
      info.max_restarts = r->max_restarts();
      info.owner_worker = caller.worker_id;
      info.owner_node = caller.node_id;
      info.job = caller.job_id;
      info.creation_spec = Str(r->info());
      auto registered = table.Register(info, r->get_if_exists());
      if (!registered.ok()) return reply(registered.status());
      bool existing = registered->id != id;
      reply(Status::OK(), [&](Fbb& fbb) -> Body {
        auto aid = fbb.CreateVector(registered->id.data(), ActorID::kSize);
        auto spec = existing ? fbb.CreateString(registered->creation_spec) : 0;
        return {proto::GcsReplyBody::RegisterActorReply, proto::CreateRegisterActorReply(fbb, existing, aid, spec).Union()};
      });
      return;
    }
    case proto::GcsRequestBody::ActorAliveRequest: {
      auto* r = request.body_as_ActorAliveRequest();
      if (!ActorIdFrom(r->actor_id(), &id)) return bad_id("ActorAliveRequest");
      std::string address = Str(r->address());
      return reply(table.OnCreated(id, WorkerID::Nil(), address, tables_.NodeOfAddress(address)));
    }
    case proto::GcsRequestBody::ActorRestartingRequest: {
      auto* r = request.body_as_ActorRestartingRequest();
      if (!ActorIdFrom(r->actor_id(), &id)) return bad_id("ActorRestartingRequest");
      auto st = table.OnWorkerDied(id, Str(r->cause()));
      return reply(st.ok() ? Status::OK() : st.status());
    }
    case proto::GcsRequestBody::ActorDeadRequest: {
      auto* r = request.body_as_ActorDeadRequest();
      if (!ActorIdFrom(r->actor_id(), &id)) return bad_id("ActorDeadRequest");
      return reply(table.Kill(id, /*no_restart=*/true, Str(r->cause())));
    }
    case proto::GcsRequestBody::KillActorRequest: {
      // From a process that does not own the actor (e.g. a detached actor
      // whose creator is gone): record the death, then end its worker.
      auto* r = request.body_as_KillActorRequest();
      if (!ActorIdFrom(r->actor_id(), &id)) return bad_id("KillActorRequest");
      const ActorInfo* a = table.Get(id);
      if (!a) return reply(Status::NotFound("no actor " + id.Hex()));
      std::string address = a->address;
      Status s = table.Kill(id, /*no_restart=*/true, Str(r->cause()));
      if (!address.empty() && hooks_.kill_worker_at) hooks_.kill_worker_at(address);
      return reply(s);
    }
    case proto::GcsRequestBody::ActorRestartSpecRequest: {
      auto* r = request.body_as_ActorRestartSpecRequest();
      if (!ActorIdFrom(r->actor_id(), &id)) return bad_id("ActorRestartSpecRequest");
      std::string spec;
      if (r->spec()) spec.assign(reinterpret_cast<const char*>(r->spec()->data()), r->spec()->size());
      return reply(table.SetRestartSpec(id, std::move(spec), Str(r->not_restartable())));
    }
    case proto::GcsRequestBody::WaitActorRequest: {
      if (!ActorIdFrom(request.body_as_WaitActorRequest()->actor_id(), &id)) return bad_id("WaitActorRequest");
      return WaitActor(peer, rid, id);
    }
    case proto::GcsRequestBody::GetNamedActorRequest: {
      auto* r = request.body_as_GetNamedActorRequest();
      std::string ns = Str(r->namespace_()), name = Str(r->name());
      const ActorInfo* a = table.GetByName(ns, name);
      if (!a) return reply(Status::NotFound("no actor named '" + name + "' in namespace '" + ns + "'"));
      reply(Status::OK(), [a](Fbb& fbb) -> Body {
        auto aid = fbb.CreateVector(a->id.data(), ActorID::kSize);
        auto spec = fbb.CreateString(a->creation_spec);
        return {proto::GcsReplyBody::GetNamedActorReply, proto::CreateGetNamedActorReply(fbb, aid, spec).Union()};
      });
      return;
    }
    default:
      return reply(Status::InvalidArgument("not an actor table request"));
  }
}

std::vector<ActorID> GcsService::OnNodeDead(const NodeID& node, const std::string& why) {
  std::vector<ActorID> to_restart;
  for (const std::string& address : tables_.actors().OnNodeDead(node, why, &to_restart)) {
    if (hooks_.kill_worker_at) hooks_.kill_worker_at(address);
  }
  return to_restart;
}

void GcsService::WaitActor(const std::shared_ptr<GcsPeer>& peer, uint64_t request_id, const ActorID& id) {
  ActorTable& table = tables_.actors();
  const ActorInfo* a = table.Get(id);
  auto answer = [request_id](GcsPeer& to, const ActorInfo& info) {
    bool alive = info.state == ActorState::kAlive;
    to.SendGcsReply(BuildGcsReply(request_id, Status::OK(), [&](Fbb& fbb) -> Body {
      auto addr = fbb.CreateString(alive ? info.address : std::string());
      auto cause = fbb.CreateString(alive ? std::string() : info.death_cause);
      return {proto::GcsReplyBody::WaitActorReply, proto::CreateWaitActorReply(fbb, alive, addr, cause).Union()};
    }));
  };
  if (!a) {
    peer->SendGcsReply(BuildGcsReply(request_id, Status::NotFound("no actor " + id.Hex()), nullptr));
    return;
  }
  if (a->state == ActorState::kAlive || a->state == ActorState::kDead) {
    answer(*peer, *a);
    return;
  }
  std::weak_ptr<GcsPeer> weak = peer;
  auto sub = std::make_shared<uint64_t>(0);
  *sub = table.Subscribe(id, [this, weak, answer, sub](const ActorInfo& info) {
    if (info.state != ActorState::kAlive && info.state != ActorState::kDead) return;
    if (auto to = weak.lock()) answer(*to, info);
    tables_.actors().Unsubscribe(*sub);
  });
}

}  // namespace rayts::gcs
