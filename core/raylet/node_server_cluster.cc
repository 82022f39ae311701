// NodeServer in cluster mode: the parts that talk to the cluster's GCS
// through the GcsLink (see node_server.h, gcs_link.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "core/protocol/peer_address.h"
#include "core/protocol/peer_auth.h"
#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

void NodeLog(const NodeID& node, const std::string& msg) {
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "[%s rayts node %s] %s\n", ts, node.Hex().substr(0, 8).c_str(), msg.c_str());
}

Status NodeServer::InitGcsLink() {
  RAYTS_RETURN_IF_ERROR(ListenTcp());
  view_ = std::make_unique<ClusterView>(node_id_);
  InitPulls();
  // A pulled copy leaving the store (evicted, deleted) is reported to its owner.
  store_->SetOnFreed([this](const ObjectID& id) { NoteCopyFreed(id); });
  view_->UpdateSelf(leases_->total(), leases_->available());
  GcsLink::Options lo;
  lo.address = opts_.gcs_address;
  lo.token = opts_.auth_token;
  lo.report_period_ms = opts_.gcs_report_period_ms;
  lo.reconnect_timeout_ms = opts_.gcs_reconnect_timeout_ms;
  if (const char* pause = std::getenv("RAYTS_TEST_GCS_PAUSE_FILE")) lo.pause_file = pause;
  lo.self.node_id = node_id_;
  lo.self.address = opts_.socket_path;
  lo.self.resources = opts_.resources;
  lo.self.node_ip = opts_.node_ip;
  lo.self.is_head = opts_.is_head;
  lo.self.pid = ::getpid();
  lo.self.session_dir = opts_.session_dir;
  lo.self.node_manager_address = node_manager_address_;
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) == 0) lo.self.hostname = host;
  GcsLink::Hooks hooks;
  hooks.deliver = [this](uint64_t client, flatbuffers::DetachedBuffer frame) {
    auto it = clients_.find(client);
    if (it != clients_.end()) it->second->conn->Send(std::move(frame));
  };
  hooks.available = [this] {
    std::vector<std::pair<std::string, double>> avail;
    const ResourceSet& now = leases_->available();
    for (auto& [name, total] : leases_->total().ToVector()) avail.emplace_back(name, std::max(0.0, now.Get(name)));
    return avail;
  };
  hooks.pending_demand = [this] {
    std::vector<std::pair<GcsLink::Resources, int>> out;
    for (auto& [shape, count] : leases_->QueuedDemand()) out.emplace_back(shape.ToVector(), count);
    return out;
  };
  hooks.infeasible_demand = [this] { return InfeasibleDemand(); };
  hooks.on_view = [this](const proto::ResourceViewUpdate& u) { OnView(u); };
  hooks.kill_worker_at = [this](const std::string& address) { KillWorkerAt(address); };
  hooks.on_node_died = [this](const proto::NodeDied& d) { OnNodeDied(d); };
  hooks.on_restart_actor = [this](const proto::RestartActor& r) { OnRestartActor(r); };
  hooks.fatal = [this](const Status& why) {
    MutexLock lock(&fatal_mu_);
    fatal_ = why;
  };
  link_ = std::make_unique<GcsLink>(io_, std::move(lo), std::move(hooks));
  RAYTS_RETURN_IF_ERROR(link_->Connect());
  // A daemon node serves drivers that come and go: prestart now, not at
  // the first driver (the pool forks from the io thread: PR_SET_PDEATHSIG).
  prestarted_ = true;
  if (opts_.prestart_workers > 0) asio::post(io_, [this] { pool_->Prestart(opts_.prestart_workers); });
  return Status::OK();
}

void NodeServer::OnGcsRequest(const std::shared_ptr<Client>& c, const proto::GcsRequest& req) {
  auto [frame, n] = c->conn->current_frame();
  // The caller's own job when it named one (several drivers may share a daemon node).
  link_->Forward(c->conn->id(), c->worker_id, c->job != 0 ? c->job : current_job_, frame, n, req.request_id());
}

void NodeServer::OnClientGoneFromGcs(const std::shared_ptr<Client>& c) {
  // The driver's plasma channel (the connection that asked for the job) ends the job.
  link_->ClientGone(c->conn->id(), c->worker_id, c->registered && c->control,
                    c->is_driver && !c->control ? c->job : 0);
}

// ------------------------------------------------------- the TCP listener --

