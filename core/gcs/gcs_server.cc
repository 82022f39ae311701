#include "core/gcs/gcs_server.h"

#include <cstdio>
#include <ctime>
#include <future>

#include "core/protocol/peer_auth.h"

namespace rayts::gcs {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
}  // namespace

struct GcsServer::Peer {
  std::shared_ptr<Connection> conn;
  std::string ip;
  bool authed = false;
  proto::PeerRole role = proto::PeerRole::Tool;
  int pid = 0;
  std::unique_ptr<asio::steady_timer> handshake_timer;
  NodeID node_id = NodeID::Nil();       // set once it registered as a node
  std::shared_ptr<GcsPeer> direct;      // replies to its own GcsRequests
  std::unordered_map<uint64_t, std::shared_ptr<GcsPeer>> forwards;  // its local clients
  std::string Describe() const {
    const char* r = role == proto::PeerRole::Node ? "node" : role == proto::PeerRole::Driver ? "driver" : "tool";
    return std::string(authed ? r : "peer") + " " + ip + (pid ? " pid " + std::to_string(pid) : "");
  }
};

// Replies to a peer's own requests: the GcsReply frame as is.
class GcsServer::DirectPeer : public GcsPeer {
 public:
  explicit DirectPeer(std::shared_ptr<Connection> c) : conn_(std::move(c)) {}
  void SendGcsReply(flatbuffers::DetachedBuffer frame) override { conn_->Send(std::move(frame)); }

 private:
  std::shared_ptr<Connection> conn_;
};

// Replies to a node's local client: wrapped in ForwardGcsReply.
class GcsServer::ForwardPeer : public GcsPeer {
 public:
  ForwardPeer(std::shared_ptr<Connection> c, uint64_t client) : conn_(std::move(c)), client_(client) {}
  void SendGcsReply(flatbuffers::DetachedBuffer frame) override {
    Fbb fbb(frame.size() + 64);
    auto bytes = fbb.CreateVector(frame.data(), frame.size());
    conn_->Send(FinishFrame(fbb, proto::CreateForwardGcsReply(fbb, client_, bytes)));
  }

 private:
  std::shared_ptr<Connection> conn_;
  uint64_t client_;
};

GcsServer::GcsServer(GcsServerOptions opts) : opts_(std::move(opts)), health_(opts_.health) {}

GcsServer::~GcsServer() { Stop(); }

StatusOr<std::unique_ptr<GcsServer>> GcsServer::Start(GcsServerOptions opts) {
  if (opts.auth_token.empty()) return Status::InvalidArgument("the GCS needs an auth token");
  std::unique_ptr<GcsServer> s(new GcsServer(std::move(opts)));
  RAYTS_RETURN_IF_ERROR(s->Init());
  return s;
}

void GcsServer::Log(const std::string& msg) {
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "[%s rayts gcs] %s\n", ts, msg.c_str());
}

Status GcsServer::Init() {
  gcs_ = std::make_unique<GcsService>(GcsService::HostHooks{[this](const std::string& a) { KillWorkerAt(a); }});
  asio::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return Status::InvalidArgument("GCS host '" + opts_.host + "' is not an IP address: " + ec.message());
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(opts_.port));
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("the GCS cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " +
                           ec.message());
  }
  port_ = acceptor_->local_endpoint().port();
  health_timer_ = std::make_unique<asio::steady_timer>(io_);
  view_timer_ = std::make_unique<asio::steady_timer>(io_);
  Accept();
  ScheduleHealthTick();
  ScheduleViewBroadcast();
  thread_ = std::thread([this] { io_.run(); });
  return Status::OK();
}

void GcsServer::Stop() {
  if (stopped_.exchange(true)) return;
  std::promise<void> done;
  auto fut = done.get_future();
  asio::post(io_, [this, &done] {
    asio::error_code ec;
    acceptor_->close(ec);
    health_timer_->cancel();
    view_timer_->cancel();
    auto peers = peers_;
    for (auto& [id, p] : peers) p->conn->Close();
    done.set_value();
  });
  if (thread_.joinable()) {
    fut.wait_for(std::chrono::seconds(5));
    io_.stop();
    thread_.join();
  }
  peers_.clear();
  node_peers_.clear();
}

