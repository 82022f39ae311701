#include "core/raylet/node_server.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
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
std::vector<ObjectID> IdsFrom(const flatbuffers::Vector<uint8_t>* v) {
  std::vector<ObjectID> out;
  if (!v) return out;
  for (size_t i = 0; i + ObjectID::kSize <= v->size(); i += ObjectID::kSize)
    out.push_back(ObjectID::FromBytes(v->data() + i));
  return out;
}
}  // namespace

// A client connection as the GcsService sees it.
class NodeServer::ClientGcsPeer : public gcs::GcsPeer {
 public:
  explicit ClientGcsPeer(std::shared_ptr<Connection> conn) : conn_(std::move(conn)) {}
  void SendGcsReply(flatbuffers::DetachedBuffer frame) override { conn_->Send(std::move(frame)); }

 private:
  std::shared_ptr<Connection> conn_;
};

struct NodeServer::Client {
  std::shared_ptr<Connection> conn;
  std::shared_ptr<ClientGcsPeer> gcs_peer;  // held only here: a dead client's deferred GCS answers are dropped
  WorkerID worker_id;
  bool registered = false;
  bool is_driver = false;
  bool control = false;
  int pid = 0;
  std::unordered_map<uint64_t, uint64_t> requests;  // request id -> key
};

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
  lc.working_dir = opts_.working_dir;
  launcher_ = std::make_unique<ProcessWorkerLauncher>(lc);
  pool_ = std::make_unique<WorkerPool>(launcher_.get(), std::max(1, opts_.max_workers));
  leases_ = std::make_unique<LeaseManager>(std::move(total).value(), pool_.get());

  gcs_ = std::make_unique<gcs::GcsService>(
      gcs::GcsService::HostHooks{[this](const std::string& address) { KillWorkerAt(address); }});
  gcs::NodeInfo node;
  node.node_id = node_id_;
  node.address = opts_.socket_path;
  node.resources = opts_.resources;
  gcs_->tables().RegisterNode(node);
  reported_available_ = leases_->total();

  ::unlink(opts_.socket_path.c_str());
  acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  asio::error_code ec;
  acceptor_->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor_->bind(asio::local::stream_protocol::endpoint(opts_.socket_path), ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("node server cannot listen on " + opts_.socket_path + ": " + ec.message());
  reap_timer_ = std::make_unique<asio::steady_timer>(io_);
  memory_timer_ = std::make_unique<asio::steady_timer>(io_);
  Accept();
  ScheduleReap();
  ScheduleMemoryCheck();
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
    reap_timer_->cancel();
    memory_timer_->cancel();
    pool_->KillAll();
    // Reap what was killed so a long-lived host (init/shutdown in a loop)
    // collects no zombies. SIGKILLed children exit at once; bounded anyway.
    std::vector<std::pair<int, int>> exited;
    for (int i = 0; i < 2000 && launcher_->num_running() > 0; i++) {
      (void)launcher_->Reap(&exited);  // errors: nothing more to reap now
      if (launcher_->num_running() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto clients = clients_;  // close handlers erase from clients_
    for (auto& [id, c] : clients) c->conn->Close();
    clients_.clear();
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
      // Died while starting (before it registered): the pool replaces it
      // for the lease requests waiting on it.
      if (!registered) {
        if (auto wid = pool_->WorkerOfPid(pid)) pool_->OnWorkerDied(*wid);
      }
    }
    ReportResourcesIfChanged();
    ScheduleReap();
  });
}

void NodeServer::Accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, UnixSocket sock) {
    if (ec) return;
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

void NodeServer::WorkerGone(const WorkerID& id) {
  if (!worker_pid_.count(id)) return;
  worker_pid_.erase(id);
  worker_address_.erase(id);
  if (auto lease = leases_->OnWorkerDied(id)) TakeLease(*lease);
  if (id == oom_victim_) oom_victim_ = WorkerID::Nil();
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
    // anyone else); a task worker goes back to the pool.
    (void)leases_->ReturnLease(lease, rec->actor);  // the record proves it is granted
    if (rec->actor && !rec->worker.IsNil()) WorkerGone(rec->worker);
  }
  if (c->registered && c->control) gcs_->OnOwnerDisconnected(c->worker_id);
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
  const ResourceSet& now = leases_->available();
  if (now == reported_available_) return;
  reported_available_ = now;
  std::vector<std::pair<std::string, double>> avail;
  for (auto& [name, total] : leases_->total().ToVector()) avail.emplace_back(name, std::max(0.0, now.Get(name)));
  (void)gcs_->tables().ReportResources(node_id_, std::move(avail));
}

