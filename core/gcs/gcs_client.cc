#include "core/gcs/gcs_client.h"

#include <cstdio>
#include <vector>

#include "core/common/json.h"
#include "core/protocol/blocking_channel.h"
#include "core/protocol/connection.h"

namespace rayts::gcs {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> IdBytes(Fbb& fbb, const ActorID& id) {
  return fbb.CreateVector(id.data(), ActorID::kSize);
}

template <typename T>
flatbuffers::DetachedBuffer RequestFrame(Fbb& fbb, uint64_t request_id, flatbuffers::Offset<T> body) {
  return FinishFrame(fbb, proto::CreateGcsRequest(fbb, request_id, proto::GcsRequestBodyTraits<T>::enum_value,
                                                  body.Union()));
}

template <typename Builder>
flatbuffers::DetachedBuffer EmptyRequestFrame(uint64_t request_id) {
  Fbb fbb(64);
  Builder b(fbb);
  return RequestFrame(fbb, request_id, b.Finish());
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

std::string HexOf(const flatbuffers::Vector<uint8_t>* v) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  if (!v) return out;
  out.reserve(v->size() * 2);
  for (uint8_t b : *v) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

void ResourcesJsonTo(std::string* out, const flatbuffers::Vector<flatbuffers::Offset<proto::ResourceEntry>>* r) {
  out->push_back('{');
  bool first = true;
  if (r) {
    for (auto* e : *r) {
      if (!first) out->push_back(',');
      first = false;
      JsonEscapeTo(out, Str(e->name()));
      *out += ":" + Num(e->amount());
    }
  }
  out->push_back('}');
}

// The items of a [ResourceDemand] as JSON objects {shape, count}, comma-separated.
void DemandJsonTo(std::string* out, const flatbuffers::Vector<flatbuffers::Offset<proto::ResourceDemand>>* d) {
  bool first = true;
  if (!d) return;
  for (auto* e : *d) {
    if (!first) out->push_back(',');
    first = false;
    *out += "{\"shape\":";
    ResourcesJsonTo(out, e->shape());
    *out += ",\"count\":" + std::to_string(e->count()) + "}";
  }
}

Status ReplyStatus(const proto::GcsReply& r) {
  if (r.code() == 0) return Status::OK();
  return Status(static_cast<StatusCode>(r.code()), Str(r.message()));
}

std::string GcsReplyJson(const proto::GcsReply& r) {
  std::string out;
  if (r.body() == nullptr) return "null";
  switch (r.body_type()) {
    case proto::GcsReplyBody::GetAllNodesReply: {
      out = "[";
      bool first = true;
      if (auto* nodes = r.body_as_GetAllNodesReply()->nodes()) {
        for (auto* n : *nodes) {
          if (!first) out += ",";
          first = false;
          out += "{\"nodeId\":\"" + HexOf(n->node_id()) + "\",\"alive\":" + (n->alive() ? "true" : "false") +
                 ",\"address\":" + JsonString(Str(n->address())) + ",\"resources\":";
          ResourcesJsonTo(&out, n->resources());
          out += ",\"available\":";
          ResourcesJsonTo(&out, n->available());
          out += ",\"startTimeMs\":" + std::to_string(n->start_time_ms()) +
                 ",\"isHead\":" + (n->is_head() ? "true" : "false") + ",\"nodeIp\":" + JsonString(Str(n->node_ip())) +
                 ",\"hostname\":" + JsonString(Str(n->hostname())) + ",\"pid\":" + std::to_string(n->pid()) +
                 ",\"sessionDir\":" + JsonString(Str(n->session_dir())) +
                 ",\"deathReason\":" + JsonString(Str(n->death_reason())) +
                 ",\"endTimeMs\":" + std::to_string(n->end_time_ms()) + ",\"pendingDemand\":[";
          DemandJsonTo(&out, n->pending_demand());
          out += "],\"infeasibleDemand\":[";
          DemandJsonTo(&out, n->infeasible_demand());
          out += "],\"nodeManagerAddress\":" + JsonString(Str(n->node_manager_address())) + "}";
        }
      }
      return out + "]";
    }
    case proto::GcsReplyBody::ResourcesReply:
      ResourcesJsonTo(&out, r.body_as_ResourcesReply()->resources());
      return out;
    case proto::GcsReplyBody::GetAllJobsReply: {
      out = "[";
      bool first = true;
      if (auto* jobs = r.body_as_GetAllJobsReply()->jobs()) {
        for (auto* j : *jobs) {
          if (!first) out += ",";
          first = false;
          out += "{\"jobId\":" + std::to_string(j->job_id()) + ",\"driverPid\":" + std::to_string(j->driver_pid()) +
                 ",\"alive\":" + (j->alive() ? "true" : "false") +
                 ",\"namespace\":" + JsonString(Str(j->namespace_())) + "}";
        }
      }
      return out + "]";
    }
    default:
      return "null";
  }
}

std::string NodeStatsJson(const proto::NodeStatsReply& r) {
  std::string out = "{";
  bool first = true;
  if (r.stats()) {
    for (auto* e : *r.stats()) {
      if (!first) out += ",";
      first = false;
      JsonEscapeTo(&out, Str(e->name()));
      out += ":" + Num(e->value());
    }
  }
  return out + "}";
}

std::string StoreObjectsJsonOf(const proto::StoreObjectsReply& r) {
  std::string out = "{\"storeCapacity\":" + std::to_string(r.capacity()) +
                    ",\"storeUsed\":" + std::to_string(r.used()) + ",\"storePinned\":" + std::to_string(r.pinned()) +
                    ",\"spillDir\":" + JsonString(Str(r.spill_dir())) +
                    ",\"spillUsed\":" + std::to_string(r.spill_used()) +
                    ",\"spillLimit\":" + std::to_string(r.spill_limit()) +
                    ",\"spilledObjects\":" + std::to_string(r.spilled_objects()) +
                    ",\"spillCount\":" + std::to_string(r.spill_count()) +
                    ",\"restoreCount\":" + std::to_string(r.restore_count()) + ",\"objects\":[";
  bool first = true;
  if (r.objects()) {
    for (auto* o : *r.objects()) {
      if (!first) out += ',';
      first = false;
      const char* where = o->location() == proto::StoreLocation::Both      ? "both"
                          : o->location() == proto::StoreLocation::Spilled ? "spilled"
                                                                           : "memory";
      out += "{\"id\":\"" + HexOf(o->object_id()) + "\",\"size\":" + std::to_string(o->size()) +
             ",\"sealed\":" + (o->sealed() ? "true" : "false") + ",\"location\":\"" + where +
             "\",\"pinned\":" + (o->pinned() ? "true" : "false") + ",\"refs\":" + std::to_string(o->refs()) + "}";
    }
  }
  return out + "]}";
}

}  // namespace

const char* ClusterQueryName(ClusterQuery q) {
  switch (q) {
    case ClusterQuery::kNodes: return "Nodes";
    case ClusterQuery::kClusterResources: return "ClusterResources";
    case ClusterQuery::kAvailableResources: return "AvailableResources";
    case ClusterQuery::kJobs: return "Jobs";
    case ClusterQuery::kNodeStats: return "NodeStats";
    case ClusterQuery::kStoreObjects: return "StoreObjects";
  }
  return "Unknown";
}

// ------------------------------------------------------------ synchronous --

Status GcsClient::Call(const flatbuffers::DetachedBuffer& frame, std::vector<uint64_t>* storage,
                       const proto::GcsReply** out) {
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(channel_->Call(frame, proto::Body::GcsReply, storage, &env));
  *out = env->body_as_GcsReply();
  return ReplyStatus(**out);
}

StatusOr<RegisteredActor> GcsClient::RegisterActor(const ActorRegistration& r) {
  Fbb fbb(256 + r.info.size());
  auto id = IdBytes(fbb, r.actor_id);
  auto name = fbb.CreateString(r.name);
  auto ns = fbb.CreateString(r.ns);
  auto cls = fbb.CreateString(r.class_name);
  auto info = fbb.CreateString(r.info);
  auto frame = RequestFrame(fbb, 1, proto::CreateRegisterActorRequest(fbb, id, name, ns, cls, r.detached,
                                                                      r.get_if_exists, r.max_restarts, info));
  std::vector<uint64_t> storage;
  const proto::GcsReply* reply;
  RAYTS_RETURN_IF_ERROR(Call(frame, &storage, &reply));
  auto* body = reply->body_as_RegisterActorReply();
  if (!body || !body->actor_id() || body->actor_id()->size() != ActorID::kSize)
    return Status::Invalid("RegisterActor: malformed reply");
  RegisteredActor out;
  out.existing = body->existing();
  out.actor_id = ActorID::FromBytes(body->actor_id()->data());
  out.info = Str(body->info());
  return out;
}

StatusOr<NamedActor> GcsClient::GetNamedActor(const std::string& ns, const std::string& name) {
  Fbb fbb(128 + ns.size() + name.size());
  auto n = fbb.CreateString(ns);
  auto nm = fbb.CreateString(name);
  auto frame = RequestFrame(fbb, 1, proto::CreateGetNamedActorRequest(fbb, n, nm));
  std::vector<uint64_t> storage;
  const proto::GcsReply* reply;
  RAYTS_RETURN_IF_ERROR(Call(frame, &storage, &reply));
  auto* body = reply->body_as_GetNamedActorReply();
  if (!body || !body->actor_id() || body->actor_id()->size() != ActorID::kSize)
    return Status::Invalid("GetNamedActor: malformed reply");
  return NamedActor{ActorID::FromBytes(body->actor_id()->data()), Str(body->info())};
}

Status GcsClient::KillActor(const ActorID& id, const std::string& cause) {
  Fbb fbb(128 + cause.size());
  auto aid = IdBytes(fbb, id);
  auto c = fbb.CreateString(cause);
  auto frame = RequestFrame(fbb, 1, proto::CreateKillActorRequest(fbb, aid, c));
  std::vector<uint64_t> storage;
  const proto::GcsReply* reply;
  return Call(frame, &storage, &reply);
}

Status GcsClient::ReportActorDead(const ActorID& id, const std::string& cause) {
  std::vector<uint64_t> storage;
  const proto::GcsReply* reply;
  return Call(ActorDeadFrame(id, cause), &storage, &reply);
}

StatusOr<std::string> GcsClient::StoreObjectsJson() {
  Fbb fbb(64);
  auto frame = FinishFrame(fbb, proto::CreateStoreObjectsRequest(fbb, 1));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(channel_->Call(frame, proto::Body::StoreObjectsReply, &storage, &env));
  return QueryReplyJson(*env);
}

// ----------------------------------------------------------- asynchronous --

flatbuffers::DetachedBuffer ActorAliveFrame(const ActorID& id, const std::string& address) {
  Fbb fbb(128 + address.size());
  auto aid = IdBytes(fbb, id);
  auto a = fbb.CreateString(address);
  return RequestFrame(fbb, 0, proto::CreateActorAliveRequest(fbb, aid, a));
}

flatbuffers::DetachedBuffer ActorRestartingFrame(const ActorID& id, const std::string& cause) {
  Fbb fbb(128 + cause.size());
  auto aid = IdBytes(fbb, id);
  auto c = fbb.CreateString(cause);
  return RequestFrame(fbb, 0, proto::CreateActorRestartingRequest(fbb, aid, c));
}

flatbuffers::DetachedBuffer ActorDeadFrame(const ActorID& id, const std::string& cause) {
  Fbb fbb(128 + cause.size());
  auto aid = IdBytes(fbb, id);
  auto c = fbb.CreateString(cause);
  return RequestFrame(fbb, 0, proto::CreateActorDeadRequest(fbb, aid, c));
}

flatbuffers::DetachedBuffer ActorRestartSpecFrame(const ActorID& id, const std::string& spec,
                                                  const std::string& not_restartable) {
  Fbb fbb(128 + spec.size() + not_restartable.size());
  auto aid = IdBytes(fbb, id);
  auto sv = fbb.CreateVector(reinterpret_cast<const uint8_t*>(spec.data()), spec.size());
  auto why = fbb.CreateString(not_restartable);
  return RequestFrame(fbb, 0, proto::CreateActorRestartSpecRequest(fbb, aid, sv, why));
}

flatbuffers::DetachedBuffer WaitActorFrame(uint64_t request_id, const ActorID& id) {
  Fbb fbb(64);
  auto aid = IdBytes(fbb, id);
  return RequestFrame(fbb, request_id, proto::CreateWaitActorRequest(fbb, aid));
}

StatusOr<flatbuffers::DetachedBuffer> QueryFrame(uint64_t request_id, int query) {
  switch (static_cast<ClusterQuery>(query)) {
    case ClusterQuery::kNodes: return EmptyRequestFrame<proto::GetAllNodesRequestBuilder>(request_id);
    case ClusterQuery::kClusterResources:
      return EmptyRequestFrame<proto::GetClusterResourcesRequestBuilder>(request_id);
    case ClusterQuery::kAvailableResources:
      return EmptyRequestFrame<proto::GetAvailableResourcesRequestBuilder>(request_id);
    case ClusterQuery::kJobs: return EmptyRequestFrame<proto::GetAllJobsRequestBuilder>(request_id);
    case ClusterQuery::kNodeStats: {
      Fbb fbb(64);
      return FinishFrame(fbb, proto::CreateNodeStatsRequest(fbb, request_id));
    }
    case ClusterQuery::kStoreObjects: {
      Fbb fbb(64);
      return FinishFrame(fbb, proto::CreateStoreObjectsRequest(fbb, request_id));
    }
  }
  return Status::InvalidArgument("unknown cluster query " + std::to_string(query));
}

StatusOr<ActorLocation> ReadWaitActorReply(const proto::GcsReply& reply) {
  RAYTS_RETURN_IF_ERROR(ReplyStatus(reply));
  auto* body = reply.body_as_WaitActorReply();
  if (!body) return Status::InvalidArgument("WaitActor: the reply has another body");
  return ActorLocation{body->alive(), Str(body->address()), Str(body->death_cause())};
}

StatusOr<std::string> QueryReplyJson(const proto::Envelope& reply) {
  switch (reply.body_type()) {
    case proto::Body::GcsReply: {
      auto* r = reply.body_as_GcsReply();
      RAYTS_RETURN_IF_ERROR(ReplyStatus(*r));
      return GcsReplyJson(*r);
    }
    case proto::Body::NodeStatsReply: return NodeStatsJson(*reply.body_as_NodeStatsReply());
    case proto::Body::StoreObjectsReply: return StoreObjectsJsonOf(*reply.body_as_StoreObjectsReply());
    default: return Status::InvalidArgument("not a query reply");
  }
}

uint64_t QueryReplyId(const proto::Envelope& reply) {
  switch (reply.body_type()) {
    case proto::Body::GcsReply: return reply.body_as_GcsReply()->request_id();
    case proto::Body::NodeStatsReply: return reply.body_as_NodeStatsReply()->request_id();
    case proto::Body::StoreObjectsReply: return reply.body_as_StoreObjectsReply()->request_id();
    default: return 0;
  }
}

}  // namespace rayts::gcs