void GcsServer::Accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
    if (stopped_ || !acceptor_->is_open()) return;
    if (ec) {
      // EMFILE and the like: back off a little and go on listening.
      Log("accept failed: " + ec.message());
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      t->async_wait([this, t](const asio::error_code&) { if (!stopped_) Accept(); });
      return;
    }
    asio::error_code rec;
    auto remote = sock.remote_endpoint(rec);
    std::string ip = rec ? "?" : remote.address().to_string();
    if (per_ip_[ip] >= opts_.max_connections_per_peer) {
      refused_++;
      Log("refused a connection from " + ip + ": it has " + std::to_string(per_ip_[ip]) +
          " open already (the limit per peer)");
      sock.close(rec);
      Accept();
      return;
    }
    TuneTcp(sock.native_handle());
    auto p = std::make_shared<Peer>();
    p->ip = ip;
    p->conn = std::make_shared<Connection>(std::move(sock));
    p->conn->SetMaxFrameBytes(opts_.max_handshake_frame_bytes);
    p->direct = std::make_shared<DirectPeer>(p->conn);
    per_ip_[ip]++;
    peers_[p->conn->id()] = p;
    p->handshake_timer = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(opts_.handshake_timeout_ms));
    std::weak_ptr<Peer> weak = p;
    p->handshake_timer->async_wait([this, weak](const asio::error_code& tec) {
      auto p = weak.lock();
      if (tec || !p || p->authed) return;
      Refuse(p, "no auth frame within " + std::to_string(opts_.handshake_timeout_ms) + " ms");
    });
    p->conn->Start([this, weak](const proto::Envelope& e) { if (auto p = weak.lock()) OnMessage(p, e); },
                   [this, weak](const Status& s) { if (auto p = weak.lock()) OnClose(p, s); });
    Accept();
  });
}

void GcsServer::Refuse(const std::shared_ptr<Peer>& p, const std::string& why, bool counted) {
  if (!counted) refused_++;
  Log("closed the connection from " + p->Describe() + ": " + why);
  p->conn->Close();
}

void GcsServer::OnClose(const std::shared_ptr<Peer>& p, const Status& why) {
  uint64_t id = p->conn->id();
  if (!peers_.erase(id)) return;
  if (--per_ip_[p->ip] <= 0) per_ip_.erase(p->ip);
  if (p->handshake_timer) p->handshake_timer->cancel();
  // Garbage ends a connection in the decoder (Invalid): say so.
  if (!p->authed && why.code() == StatusCode::kInvalid) {
    refused_++;
    Log("closed the connection from " + p->Describe() + ": " + why.message());
  }
  if (!p->node_id.IsNil()) {
    auto it = node_peers_.find(p->node_id);
    if (it != node_peers_.end() && it->second == p) {
      node_peers_.erase(it);
      health_.SetConnected(p->node_id, false);
      const NodeInfo* n = gcs_->tables().node(p->node_id);
      if (n && n->alive) Log("lost the connection to node " + p->node_id.Hex() + " (" + why.message() + ")");
    }
  }
  p->forwards.clear();  // their deferred answers are dropped
}

void GcsServer::OnAuth(const std::shared_ptr<Peer>& p, const proto::Envelope& env) {
  Status s = CheckAuthHello(env, opts_.auth_token);
  if (env.body_type() == proto::Body::AuthHello) {
    p->role = env.body_as_AuthHello()->role();
    p->pid = env.body_as_AuthHello()->pid();
  }
  if (s.code() == StatusCode::kUnauthenticated) {
    refused_++;  // before the reply: whoever reads it sees the count
    bool none = s.message() == "no auth token";
    Fbb fbb(256);
    auto msg = fbb.CreateString(none ? "no auth token was presented" : "the auth token was refused");
    auto cid = fbb.CreateString("");
    p->conn->Send(FinishFrame(fbb, proto::CreateAuthReply(fbb, static_cast<int>(StatusCode::kUnauthenticated), msg, cid)));
    Refuse(p, s.message(), /*counted=*/true);
    return;
  }
  if (!s.ok()) {
    Refuse(p, s.message());
    return;
  }
  p->authed = true;
  p->handshake_timer->cancel();
  p->conn->SetMaxFrameBytes(opts_.max_frame_bytes);
  Fbb fbb(128);
  auto cid = fbb.CreateString(opts_.cluster_id);
  p->conn->Send(FinishFrame(fbb, proto::CreateAuthReply(fbb, 0, 0, cid)));
}

