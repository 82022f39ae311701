#include "core/core_worker/core_worker.h"

#include <unistd.h>

#include <cstdio>

#include "core/common/json.h"
#include "core/core_worker/asio_loop.h"
#include "core/core_worker/loop_transport.h"
#include "core/core_worker/wire.h"
#include "core/protocol/peer_address.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

CoreWorker::CoreWorker(CoreWorkerOptions opts, Transport* transport, EventLoop* loop)
    : ctx_(std::move(opts)),
      own_loop_(transport || loop ? nullptr : std::make_unique<AsioLoop>()),
      sockets_(transport ? nullptr : std::make_unique<LoopTransport>(ctx_, loop ? *loop : *own_loop_)),
      transport_(transport ? *transport : *sockets_),
      // Called from inside refs_'s methods, which run under the core lock.
      refs_([this](const ObjectID& id, const ReferenceCounter::Ref& r) {
        ctx_.AssertHeld();
        objects_.OnReleasedLocked(id, r);
      }),
      borrowers_(ctx_, transport_, &refs_),
      objects_(ctx_, transport_, &plasma_, &refs_, borrowers_),
      tasks_(ctx_, transport_, objects_, borrowers_, &refs_, &plasma_, ctx_.opts().lineage_max_bytes),
      nodes_(ctx_, transport_),
      normal_(ctx_, transport_, tasks_, objects_, nodes_),
      actors_(ctx_, transport_, tasks_, objects_, &refs_, nodes_),
      receiver_(ctx_, transport_, tasks_, borrowers_) {
  tasks_.Wire(&normal_, &actors_, &receiver_);
  // Lease replies of other nodes' servers (spillback) go where the own node's do.
  nodes_.SetHandlers(
      [this](const proto::LeaseReply& r) {
        ctx_.AssertHeld();
        if (!normal_.OnLeaseReplyLocked(r)) actors_.OnLeaseReplyLocked(r);
      },
      [this](const std::string& node) {
        ctx_.AssertHeld();
        normal_.OnNodeLostLocked(node);
        actors_.OnNodeLostLocked(node);
      });
  objects_.SetHooks({
      [this](const ObjectID& id) {
        ctx_.AssertHeld();
        tasks_.OnObjectReadyLocked(id);
      },
      [this](const ObjectID& id) {
        ctx_.AssertHeld();
        tasks_.OnOwnedReleasedLocked(id);
        actors_.OnOwnedReleasedLocked(id);
      },
      [this](const ObjectID& id) {
        ctx_.AssertHeld();
        return receiver_.CallerOfLocked(TaskIdOf(id));
      },
  });
  borrowers_.SetHooks({
      [this](const proto::GetObjectReply& r) {
        ctx_.AssertHeld();
        objects_.OnGetObjectReplyLocked(r);
      },
      [this](const std::string& address) {
        ctx_.AssertHeld();
        objects_.OnOwnerGoneLocked(address);
      },
  });
}

CoreWorker::~CoreWorker() { Shutdown(); }

StatusOr<std::unique_ptr<CoreWorker>> CoreWorker::Start(CoreWorkerOptions opts, EventLoop* loop) {
  std::unique_ptr<CoreWorker> cw(new CoreWorker(std::move(opts), nullptr, loop));
  RAYTS_RETURN_IF_ERROR(cw->Connect());
  return cw;
}

std::unique_ptr<CoreWorker> CoreWorker::WithTransport(CoreWorkerOptions opts, Transport& transport) {
  return std::unique_ptr<CoreWorker>(new CoreWorker(std::move(opts), &transport, nullptr));
}

Status CoreWorker::Connect() {
  const CoreWorkerOptions& o = ctx_.opts();
  // 1. Listen first: a worker may be leased as soon as it registers.
  InboundHandlers inbound{
      [this](const std::shared_ptr<Link>& l) {
        ctx_.AssertHeld();
        receiver_.OnAcceptedLocked(l);
      },
      [this](const std::shared_ptr<Link>& l, const proto::Envelope& e) {
        ctx_.AssertHeld();
        OnInboundLocked(l, e);
      },
      [this](const std::shared_ptr<Link>& l) {
        ctx_.AssertHeld();
        receiver_.OnLinkClosedLocked(l);
      },
  };
  RAYTS_RETURN_IF_ERROR(sockets_->Listen(o.listen_path, std::move(inbound)));
  // Cluster mode: TCP too, for processes of other nodes; the address names both.
  if (!o.node_ip.empty()) {
    auto port = sockets_->ListenTcp(o.node_ip, 0);
    if (!port.ok()) return port.status();
    ctx_.SetAddress(JoinPeerAddress(o.listen_path, o.node_ip, *port));
  }
  sockets_->SetSelfAddress(ctx_.address());

  // 2. Plasma channel: register, map the store the node passes (and, in
  // cluster mode, the token of the TCP connections).
  PlasmaClient::Registration reg{o.worker_id, o.is_driver, ctx_.address(), o.job_id};
  auto node = plasma_.Connect(o.node_socket, reg);
  if (!node.ok()) return node.status();
  ctx_.SetNode(node->node_id, node->job_id, node->session_dir);
  sockets_->SetAuthToken(node->auth_token);

  // 3. Control connection (read on the loop thread).
  RAYTS_RETURN_IF_ERROR(sockets_->ConnectControl(o.node_socket, PlasmaClient::RegisterFrame(reg, /*control=*/true),
                                                 [this](const proto::Envelope& e) {
                                                   ctx_.AssertHeld();
                                                   OnControlLocked(e);
                                                 }));
  if (own_loop_) own_loop_->Run();
  return Status::OK();
}