void NodeServer::OnMessage(const std::shared_ptr<Client>& c, const proto::Envelope& env) {
  uint64_t cid = c->conn->id();
  switch (env.body_type()) {
    case proto::Body::RegisterClient:
      HandleRegister(c, env.body_as_RegisterClient());
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
    case proto::Body::PlasmaCreate: {
      auto* r = env.body_as_PlasmaCreate();
      ObjectID id = r->object_id() && r->object_id()->size() == ObjectID::kSize
                        ? ObjectID::FromBytes(r->object_id()->data()) : ObjectID::Nil();
      auto off = store_->Create(cid, id, r->data_size(), /*pinned=*/true, /*allow_spill=*/!r->no_spill());
      if (!off.ok() && (off.status().code() == StatusCode::kObjectExists ||
                        off.status().code() == StatusCode::kObjectBeingCreated)) {
        // A copy whose creator is gone: a worker killed after storing a
        // return (or put) but before its owner heard of it, so the owner
        // re-ran the task. If sealed, the new run replaces the orphan
        // (readers of the old bytes keep them under a tombstone, as for a
        // lost copy); Ray keeps the existing copy instead, but our writer
        // cannot skip its write. If still being written, the creator died
        // mid-write and its close is not processed yet: drop its store
        // state now (OnClose does the rest when the close arrives).
        auto creator = store_->CreatorOf(id);
        if (creator && *creator != cid && ClientGone(*creator)) {
          if (store_->SealedCreator(id)) (void)store_->Lose(id);
          else store_->DisconnectClient(*creator);
          off = store_->Create(cid, id, r->data_size(), /*pinned=*/true, /*allow_spill=*/!r->no_spill());
        }
      }
      if (!off.ok() && off.status().code() == StatusCode::kOutOfMemory) BroadcastGc();
      Fbb fbb(128);
      auto msg = off.ok() ? 0 : fbb.CreateString(off.status().message());
      c->conn->Send(FinishFrame(fbb, proto::CreatePlasmaCreateReply(
                                         fbb, r->request_id(), static_cast<int>(off.status().code()), msg,
                                         off.ok() ? *off : 0)));
      break;
    }
    case proto::Body::PlasmaSeal: {
      auto ids = IdsFrom(env.body_as_PlasmaSeal()->object_id());
      Status s = ids.size() == 1 ? store_->Seal(cid, ids[0]) : Status::InvalidArgument("bad object id");
      Fbb fbb(64);
      auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
      c->conn->Send(FinishFrame(fbb, proto::CreateAck(fbb, 0, static_cast<int>(s.code()), msg)));
      break;
    }
    case proto::Body::PlasmaAbort:
      for (auto& id : IdsFrom(env.body_as_PlasmaAbort()->object_id())) (void)store_->Abort(cid, id);  // unknown: gone already
      break;
    case proto::Body::PlasmaGet:
      HandlePlasmaGet(c, env.body_as_PlasmaGet());
      break;
    case proto::Body::PlasmaRelease:
      for (auto& id : IdsFrom(env.body_as_PlasmaRelease()->object_ids())) store_->Release(cid, id);
      break;
    case proto::Body::PlasmaDelete:
      for (auto& id : IdsFrom(env.body_as_PlasmaDelete()->object_ids())) store_->Delete(id);
      break;
    case proto::Body::GcsRequest:
      gcs_->HandleRequest(c->gcs_peer, gcs::GcsCaller{c->worker_id, current_job_}, *env.body_as_GcsRequest());
      break;
    case proto::Body::NodeStatsRequest:
      c->conn->Send(BuildNodeStatsReply(env.body_as_NodeStatsRequest()->request_id(), StatsSources()));
      break;
    case proto::Body::StoreObjectsRequest:
      c->conn->Send(BuildStoreObjectsReply(env.body_as_StoreObjectsRequest()->request_id(), StatsSources()));
      break;
    case proto::Body::PlasmaLose: {  // test hook: simulate the loss of a copy
      auto ids = IdsFrom(env.body_as_PlasmaLose()->object_id());
      Status s = ids.size() == 1 ? store_->Lose(ids[0]) : Status::InvalidArgument("bad object id");
      Fbb fbb(64);
      auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
      c->conn->Send(FinishFrame(fbb, proto::CreateAck(fbb, 0, static_cast<int>(s.code()), msg)));
      break;
    }
    default:
      break;
  }
  ReportResourcesIfChanged();
}