void GcsServer::OnMessage(const std::shared_ptr<Peer>& p, const proto::Envelope& env) {
  if (!p->authed) return OnAuth(p, env);
  auto now = NodeHealth::Clock::now();
  switch (env.body_type()) {
    case proto::Body::GcsRequest: {
      const proto::GcsRequest& req = *env.body_as_GcsRequest();
      gcs_->HandleRequest(p->direct, GcsCaller{}, req);
      if (req.body_type() == proto::GcsRequestBody::RegisterNodeRequest) OnNodeRegistered(p, req);
      return;
    }
    case proto::Body::ForwardGcsRequest: {
      auto* f = env.body_as_ForwardGcsRequest();
      const proto::Envelope* inner = nullptr;
      if (!f->frame() || !VerifyEnvelope(f->frame()->data(), f->frame()->size(), &inner).ok() ||
          inner->body_type() != proto::Body::GcsRequest) {
        Log("dropped a malformed forwarded request from " + p->Describe());
        return;
      }
      WorkerID worker = f->worker_id() && f->worker_id()->size() == WorkerID::kSize
                            ? WorkerID::FromBytes(f->worker_id()->data()) : WorkerID::Nil();
      auto& fp = p->forwards[f->client()];
      if (!fp) fp = std::make_shared<ForwardPeer>(p->conn, f->client());
      std::shared_ptr<GcsPeer> keep = fp;  // HandleRequest may answer later (WaitActor)
      gcs_->HandleRequest(keep, GcsCaller{worker, f->job_id(), p->node_id}, *inner->body_as_GcsRequest());
      return;
    }
    case proto::Body::NodeResourceReport: {
      auto* r = env.body_as_NodeResourceReport();
      if (p->node_id.IsNil()) return;
      std::vector<std::pair<std::string, double>> avail;
      if (r->available())
        for (auto* e : *r->available()) avail.emplace_back(Str(e->name()), e->amount());
      const NodeInfo* before = gcs_->tables().node(p->node_id);
      uint64_t held = before ? before->report_version : 0;
      (void)gcs_->tables().ReportResources(p->node_id, std::move(avail), r->version());  // registered: known
      if (r->version() != held) view_dirty_.insert(p->node_id);  // broadcast to the nodes at the next period
      auto demand = [](const flatbuffers::Vector<flatbuffers::Offset<proto::ResourceDemand>>* v) {
        GcsTables::Demand out;
        if (v) {
          for (auto* d : *v) {
            std::vector<std::pair<std::string, double>> shape;
            if (d->shape())
              for (auto* e : *d->shape()) shape.emplace_back(Str(e->name()), e->amount());
            out.emplace_back(std::move(shape), d->count());
          }
        }
        return out;
      };
      gcs_->tables().SetDemand(p->node_id, demand(r->pending_demand()), demand(r->infeasible_demand()));
      health_.Heartbeat(p->node_id, now);
      return;
    }
    case proto::Body::HealthCheckReply:
      if (!p->node_id.IsNil()) health_.Heartbeat(p->node_id, now);
      return;
    case proto::Body::ClientDisconnected: {
      auto* c = env.body_as_ClientDisconnected();
      if (c->owner() && c->worker_id() && c->worker_id()->size() == WorkerID::kSize) {
        gcs_->OnOwnerDisconnected(WorkerID::FromBytes(c->worker_id()->data()));
      }
      if (c->driver_job() != 0) (void)gcs_->tables().MarkJobFinished(c->driver_job());  // unknown: nothing to mark
      p->forwards.erase(c->client());
      return;
    }
    case proto::Body::RestartActorReply:
      if (!p->node_id.IsNil()) OnRestartActorReply(p->node_id, *env.body_as_RestartActorReply());
      return;
    case proto::Body::UnregisterNode: {
      if (p->node_id.IsNil()) return;
      std::string why = Str(env.body_as_UnregisterNode()->reason());
      MarkDead(p->node_id, why.empty() ? "stopped" : why);
      return;
    }
    default:
      Log(std::string("ignored a ") + proto::EnumNameBody(env.body_type()) + " frame from " + p->Describe());
      return;
  }
}