void CoreWorker::Shutdown() {
  if (ctx_.shutting_down.exchange(true)) return;
  if (sockets_) {
    // On the loop thread (the caller's own under Node), bounded.
    if (own_loop_ && !own_loop_->RunAndWait([this] { sockets_->Stop(); }, std::chrono::seconds(5))) {
      std::fprintf(stderr, "rayts: the loop thread did not close its connections within 5 s; stopping it anyway\n");
    }
    if (own_loop_) own_loop_->Stop();
    sockets_->Stop();  // closes what is left when the loop thread did not answer
  }
  plasma_.Close();
}

void CoreWorker::FlushOutbox() {
  if (sockets_) sockets_->FlushHost();
}

bool CoreWorker::TakeHostFlushRequest() { return sockets_ && sockets_->TakeHostFlushRequest(); }

// --------------------------------------------------------------- routing --

void CoreWorker::OnInboundLocked(const std::shared_ptr<Link>& from, const proto::Envelope& env) {
  switch (env.body_type()) {
    case proto::Body::PushTask:
      if (auto* spec = env.body_as_PushTask()->spec()) receiver_.OnPushTaskLocked(from, *spec);
      break;
    case proto::Body::GetObject:
      objects_.OnGetObjectLocked(from, *env.body_as_GetObject());
      break;
    case proto::Body::MemorySummaryRequest: {
      std::string json = MemorySummaryJsonLocked(ctx_, refs_, objects_, tasks_);
      Fbb fbb(json.size() + 64);
      auto j = fbb.CreateString(json);
      from->Send(FinishFrame(fbb, proto::CreateMemorySummaryReply(fbb, env.body_as_MemorySummaryRequest()->request_id(), j)));
      break;
    }
    case proto::Body::AddBorrower:
    case proto::Body::RemoveBorrower:
      borrowers_.OnBorrowerMessageLocked(from, env);
      break;
    case proto::Body::CancelTask:
      receiver_.OnCancelRequestLocked(*env.body_as_CancelTask());
      break;
    case proto::Body::ObjectLocationsUpdate:  // a node gained or lost copies of objects we own
      objects_.OnLocationsUpdateLocked(*env.body_as_ObjectLocationsUpdate());
      break;
    default:
      break;
  }
}

void CoreWorker::OnControlLocked(const proto::Envelope& env) {
  switch (env.body_type()) {
    case proto::Body::LeaseReply: {
      auto* r = env.body_as_LeaseReply();
      if (!normal_.OnLeaseReplyLocked(*r)) actors_.OnLeaseReplyLocked(*r);
      break;
    }
    case proto::Body::GcsReply:
    case proto::Body::NodeStatsReply:
    case proto::Body::StoreObjectsReply: {
      uint64_t rid = gcs::QueryReplyId(env);
      if (rid == 0) break;  // fire-and-forget (actor table updates)
      if (actors_.OnGcsReplyLocked(rid, env)) break;
      auto json = gcs::QueryReplyJson(env);
      Event e{Event::Type::kGcsReply};
      e.id = rid;
      e.code = json.ok() ? 0 : static_cast<int>(json.status().code());
      e.text = json.ok() ? *json : json.status().message();
      ctx_.Emit(std::move(e));
      break;
    }
    case proto::Body::TriggerGc:
      ctx_.Emit(Event(Event::Type::kTriggerGc));
      break;
    case proto::Body::KillWorker:  // the node's memory monitor: never returns
      receiver_.OnKillWorkerLocked(Str(env.body_as_KillWorker()->reason()));
      break;
    case proto::Body::WorkerDied:  // how a worker we leased ended
      normal_.OnWorkerDiedLocked(*env.body_as_WorkerDied());
      break;
    case proto::Body::FetchObjectReply:  // ray.wait fetchLocal
      objects_.OnFetchReplyLocked(*env.body_as_FetchObjectReply());
      break;
    case proto::Body::NodeDied:  // the GCS marked a node dead
      OnNodeDiedLocked(*env.body_as_NodeDied());
      break;
    default:
      break;
  }
}

