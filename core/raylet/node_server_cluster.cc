// NodeServer in cluster mode: the parts that talk to the cluster's GCS
// through the GcsLink (see node_server.h, gcs_link.h).
#include <unistd.h>

#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

Status NodeServer::InitGcsLink() {
  GcsLink::Options lo;
  lo.address = opts_.gcs_address;
  lo.token = opts_.auth_token;
  lo.report_period_ms = opts_.gcs_report_period_ms;
  lo.reconnect_timeout_ms = opts_.gcs_reconnect_timeout_ms;
  lo.self.node_id = node_id_;
  lo.self.address = opts_.socket_path;
  lo.self.resources = opts_.resources;
  lo.self.node_ip = opts_.node_ip;
  lo.self.is_head = opts_.is_head;
  lo.self.pid = ::getpid();
  lo.self.session_dir = opts_.session_dir;
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
  hooks.kill_worker_at = [this](const std::string& address) { KillWorkerAt(address); };
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

}  // namespace rayts::raylet