void NodeServer::HandleRegister(const std::shared_ptr<Client>& c, const proto::RegisterClient* r) {
  c->worker_id = r->worker_id() && r->worker_id()->size() == WorkerID::kSize
                     ? WorkerID::FromBytes(r->worker_id()->data()) : WorkerID::Nil();
  c->is_driver = r->is_driver();
  c->control = r->control();
  c->pid = r->pid();
  c->registered = true;
  Fbb fbb(256);
  Status s;
  JobID job = r->job_id();
  if (!c->control) {
    if (!c->is_driver) {
      worker_address_[c->worker_id] = Str(r->listen_path());
      worker_pid_[c->worker_id] = c->pid;
      s = pool_->OnWorkerRegistered(c->worker_id, c->pid);
    } else if (job == 0) {
      job = gcs_->tables().AddJob(c->pid, "");
      current_job_ = job;
    }
    if (c->is_driver && !prestarted_) {
      // Prestart once the first driver is registered: forking first would
      // hold up the driver's blocking registration (and so its ray.init).
      // The pool forks from this io thread: PR_SET_PDEATHSIG is tied to it.
      prestarted_ = true;
      if (opts_.prestart_workers > 0) asio::post(io_, [this] { pool_->Prestart(opts_.prestart_workers); });
    }
  }
  // Workers of an embedded node serve its driver's job.
  if (!c->is_driver && job == 0) job = current_job_;
  auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
  auto nid = IdBytes(fbb, node_id_);
  auto sd = fbb.CreateString(opts_.session_dir);
  auto reply = proto::CreateRegisterReply(fbb, static_cast<int>(s.code()), msg, nid, region_->size(), sd, job);
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

int NodeServer::SpareFor(const ResourceSet& req) {
  ResourceSet avail = leases_->available();
  int spare = -1;
  for (auto& [name, amount] : req.ToVector()) {
    if (amount <= 0) continue;
    int n = static_cast<int>(std::floor(avail.Get(name) / amount + 1e-9));
    spare = spare < 0 ? n : std::min(spare, n);
  }
  return spare < 0 ? 0 : spare;
}

void NodeServer::HandleLease(const std::shared_ptr<Client>& c, const proto::RequestWorkerLease* r) {
  std::vector<std::pair<std::string, double>> shape;
  if (r->resources())
    for (auto* e : *r->resources()) shape.emplace_back(Str(e->name()), e->amount());
  uint64_t req_id = r->request_id();
  uint64_t cid = c->conn->id();
  auto reply_error = [c, req_id](const Status& s) {
    Fbb fbb(256);
    auto msg = fbb.CreateString(s.message());
    proto::LeaseReplyBuilder b(fbb);
    b.add_request_id(req_id);
    b.add_code(static_cast<int>(s.code()));
    b.add_message(msg);
    c->conn->Send(FinishFrame(fbb, b.Finish()));
  };
  auto rs = ResourceSet::FromMap(shape);
  if (!rs.ok()) { reply_error(rs.status()); return; }
  uint64_t key = next_request_key_++;
  c->requests[req_id] = key;
  request_owner_[key] = {cid, req_id};
  std::weak_ptr<Client> weak = c;
  ResourceSet req = *rs;
  bool for_actor = r->for_actor();
  bool detached = r->detached();
  bool retriable = r->retriable();
  leases_->RequestLease(key, req, [this, weak, key, req_id, reply_error, req, cid, for_actor, detached,
                                   retriable](StatusOr<Lease> lease) {
    request_owner_.erase(key);
    auto c = weak.lock();
    if (c) c->requests.erase(req_id);
    if (!c || c->conn->closed()) {
      if (lease.ok()) (void)leases_->ReturnLease(lease->lease_id, false);  // just granted
      return;
    }
    if (!lease.ok()) { reply_error(lease.status()); return; }
    granted_[lease->lease_id] = LeaseRecord{cid, lease->worker_id, for_actor, detached, retriable};
    Fbb fbb(256);
    auto wid = IdBytes(fbb, lease->worker_id);
    auto addr = fbb.CreateString(worker_address_[lease->worker_id]);
    proto::LeaseReplyBuilder b(fbb);
    b.add_request_id(req_id);
    b.add_lease_id(lease->lease_id);
    b.add_worker_id(wid);
    b.add_worker_address(addr);
    b.add_spare(SpareFor(req));
    c->conn->Send(FinishFrame(fbb, b.Finish()));
  });
}

void NodeServer::HandlePlasmaGet(const std::shared_ptr<Client>& c, const proto::PlasmaGet* r) {
  auto ids = IdsFrom(r->object_ids());
  uint64_t req_id = r->request_id();
  std::weak_ptr<Client> weak = c;
  auto reply = [weak, req_id](std::vector<plasma::GetResult> results) {
    auto c = weak.lock();
    if (!c) return;
    Fbb fbb(256);
    std::vector<flatbuffers::Offset<proto::PlasmaObject>> objs;
    for (auto& g : results) {
      auto msg = g.error.ok() ? 0 : fbb.CreateString(g.error.message());
      objs.push_back(proto::CreatePlasmaObject(fbb, IdBytes(fbb, g.id), g.found, g.offset, g.size,
                                               static_cast<int>(g.error.code()), msg));
    }
    auto v = fbb.CreateVector(objs);
    c->conn->Send(FinishFrame(fbb, proto::CreatePlasmaGetReply(fbb, req_id, v)));
  };
  auto reply_and_note = [this, reply](std::vector<plasma::GetResult> results) {
    bool restore_failed = false;
    for (auto& g : results) restore_failed |= g.error.code() == StatusCode::kOutOfMemory;
    reply(std::move(results));
    // A restore found no room: ask every process to drop what it no longer uses.
    if (restore_failed) BroadcastGc();
  };
  uint64_t get_id = store_->Get(c->conn->id(), ids, reply_and_note);
  if (get_id != 0) {
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, r->timeout_ms())));
    timer->async_wait([this, timer, get_id](const asio::error_code&) { store_->CancelGet(get_id); });
  }
}