Status NodeServer::ListenTcp() {
  asio::error_code ec;
  auto addr = asio::ip::make_address(opts_.node_ip, ec);
  if (ec) return Status::InvalidArgument("--node-ip-address '" + opts_.node_ip + "' is not an IP address: " + ec.message());
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(opts_.node_manager_port));
  tcp_acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
  tcp_acceptor_->open(ep.protocol(), ec);
  if (!ec) tcp_acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) tcp_acceptor_->bind(ep, ec);
  if (!ec) tcp_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("the node server cannot listen on " + TcpAddress(opts_.node_ip, opts_.node_manager_port) +
                           ": " + ec.message());
  }
  node_manager_address_ = TcpAddress(opts_.node_ip, tcp_acceptor_->local_endpoint().port());
  AcceptTcp();
  return Status::OK();
}

void NodeServer::AcceptTcp() {
  tcp_acceptor_->async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
    if (stopped_ || !tcp_acceptor_->is_open()) return;
    if (ec) {
      NodeLog(node_id_, "accept on " + node_manager_address_ + " failed: " + ec.message());
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      t->async_wait([this, t](const asio::error_code&) { if (!stopped_) AcceptTcp(); });
      return;
    }
    PeerLimits limits;
    asio::error_code rec;
    auto remote = sock.remote_endpoint(rec);
    std::string ip = rec ? "?" : remote.address().to_string();
    if (tcp_per_ip_[ip] >= limits.max_connections_per_peer) {
      NodeLog(node_id_, "refused a connection from " + ip + ": it has " + std::to_string(tcp_per_ip_[ip]) +
                        " open already (the limit per peer)");
      sock.close(rec);
      AcceptTcp();
      return;
    }
    TuneTcp(sock.native_handle());
    auto c = std::make_shared<Client>();
    c->remote = true;
    c->ip = ip;
    c->conn = std::make_shared<Connection>(std::move(sock));
    c->conn->SetMaxFrameBytes(limits.max_handshake_frame_bytes);
    c->gcs_peer = std::make_shared<ClientGcsPeer>(c->conn);
    tcp_per_ip_[ip]++;
    clients_[c->conn->id()] = c;
    std::weak_ptr<Client> weak = c;
    c->handshake_timer = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(limits.handshake_timeout_ms));
    c->handshake_timer->async_wait([this, weak, limits](const asio::error_code& tec) {
      auto c = weak.lock();
      if (tec || !c || c->authed) return;
      NodeLog(node_id_, "closed the connection from " + c->ip + ": no auth frame within " +
                        std::to_string(limits.handshake_timeout_ms) + " ms");
      c->conn->Close();
    });
    c->conn->Start([this, weak](const proto::Envelope& e) { if (auto c = weak.lock()) OnMessage(c, e); },
                   [this, weak](const Status& s) {
                     auto c = weak.lock();
                     if (!c) return;
                     if (!c->authed && s.code() == StatusCode::kInvalid) {
                       NodeLog(node_id_, "closed the connection from " + c->ip + ": " + s.message());
                     }
                     OnClose(c);
                   });
    AcceptTcp();
  });
}

bool NodeServer::OnRemoteFrame(const std::shared_ptr<Client>& c, const proto::Envelope& env) {
  if (!c->authed) {
    Status s = CheckAuthHello(env, opts_.auth_token);
    if (!s.ok()) {
      NodeLog(node_id_, "closed the connection from " + c->ip + ": " + s.message());
      c->conn->Close();
      return false;
    }
    c->authed = true;
    c->handshake_timer->cancel();
    c->conn->SetMaxFrameBytes(PeerLimits{}.max_frame_bytes);
    return false;
  }
  switch (env.body_type()) {
    case proto::Body::RequestWorkerLease:
    case proto::Body::CancelLeaseRequest:
    case proto::Body::ReturnWorkerLease:
    case proto::Body::FreeObjects:  // an owner freed objects copied here
    case proto::Body::PinObjects:   // an owner made a copy here its primary
      return true;
    case proto::Body::ObjectChunkRequest:  // another node pulls an object held here
      ServeChunk(c, *env.body_as_ObjectChunkRequest());
      return false;
    case proto::Body::NodeProcessesRequest:  // `rayts memory --address`: read-only listings
    case proto::Body::StoreObjectsRequest:
      return true;
    default:
      // Plasma, registration and GCS traffic stay on the node's own socket.
      NodeLog(node_id_, std::string("ignored a ") + proto::EnumNameBody(env.body_type()) + " frame from " + c->ip +
                        " (only lease requests, object transfer and the memory listings come over TCP)");
      return false;
  }
}

}  // namespace rayts::raylet