void GcsServer::OnNodeRegistered(const std::shared_ptr<Peer>& p, const proto::GcsRequest& req) {
  auto* r = req.body_as_RegisterNodeRequest();
  if (!r->node_id() || r->node_id()->size() != NodeID::kSize) return;
  NodeID id = NodeID::FromBytes(r->node_id()->data());
  const NodeInfo* n = gcs_->tables().node(id);
  if (!n || !n->alive) return;  // refused (marked dead before)
  p->node_id = id;
  p->role = proto::PeerRole::Node;
  node_peers_[id] = p;  // a reconnect replaces the old connection
  health_.AddNode(id, NodeHealth::Clock::now());
  // The whole view to the newcomer; the others hear of it at the next broadcast.
  p->conn->Send(ViewFrame(/*full=*/true));
  view_dirty_.insert(id);
  auto first = first_registered_ms_.try_emplace(id, n->start_time_ms);
  bool again = !first.second;
  Log("node " + id.Hex() + (again ? " registered again from " : " registered from ") + p->ip + " (" +
      Str(r->node_ip()) + ", pid " + std::to_string(r->pid()) + (r->is_head() ? ", head" : "") + ")");
  // Away from the GCS, it may have missed NodeDied: the deaths since it
  // joined go to it now, behind the full view (it skips the ones it handled).
  if (again) ReplayNodeDeaths(p, id, first.first->second);
}

void GcsServer::ReplayNodeDeaths(const std::shared_ptr<Peer>& p, const NodeID& self, int64_t since_ms) {
  int sent = 0;
  for (const NodeInfo& n : gcs_->tables().nodes()) {
    if (n.alive || n.node_id == self || n.end_time_ms < since_ms) continue;
    auto frame = NodeDiedFrame(n.node_id);
    if (!frame) continue;
    p->conn->Send(std::move(*frame));
    sent++;
  }
  if (sent > 0) Log("told node " + self.Hex() + " of " + std::to_string(sent) + " node death(s) since it joined");
}

void GcsServer::MarkDead(NodeID id, const std::string& reason) {
  const NodeInfo* before = gcs_->tables().node(id);
  bool was_alive = before && before->alive;
  Status s = gcs_->tables().MarkNodeDead(id, reason);
  health_.RemoveNode(id);
  first_registered_ms_.erase(id);  // it cannot register again
  view_dirty_.insert(id);
  if (s.ok()) Log("node " + id.Hex() + " is dead: " + reason);
  std::vector<ActorID> restart;
  if (s.ok()) restart = gcs_->OnNodeDead(id, reason);  // its actors (ActorTable::OnNodeDead)
  auto it = node_peers_.find(id);
  if (it != node_peers_.end()) {
    auto p = it->second;
    node_peers_.erase(it);
    p->node_id = NodeID::Nil();
    p->conn->Close();
  }
  // Every other node hears of it now, not at the next view broadcast.
  if (was_alive) BroadcastNodeDied(id);
  // After NodeDied (on the same connections): the node asked to restart an
  // actor no longer sees the dead one.
  OnRestartNodeDead(id);
  for (const ActorID& actor : restart) RestartActor(actor);
}

