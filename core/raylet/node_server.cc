#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>

#include "core/gcs/gcs_client.h"
#include "core/protocol/blocking_channel.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
template <size_t N>
flatbuffers::Offset<flatbuffers::Vector<uint8_t>> IdBytes(Fbb& fbb, const BaseId<N>& id) {
  return fbb.CreateVector(id.data(), N);
}
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
}  // namespace

NodeServer::NodeServer(NodeServerOptions opts) : opts_(std::move(opts)) {}

NodeServer::~NodeServer() { Stop(); }

StatusOr<std::unique_ptr<NodeServer>> NodeServer::Start(NodeServerOptions opts) {
  std::unique_ptr<NodeServer> ns(new NodeServer(std::move(opts)));
  RAYTS_RETURN_IF_ERROR(ns->Init());
  return ns;
}

Status NodeServer::Init() {
  auto total = ResourceSet::FromMap(opts_.resources);
  if (!total.ok()) return total.status();
  auto region = plasma::ShmRegion::Create(opts_.store_bytes);
  if (!region.ok()) return region.status();
  region_ = std::move(region).value();
  region_->StartPrefault();
  store_ = std::make_unique<plasma::PlasmaStore>(region_->size(), region_->data());
  if (opts_.spill_max_bytes != 0) {
    std::string parent = opts_.spill_dir;
    if (parent.empty()) parent = opts_.session_dir;
    if (parent.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      parent = std::string(tmp && *tmp ? tmp : "/tmp") + "/rayts";
    }
    auto spill = plasma::SpillStore::Create(parent, opts_.spill_max_bytes);
    if (!spill.ok()) return spill.status();
    spill_ = std::move(spill).value();
    store_->SetSpillStore(spill_.get());
  }

  ProcessWorkerLauncher::Config lc;
  lc.argv = opts_.worker_argv;
  lc.env = opts_.worker_env;
  lc.env.push_back("RAYTS_NODE_SOCKET=" + opts_.socket_path);
  lc.env.push_back("RAYTS_SESSION_DIR=" + opts_.session_dir);
  // Cluster mode: workers listen on TCP at the node's IP too (their token
  // comes in the RegisterReply, over the node's owner-only socket).
  if (!opts_.gcs_address.empty()) lc.env.push_back("RAYTS_NODE_IP=" + opts_.node_ip);
  lc.working_dir = opts_.working_dir;
  if (!opts_.session_dir.empty()) {
    logs_ = std::make_unique<WorkerLogs>(
        io_, WorkerLogs::Options{opts_.session_dir + "/logs", opts_.log_to_driver, opts_.worker_log_max_bytes, 1, 2});
    // Called by Launch, on the io thread.
    lc.on_output = [this](const WorkerID& id, int pid, int out_fd, int err_fd) { logs_->Add(id, pid, out_fd, err_fd); };
  }
  launcher_ = std::make_unique<ProcessWorkerLauncher>(lc);
  pool_ = std::make_unique<WorkerPool>(launcher_.get(), std::max(1, opts_.max_workers));
  leases_ = std::make_unique<LeaseManager>(std::move(total).value(), pool_.get());

  reported_available_ = leases_->total();
  if (opts_.gcs_address.empty()) {
    gcs_ = std::make_unique<gcs::GcsService>(
        gcs::GcsService::HostHooks{[this](const std::string& address) { KillWorkerAt(address); }});
    gcs::NodeInfo node;
    node.node_id = node_id_;
    node.address = opts_.socket_path;
    node.resources = opts_.resources;
    gcs_->tables().RegisterNode(node);
  }

  ::unlink(opts_.socket_path.c_str());
  acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  asio::error_code ec;
  acceptor_->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor_->bind(asio::local::stream_protocol::endpoint(opts_.socket_path), ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("node server cannot listen on " + opts_.socket_path + ": " + ec.message());
  ::chmod(opts_.socket_path.c_str(), 0700);  // owner only (its directory is 0700 too)
  reap_timer_ = std::make_unique<asio::steady_timer>(io_);
  accept_timer_ = std::make_unique<asio::steady_timer>(io_);
  plasma_ = std::make_unique<PlasmaService>(
      io_, store_.get(),
      PlasmaService::Hooks{[this](uint64_t cid) { return ClientGone(cid); }, [this] { BroadcastGc(); },
                           [this](uint64_t cid) {
                             auto it = clients_.find(cid);
                             return it == clients_.end() ? WorkerID::Nil() : it->second->worker_id;
                           },
                           [this](const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority prio,
                                  std::chrono::milliseconds bound, std::function<void(const Status&)> done) {
                             StartPull(id, std::move(sources), size, prio, bound, std::move(done));
                           }});
  memory_ = std::make_unique<MemoryKillDriver>(
      io_,
      MemoryKillDriver::Options{opts_.memory_usage_threshold, opts_.memory_monitor_period_ms,
                                std::chrono::milliseconds(1000)},
      MemoryKillHooks());
  if (!opts_.gcs_address.empty()) RAYTS_RETURN_IF_ERROR(InitGcsLink());
  Accept();
  ScheduleReap();
  memory_->Start();
  thread_ = std::thread([this] { io_.run(); });
  return Status::OK();
}

void NodeServer::Stop() {
  if (stopped_.exchange(true)) return;
  std::promise<void> done;
  auto fut = done.get_future();
  asio::post(io_, [this, &done] {
    asio::error_code ec;
    acceptor_->close(ec);
    if (tcp_acceptor_) tcp_acceptor_->close(ec);
    reap_timer_->cancel();
    accept_timer_->cancel();
    memory_->Stop();
    StopPulls();
    if (link_) {
      link_->Unregister("stopped");
      link_->Stop();
    }
    pool_->KillAll();
    // Reap what was killed so a long-lived host (init/shutdown in a loop)
    // collects no zombies. SIGKILLed children exit at once; bounded anyway.
    std::vector<std::pair<int, int>> exited;
    for (int i = 0; i < 2000 && launcher_->num_running() > 0; i++) {
      (void)launcher_->Reap(&exited);  // errors: nothing more to reap now
      if (launcher_->num_running() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // What the workers printed before they went: read to the pipes' ends.
    if (logs_) logs_->DrainAll();
    auto clients = clients_;  // close handlers erase from clients_
    for (auto& [id, c] : clients) c->conn->Close();
    clients_.clear();
    leased_deaths_.clear();
    done.set_value();
  });
  if (thread_.joinable()) {
    fut.wait_for(std::chrono::seconds(5));
    io_.stop();
    thread_.join();
  }
  // The io thread is gone: nothing reads the spill files any more.
  if (store_) store_->SetSpillStore(nullptr);
  spill_.reset();  // removes the spill directory
  ::unlink(opts_.socket_path.c_str());
}

void NodeServer::ScheduleReap() {
  reap_timer_->expires_after(std::chrono::milliseconds(100));
  reap_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    std::vector<std::pair<int, int>> exited;
    (void)launcher_->Reap(&exited);  // errors: retried on the next tick
    for (auto& [pid, code] : exited) {
      bool registered = false;
      for (auto& [wid, p] : worker_pid_) {
        if (p == pid) {
          WorkerGone(wid);
          registered = true;
          break;
        }
      }
      ReportLeasedExit(pid, code);
      // Died while starting (before it registered): a start failure. The
      // pool replaces it for the lease requests waiting on it, with backoff,
      // and fails them with this cause when starts keep failing. SIGKILL
      // comes from outside (a user, the kernel's OOM killer, a chaos test),
      // not from a worker that cannot start: replaced at once, as before.
      if (!registered) {
        if (auto wid = pool_->WorkerOfPid(pid)) {
          if (code == -SIGKILL) pool_->OnWorkerDied(*wid);
          else pool_->OnWorkerStartFailed(*wid, StartFailureCause(pid, code));
        }
      }
    }
    pool_->Tick();  // starts replacements whose backoff has passed
    // The pool shrinks back to the prestarted count after a burst: idle
    // workers are registered, so WorkerGone forgets them and the pool kills them.
    if (opts_.idle_worker_timeout_ms >= 0) {
      for (const WorkerID& idle : pool_->IdleWorkersToEnd(std::chrono::steady_clock::now(), opts_.prestart_workers,
                                                          std::chrono::milliseconds(opts_.idle_worker_timeout_ms))) {
        WorkerGone(idle);
      }
    }
    ReportResourcesIfChanged();
    ScheduleReap();
  });
}

void NodeServer::Accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, UnixSocket sock) {
    if (stopped_ || ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (ec) {
      // Out of fds (EMFILE, ENFILE), a connection reset before it was
      // accepted (ECONNABORTED) and the like: the listener must live on.
      // Back off (10 ms doubling to 1 s) so a full fd table does not spin.
      accept_backoff_ms_ = std::min(1000, std::max(10, accept_backoff_ms_ * 2));
      if (accept_errors_++ % 100 == 0) {
        std::fprintf(stderr, "rayts node server: accept on %s failed: %s (retrying in %d ms; %llu errors so far)\n",
                     opts_.socket_path.c_str(), ec.message().c_str(), accept_backoff_ms_,
                     static_cast<unsigned long long>(accept_errors_));
      }
      accept_timer_->expires_after(std::chrono::milliseconds(accept_backoff_ms_));
      accept_timer_->async_wait([this](const asio::error_code& tec) {
        if (!tec && !stopped_) Accept();
      });
      return;
    }
    accept_backoff_ms_ = 0;
    auto c = std::make_shared<Client>();
    c->conn = std::make_shared<Connection>(std::move(sock));
    c->gcs_peer = std::make_shared<ClientGcsPeer>(c->conn);
    clients_[c->conn->id()] = c;
    std::weak_ptr<Client> weak = c;
    c->conn->Start([this, weak](const proto::Envelope& e) { if (auto c = weak.lock()) OnMessage(c, e); },
                   [this, weak](const Status&) { if (auto c = weak.lock()) OnClose(c); });
    Accept();
  });
}