NodeStatsSources NodeServer::StatsSources() const {
  return NodeStatsSources{store_.get(),         region_.get(), spill_.get(),  leases_.get(), pool_.get(),
                          clients_.size(),      oom_kills_,    opts_.memory_usage_threshold};
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

namespace {
// How long a worker told to exit (KillWorker) has before it is SIGKILLed.
constexpr auto kOomKillGrace = std::chrono::milliseconds(1000);
}  // namespace

void NodeServer::ScheduleMemoryCheck() {
  if (opts_.memory_monitor_period_ms <= 0) return;
  memory_timer_->expires_after(std::chrono::milliseconds(opts_.memory_monitor_period_ms));
  memory_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    CheckMemory();
    ScheduleMemoryCheck();
  });
}

void NodeServer::CheckMemory() {
  // One kill at a time: wait until the previous victim is gone (its memory
  // is only freed then), as Ray does.
  if (!oom_victim_.IsNil() && worker_pid_.count(oom_victim_)) return;
  oom_victim_ = WorkerID::Nil();
  auto snap = ReadNodeMemory();
  if (!snap.ok() || !AboveThreshold(*snap, opts_.memory_usage_threshold)) return;
  std::vector<KillCandidate> candidates;
  for (auto& [lease, rec] : granted_) {
    auto pid = worker_pid_.find(rec.worker);
    if (pid == worker_pid_.end()) continue;
    candidates.push_back(KillCandidate{rec.worker, pid->second, lease, rec.retriable, 0});
  }
  auto pick = SelectWorkerToKill(candidates);
  if (!pick) return;
  KillCandidate victim = candidates[*pick];
  victim.rss_bytes = ReadProcessRss(victim.pid);
  KillForMemory(victim, OomKillMessage(*snap, opts_.memory_usage_threshold, victim));
}

void NodeServer::KillForMemory(const KillCandidate& victim, const std::string& reason) {
  oom_victim_ = victim.worker;
  oom_kills_++;
  // The worker relays the reason to the processes pushing tasks to it on
  // the same connections that then close, so an owner always learns the
  // cause before it sees the worker gone.
  std::shared_ptr<Client> control;
  for (auto& [id, c] : clients_) {
    if (c->registered && c->control && !c->is_driver && c->worker_id == victim.worker) control = c;
  }
  int pid = victim.pid;
  if (control) {
    Fbb fbb(256 + reason.size());
    control->conn->Send(FinishFrame(fbb, proto::CreateKillWorker(fbb, fbb.CreateString(reason))));
  } else {
    launcher_->Kill(pid);
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_after(kOomKillGrace);
  WorkerID worker = victim.worker;
  timer->async_wait([this, timer, worker, pid](const asio::error_code& ec) {
    if (ec || stopped_) return;
    auto it = worker_pid_.find(worker);
    if (it != worker_pid_.end() && it->second == pid) launcher_->Kill(pid);  // no-op once reaped
  });
}

}  // namespace rayts::raylet