std::optional<flatbuffers::DetachedBuffer> GcsServer::NodeDiedFrame(const NodeID& id) {
  const NodeInfo* n = gcs_->tables().node(id);
  if (!n) return std::nullopt;
  Fbb fbb(512);
  auto nid = fbb.CreateVector(n->node_id.data(), NodeID::kSize);
  auto socket = fbb.CreateString(n->address);
  auto manager = fbb.CreateString(n->node_manager_address);
  auto reason = fbb.CreateString(n->death_reason);
  return FinishFrame(fbb, proto::CreateNodeDied(fbb, nid, socket, manager, reason));
}

void GcsServer::BroadcastNodeDied(const NodeID& id) {
  if (node_peers_.empty()) return;
  auto frame = NodeDiedFrame(id);
  if (!frame) return;
  for (auto& [node, p] : node_peers_) p->conn->Send(CopyFrame(frame->data(), frame->size()));
}

void GcsServer::ScheduleHealthTick() {
  int tick = std::clamp(opts_.health.period_ms / 4, 10, 250);
  health_timer_->expires_after(std::chrono::milliseconds(tick));
  health_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    auto r = health_.Tick(NodeHealth::Clock::now());
    for (const NodeID& id : r.probe) {
      auto it = node_peers_.find(id);
      if (it == node_peers_.end()) continue;
      Fbb fbb(64);
      it->second->conn->Send(FinishFrame(fbb, proto::CreateHealthCheck(fbb, ++health_seq_)));
    }
    const HealthCheckConfig& c = health_.config();
    for (const NodeID& id : r.dead) {
      MarkDead(id, "failed " + std::to_string(c.failure_threshold) + " health checks in a row (every " +
                       std::to_string(c.period_ms) + " ms, timeout " + std::to_string(c.timeout_ms) + " ms)");
    }
    ScheduleHealthTick();
  });
}

flatbuffers::DetachedBuffer GcsServer::ViewFrame(bool full) {
  Fbb fbb(1024);
  std::vector<flatbuffers::Offset<proto::NodeResourceView>> views;
  auto resources = [&fbb](const std::vector<std::pair<std::string, double>>& r) {
    std::vector<flatbuffers::Offset<proto::ResourceEntry>> v;
    for (auto& [name, amount] : r) v.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
    return fbb.CreateVector(v);
  };
  for (const NodeInfo& n : gcs_->tables().nodes()) {
    if (!full && !view_dirty_.count(n.node_id)) continue;
    if (full && !n.alive) continue;
    auto id = fbb.CreateVector(n.node_id.data(), NodeID::kSize);
    auto addr = fbb.CreateString(n.node_manager_address);
    auto total = resources(n.resources);
    // Until its first report a node is as free as its totals.
    auto avail = resources(n.report_version == 0 && n.available.empty() ? n.resources : n.available);
    views.push_back(proto::CreateNodeResourceView(fbb, id, n.report_version, n.alive, addr, total, avail));
  }
  auto v = fbb.CreateVector(views);
  return FinishFrame(fbb, proto::CreateResourceViewUpdate(fbb, v, full));
}

void GcsServer::ScheduleViewBroadcast() {
  view_timer_->expires_after(std::chrono::milliseconds(std::max(1, opts_.view_broadcast_period_ms)));
  view_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    if (!view_dirty_.empty() && !node_peers_.empty()) {
      // One frame for every node: the views that changed this period (Ray
      // batches its resource broadcast the same way).
      auto frame = ViewFrame(/*full=*/false);
      for (auto& [id, p] : node_peers_) p->conn->Send(CopyFrame(frame.data(), frame.size()));
    }
    view_dirty_.clear();
    ScheduleViewBroadcast();
  });
}

void GcsServer::SendToNode(const NodeID& node, flatbuffers::DetachedBuffer frame) {
  auto it = node_peers_.find(node);
  if (it != node_peers_.end()) it->second->conn->Send(std::move(frame));
}

void GcsServer::KillWorkerAt(const std::string& address) {
  for (auto& [id, p] : node_peers_) {
    Fbb fbb(64 + address.size());
    auto a = fbb.CreateString(address);
    p->conn->Send(FinishFrame(fbb, proto::CreateKillWorkerAt(fbb, a)));
  }
}

}  // namespace rayts::gcs