void NodeServer::WorkerGone(WorkerID id) {  // by value: callers pass the key of worker_pid_, erased here
  auto pit = worker_pid_.find(id);
  if (pit == worker_pid_.end()) return;
  const int pid = pit->second;
  worker_pid_.erase(pit);
  worker_address_.erase(id);
  if (auto lease = leases_->OnWorkerDied(id)) {
    // Died holding a lease: its owner hears how once the process is reaped.
    auto rec = TakeLease(*lease);
    if (rec && rec->owner != 0) leased_deaths_[pid] = LeasedDeath{id, rec->owner, *lease};
  }
  pool_->OnWorkerDied(id);
}

bool NodeServer::ClientGone(uint64_t cid) {
  auto it = clients_.find(cid);
  if (it == clients_.end()) return true;
  // Its close may not be processed yet: ask the kernel whether the peer hung up.
  pollfd p{it->second->conn->socket().native_handle(), POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void NodeServer::OnClose(const std::shared_ptr<Client>& c) {
  uint64_t cid = c->conn->id();
  auto known = clients_.find(cid);
  if (known == clients_.end() || known->second != c) return;  // handled already (OnNodeDied)
  if (c->remote) {
    if (c->handshake_timer) c->handshake_timer->cancel();
    if (--tcp_per_ip_[c->ip] <= 0) tcp_per_ip_.erase(c->ip);
  }
  store_->DisconnectClient(cid);
  // Owner went away: its queued requests and its leases go back.
  auto requests = c->requests;  // the cancel callbacks erase from c->requests
  for (auto& [req, key] : requests) {
    leases_->CancelRequest(key);
    request_owner_.erase(key);
  }
  std::vector<uint64_t> owned;
  for (auto& [lease, rec] : granted_) {
    if (rec.owner != cid) continue;
    if (rec.detached) rec.owner = 0;  // a detached actor lives on (the node holds its lease)
    else owned.push_back(lease);
  }
  for (auto lease : owned) {
    auto rec = TakeLease(lease);
    // An actor's worker ends with its owner (its instance must not serve
    // anyone else), and so does a task worker of an owner on another node
    // (its connection broke: the owner or its node died, and the owner
    // retries elsewhere what ran there); a local owner's task worker goes
    // back to the pool.
    bool end = rec->actor || c->remote;
    (void)leases_->ReturnLease(lease, end);  // the record proves it is granted
    if (end && !rec->worker.IsNil()) WorkerGone(rec->worker);
  }
  if (link_) OnClientGoneFromGcs(c);
  if (c->registered && c->control) {
    if (gcs_) gcs_->OnOwnerDisconnected(c->worker_id);
    plasma_->OwnerGone(c->worker_id);  // nothing will delete the copies it owned
  }
  if (c->registered && !c->is_driver) WorkerGone(c->worker_id);
  clients_.erase(cid);
  ReportResourcesIfChanged();
}

std::optional<NodeServer::LeaseRecord> NodeServer::TakeLease(uint64_t lease_id) {
  auto it = granted_.find(lease_id);
  if (it == granted_.end()) return std::nullopt;
  LeaseRecord rec = it->second;
  granted_.erase(it);
  return rec;
}

void NodeServer::KillWorkerAt(const std::string& address) {
  for (auto& [wid, addr] : worker_address_) {
    if (addr != address) continue;
    WorkerID victim = wid;
    for (auto& [lease, rec] : granted_) {
      if (rec.worker != victim) continue;
      uint64_t id = lease;
      TakeLease(id);
      (void)leases_->ReturnLease(id, /*worker_exiting=*/true);  // the record proves it is granted
      break;
    }
    WorkerGone(victim);
    return;
  }
}

void NodeServer::ReportResourcesIfChanged() {
  if (!gcs_) return;  // cluster mode: the GcsLink reports on its timer
  const ResourceSet& now = leases_->available();
  if (now == reported_available_) return;
  reported_available_ = now;
  std::vector<std::pair<std::string, double>> avail;
  for (auto& [name, total] : leases_->total().ToVector()) avail.emplace_back(name, std::max(0.0, now.Get(name)));
  (void)gcs_->tables().ReportResources(node_id_, std::move(avail));
}

void NodeServer::OnMessage(const std::shared_ptr<Client>& c, const proto::Envelope& env) {
  if (c->remote && !OnRemoteFrame(c, env)) return;
  if (plasma_->Handle(c->conn->id(), c->conn, env)) {
    // Commit memory ahead of what the store hands out (a no-op unless it grew).
    region_->AdvanceHighWater(store_->high_water_bytes());
    ReportResourcesIfChanged();
    return;
  }
  switch (env.body_type()) {
    case proto::Body::RegisterClient:
      HandleRegister(c, env.body_as_RegisterClient());
      break;
    case proto::Body::FreeObjects:
      HandleFreeObjects(c, *env.body_as_FreeObjects());
      break;
    case proto::Body::FetchObject:
      if (!c->remote) HandleFetch(c, *env.body_as_FetchObject());
      break;
    case proto::Body::ObjectOwner:  // a reader may pull this object: report the copy to its owner
      if (!c->remote && pulls_) OnObjectOwner(*env.body_as_ObjectOwner());
      break;
    case proto::Body::PinObjects:
      HandlePinObjects(c, *env.body_as_PinObjects());
      break;
    case proto::Body::RequestWorkerLease:
      HandleLease(c, env.body_as_RequestWorkerLease());
      break;
    case proto::Body::CancelLeaseRequest: {
      auto it = c->requests.find(env.body_as_CancelLeaseRequest()->request_id());
      if (it != c->requests.end()) leases_->CancelRequest(it->second);  // callback replies Cancelled
      break;
    }
    case proto::Body::ReturnWorkerLease: {
      auto* r = env.body_as_ReturnWorkerLease();
      auto rec = TakeLease(r->lease_id());
      WorkerID worker = rec ? rec->worker : WorkerID::Nil();
      (void)leases_->ReturnLease(r->lease_id(), r->worker_exiting());
      // An exiting worker (a killed actor) does not go back to the pool: end it.
      if (r->worker_exiting() && !worker.IsNil()) WorkerGone(worker);
      break;
    }
    case proto::Body::NotifyBlocked:
      if (c->registered) leases_->SetBlocked(c->worker_id, env.body_as_NotifyBlocked()->blocked());
      break;
    case proto::Body::GcsRequest:
      if (link_) OnGcsRequest(c, *env.body_as_GcsRequest());
      else gcs_->HandleRequest(c->gcs_peer, gcs::GcsCaller{c->worker_id, current_job_, NodeID::Nil()}, *env.body_as_GcsRequest());
      break;
    case proto::Body::NodeStatsRequest:
      c->conn->Send(BuildNodeStatsReply(env.body_as_NodeStatsRequest()->request_id(), StatsSources()));
      break;
    case proto::Body::StoreObjectsRequest:
      c->conn->Send(BuildStoreObjectsReply(env.body_as_StoreObjectsRequest()->request_id(), StatsSources()));
      break;
    case proto::Body::NodeProcessesRequest:
      c->conn->Send(ProcessesReply(env.body_as_NodeProcessesRequest()->request_id()));
      break;
    default:
      break;
  }
  ReportResourcesIfChanged();
}

void NodeServer::HandleRegister(const std::shared_ptr<Client>& c, const proto::RegisterClient* r) {
  WorkerID wid = r->worker_id() && r->worker_id()->size() == WorkerID::kSize ? WorkerID::FromBytes(r->worker_id()->data())
                                                                             : WorkerID::Nil();
  const int pid = PeerPid(*c, r->pid());
  // A refused registration changes nothing (node_server_workers.cc).
  if (Status refused = CheckRegistration(*c, *r, wid, pid); !refused.ok()) {
    RefuseRegistration(c, refused);
    return;
  }
  c->worker_id = wid;
  c->is_driver = r->is_driver();
  c->control = r->control();
  c->pid = pid;
  c->listen_path = Str(r->listen_path());
  c->registered = true;
  Status s;
  JobID job = r->job_id();
  c->job = job;  // a driver's control connection names its job
  if (!c->control) {
    if (!c->is_driver) {
      worker_address_[c->worker_id] = Str(r->listen_path());  // before the pool may grant it
      worker_pid_[c->worker_id] = c->pid;
      s = pool_->OnWorkerRegistered(c->worker_id, c->pid);
      if (!s.ok()) {  // not launched here as this pid, or registered already
        worker_address_.erase(c->worker_id);
        worker_pid_.erase(c->worker_id);
        c->registered = false;
        RefuseRegistration(c, s);
        return;
      }
    } else if (job == 0 && link_) {
      // Cluster mode: the job id comes from the GCS; answer once it has.
      std::weak_ptr<Client> weak = c;
      link_->AddJob(c->pid, [this, weak](StatusOr<JobID> j) {
        auto c = weak.lock();
        if (!c || c->conn->closed()) return;
        if (j.ok()) current_job_ = c->job = *j;
        SendRegisterReply(c, j.ok() ? Status::OK() : j.status(), j.ok() ? *j : 0);
      });
      return;
    } else if (job == 0) {
      job = gcs_->tables().AddJob(c->pid, "");
      current_job_ = job;
    }
    if (c->is_driver && !prestarted_) {
      // Prestart once the first driver is registered: spawning first would
      // hold up the driver's blocking registration (and so its ray.init).
      // The pool spawns from this io thread: PR_SET_PDEATHSIG is tied to it.
      prestarted_ = true;
      if (opts_.prestart_workers > 0) asio::post(io_, [this] { pool_->Prestart(opts_.prestart_workers); });
    }
  }
  // Workers of an embedded node serve its driver's job.
  if (!c->is_driver && job == 0) job = current_job_;
  SendRegisterReply(c, s, job);
}

void NodeServer::SendRegisterReply(const std::shared_ptr<Client>& c, const Status& s, JobID job) {
  Fbb fbb(256);
  auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
  auto nid = IdBytes(fbb, node_id_);
  auto sd = fbb.CreateString(opts_.session_dir);
  auto token = link_ ? fbb.CreateString(opts_.auth_token) : 0;  // cluster mode: for the client's TCP connections
  auto reply = proto::CreateRegisterReply(fbb, static_cast<int>(s.code()), msg, nid, region_->size(), sd, job, token);
  auto frame = FinishFrame(fbb, reply);
  if (!c->control) {
    // Nothing else has been written on this connection yet: send inline with the fd.
    Status ws = SendFrameWithFd(c->conn->socket().native_handle(), frame, region_->fd());
    if (!ws.ok()) c->conn->Close();
  }
}

void NodeServer::BroadcastGc() {
  auto now = std::chrono::steady_clock::now();
  if (now - last_gc_broadcast_ < std::chrono::milliseconds(100)) return;
  last_gc_broadcast_ = now;
  for (auto& [id, c] : clients_) {
    if (!c->control) continue;
    Fbb fbb(32);
    proto::TriggerGcBuilder b(fbb);
    c->conn->Send(FinishFrame(fbb, b.Finish()));
  }
}

NodeStatsSources NodeServer::StatsSources() const {
  return NodeStatsSources{store_.get(),    region_.get(),    spill_.get(),
                          leases_.get(),    pool_.get(),      clients_.size(),
                          memory_->kills(), opts_.memory_usage_threshold, view_ ? view_->nodes().size() : 0,
                          spilled_leases_,  pulls_ ? &pulls_->stats() : nullptr, served_chunks_,
                          served_spilled_chunks_,  dead_nodes_.size()};
}

std::string NodeServer::QueryJsonOnIoThread(std::function<flatbuffers::DetachedBuffer()> query) {
  if (stopped_) return "{}";
  // Shared with the posted function: it outlives a timed-out wait (a long
  // synchronous spill on the io thread), so a late run sets a live promise.
  auto p = std::make_shared<std::promise<std::string>>();
  auto f = p->get_future();
  asio::post(io_, [p, query = std::move(query)] {
    auto frame = query();
    const proto::Envelope* env = nullptr;
    if (!VerifyEnvelope(frame.data(), frame.size(), &env).ok()) return p->set_value("{}");
    auto json = gcs::QueryReplyJson(*env);
    p->set_value(json.ok() ? *json : "{}");
  });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return "{}";
  return f.get();
}

std::string NodeServer::StoreObjectsJson() {
  return QueryJsonOnIoThread([this] { return BuildStoreObjectsReply(0, StatsSources()); });
}

std::string NodeServer::StatsJson() {
  return QueryJsonOnIoThread([this] { return BuildNodeStatsReply(0, StatsSources()); });
}

// ---------------------------------------------------------- memory monitor --

MemoryKillDriver::Hooks NodeServer::MemoryKillHooks() {
  MemoryKillDriver::Hooks h;
  h.read_memory = [] { return ReadNodeMemory(); };
  h.rss = [](int pid) { return ReadProcessRss(pid); };
  h.candidates = [this] {
    std::vector<KillCandidate> out;
    for (auto& [lease, rec] : granted_) {
      auto pid = worker_pid_.find(rec.worker);
      if (pid != worker_pid_.end()) out.push_back(KillCandidate{rec.worker, pid->second, lease, rec.retriable, 0});
    }
    return out;
  };
  h.alive = [this](const WorkerID& worker, int pid) {
    auto it = worker_pid_.find(worker);
    return it != worker_pid_.end() && it->second == pid;
  };
  h.ask_to_exit = [this](const WorkerID& worker, const std::string& reason) {
    for (auto& [id, c] : clients_) {
      if (!c->registered || !c->control || c->is_driver || c->worker_id != worker) continue;
      Fbb fbb(256 + reason.size());
      c->conn->Send(FinishFrame(fbb, proto::CreateKillWorker(fbb, fbb.CreateString(reason))));
      return true;
    }
    return false;
  };
  h.kill = [this](int pid) { launcher_->Kill(pid); };  // no-op once reaped
  return h;
}

}  // namespace rayts::raylet