void CoreWorker::OnNodeDiedLocked(const proto::NodeDied& d) {
  if (!d.node_id() || d.node_id()->size() != NodeID::kSize) return;
  DeadNode dead{IdFrom<NodeID>(d.node_id()), Str(d.address()), Str(d.node_manager_address()), Str(d.reason())};
  if (dead.id == ctx_.node_id() || !ctx_.dead_nodes().Add(dead)) return;
  // Leases granted there: their workers are gone (what ran on them is
  // retried, maxRetries); requests waiting there are asked again here.
  nodes_.OnNodeDeadLocked(dead.manager_address);
  normal_.OnNodeDeadLocked(dead.manager_address);
  // Objects: fetches from owners that lived there fail (OwnerDiedError);
  // owned objects whose primary copy was there move to another copy if a
  // node holds one, else are rebuilt from lineage or become ObjectLostError
  // naming the node's death.
  for (const ObjectID& id : objects_.OnNodeDeadLocked(dead)) tasks_.OnPrimaryLostLocked(id, dead.Describe());
}

StatusOr<uint64_t> CoreWorker::Query(int query) {
  CoreGuard lock(ctx_);
  uint64_t id = ctx_.NextRequestId();
  auto frame = gcs::QueryFrame(id, query);
  if (!frame.ok()) return frame.status();
  transport_.SendToNode(std::move(frame).value());
  return id;
}

CoreWorker::Stats CoreWorker::GetStats() {
  CoreGuard lock(ctx_);
  Stats s{};
  s.owned_refs = refs_.size();
  s.memory_store_objects = objects_.store().size();
  auto n = normal_.GetStatsLocked();
  auto a = actors_.GetStatsLocked();
  s.queued_tasks = n.queued + a.queued;
  s.leases = n.leases + a.leases;
  s.inflight_tasks = n.inflight + a.inflight;
  s.bad_decrements = refs_.bad_decrements();
  s.inbound_links = receiver_.inbound_links();
  return s;
}

// ----------------------------------------------------------------- summary --

std::string CoreWorker::MemorySummaryJson() {
  CoreGuard lock(ctx_);
  return MemorySummaryJsonLocked(ctx_, refs_, objects_, tasks_);
}

std::string MemorySummaryJsonLocked(const WorkerContext& ctx, const ReferenceCounter& refs, const ObjectManager& objects,
                                    const TaskManager& tasks) {
  const MemoryStore& store = objects.store();
  const LineageCache& lineage = tasks.lineage();
  std::string out = "{\"address\":";
  JsonEscapeTo(&out, ctx.address());
  out += ",\"pid\":" + std::to_string(::getpid()) + ",\"isDriver\":" + (ctx.is_driver() ? "true" : "false");
  out += ",\"lineageBytes\":" + std::to_string(lineage.bytes()) +
         ",\"lineageMaxBytes\":" + std::to_string(lineage.max_bytes()) +
         ",\"lineageEntries\":" + std::to_string(lineage.size()) +
         ",\"lineageEvicted\":" + std::to_string(lineage.evicted()) +
         ",\"reconstructions\":" + std::to_string(tasks.reconstructions()) + ",\"objects\":[";
  bool first = true;
  // The visitor runs inside ForEach, under the core lock like this function.
  refs.ForEach([&](const ObjectID& id, const ReferenceCounter::Ref& r) {
    ctx.AssertHeld();
    const StoredObject* o = store.Find(id);
    const char* status = !o ? "unknown" : !o->ready ? "pending" : o->is_error ? "error" : "ready";
    const char* location = !o || !o->ready ? "none" : o->in_plasma ? "plasma" : "memory";
    if (!first) out += ',';
    first = false;
    out += "{\"id\":\"" + id.Hex() + "\",\"owned\":" + (r.owned ? "true" : "false") + ",\"owner\":";
    JsonEscapeTo(&out, r.owned ? ctx.address() : r.owner_address);
    out += ",\"status\":\"" + std::string(status) + "\",\"location\":\"" + location + "\"";
    out += ",\"size\":" + std::to_string(o ? (o->size ? o->size : (o->data ? o->data->size() : 0)) : 0);
    out += ",\"local\":" + std::to_string(r.local) + ",\"submitted\":" + std::to_string(r.submitted) +
           ",\"contained\":" + std::to_string(r.contained) + ",\"borrowers\":" + std::to_string(r.BorrowerCount()) +
           ",\"contains\":" + std::to_string(r.contains.size()) + ",\"lineage\":" +
           (r.owned && !IsPutObject(id) && lineage.Has(TaskIdOf(id)) ? "true" : "false");
    // In plasma: the primary's node and the other nodes holding a copy.
    out += ",\"node\":\"" + (o && o->in_plasma ? (o->location.IsNil() ? ctx.node_id() : o->location).Hex() : "") + "\"";
    out += ",\"copies\":[";
    if (const auto* copies = o && o->in_plasma ? objects.CopiesOfLocked(id) : nullptr) {
      for (size_t i = 0; i < copies->size(); i++) out += (i ? ",\"" : "\"") + (*copies)[i].Hex() + "\"";
    }
    out += "]}";
  });
  out += "]}";
  return out;
}

}  // namespace rayts
