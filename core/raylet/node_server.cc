#include "core/raylet/node_server.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <future>

#include "core/common/json.h"
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

struct NodeServer::Client {
  std::shared_ptr<Connection> conn;
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

  gcs::NodeInfo node;
  node.node_id = node_id_;
  node.address = opts_.socket_path;
  node.resources = opts_.resources;
  gcs_.RegisterNode(node);

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
      launcher_->Reap(&exited);
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
    launcher_->Reap(&exited);
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
    ScheduleReap();
  });
}

void NodeServer::Accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, UnixSocket sock) {
    if (ec) return;
    auto c = std::make_shared<Client>();
    c->conn = std::make_shared<Connection>(std::move(sock));
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
  if (auto lease = leases_->OnWorkerDied(id)) {
    lease_owner_.erase(*lease);
    lease_worker_.erase(*lease);
    actor_leases_.erase(*lease);
    detached_leases_.erase(*lease);
    retriable_leases_.erase(*lease);
  }
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
  for (auto& [lease, owner] : lease_owner_) if (owner == cid) owned.push_back(lease);
  for (auto lease : owned) {
    lease_owner_.erase(lease);
    if (detached_leases_.count(lease)) continue;  // a detached actor lives on (the node holds its lease)
    auto w = lease_worker_.find(lease);
    WorkerID worker = w != lease_worker_.end() ? w->second : WorkerID::Nil();
    lease_worker_.erase(lease);
    retriable_leases_.erase(lease);
    // An actor's worker ends with its owner (its instance must not serve
    // anyone else); a task worker goes back to the pool.
    bool actor = actor_leases_.erase(lease) > 0;
    leases_->ReturnLease(lease, actor);
    if (actor && !worker.IsNil()) WorkerGone(worker);
  }
  if (c->registered && c->control) gcs_.actors().OnOwnerDied(c->worker_id);
  if (c->registered && !c->is_driver) WorkerGone(c->worker_id);
  clients_.erase(cid);
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
      lease_owner_.erase(r->lease_id());
      auto w = lease_worker_.find(r->lease_id());
      WorkerID worker = w != lease_worker_.end() ? w->second : WorkerID::Nil();
      if (w != lease_worker_.end()) lease_worker_.erase(w);
      actor_leases_.erase(r->lease_id());
      detached_leases_.erase(r->lease_id());
      retriable_leases_.erase(r->lease_id());
      leases_->ReturnLease(r->lease_id(), r->worker_exiting());
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
      if (!off.ok() && off.status().code() == StatusCode::kAlreadyExists) {
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
      for (auto& id : IdsFrom(env.body_as_PlasmaAbort()->object_id())) store_->Abort(cid, id);
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
      HandleGcs(c, env.body_as_GcsRequest());
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
      job = gcs_.AddJob(c->pid, "");
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
      if (lease.ok()) leases_->ReturnLease(lease->lease_id, false);
      return;
    }
    if (!lease.ok()) { reply_error(lease.status()); return; }
    lease_owner_[lease->lease_id] = cid;
    lease_worker_[lease->lease_id] = lease->worker_id;
    if (for_actor) actor_leases_.insert(lease->lease_id);
    if (detached) detached_leases_.insert(lease->lease_id);
    if (retriable) retriable_leases_.insert(lease->lease_id);
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

namespace {
// The memory monitor's view of the node, for stats (tests compute thresholds from it).
std::string MemoryStatsJson() {
  auto m = ReadNodeMemory();
  if (!m.ok()) return "";
  return ",\"memoryUsed\":" + std::to_string(m->used_bytes) + ",\"memoryTotal\":" + std::to_string(m->total_bytes);
}
}  // namespace

std::string NodeServer::StatsJsonLocked() {
  return "{\"storeCapacity\":" + std::to_string(store_->capacity()) +
         ",\"storeUsed\":" + std::to_string(store_->used_bytes()) +
         ",\"storeObjects\":" + std::to_string(store_->num_objects()) +
         ",\"storePinned\":" + std::to_string(store_->pinned_bytes()) +
         ",\"storeEvicted\":" + std::to_string(store_->evicted_count()) +
         ",\"spillUsed\":" + std::to_string(store_->spilled_bytes()) +
         ",\"spillLimit\":" + std::to_string(store_->spill_limit()) +
         ",\"spilledObjects\":" + std::to_string(store_->num_spilled()) +
         ",\"spillCount\":" + std::to_string(store_->spill_count()) +
         ",\"restoreCount\":" + std::to_string(store_->restore_count()) +
         ",\"prefaulted\":" + std::to_string(region_->prefaulted_bytes()) +
         ",\"leased\":" + std::to_string(leases_->num_leased()) +
         ",\"queuedLeases\":" + std::to_string(leases_->num_queued()) +
         ",\"workers\":" + std::to_string(pool_->AllWorkers().size()) +
         ",\"idleWorkers\":" + std::to_string(pool_->num_idle()) +
         ",\"clients\":" + std::to_string(clients_.size()) +
         ",\"oomKills\":" + std::to_string(oom_kills_) +
         ",\"memoryThreshold\":" + std::to_string(opts_.memory_usage_threshold) + MemoryStatsJson() + "}";
}

std::string NodeServer::StoreObjectsJsonLocked() {
  std::string out = "{\"storeCapacity\":" + std::to_string(store_->capacity()) +
                    ",\"storeUsed\":" + std::to_string(store_->used_bytes()) +
                    ",\"storePinned\":" + std::to_string(store_->pinned_bytes()) +
                    ",\"spillDir\":" + JsonString(spill_ ? spill_->dir() : std::string()) +
                    ",\"spillUsed\":" + std::to_string(store_->spilled_bytes()) +
                    ",\"spillLimit\":" + std::to_string(store_->spill_limit()) +
                    ",\"spilledObjects\":" + std::to_string(store_->num_spilled()) +
                    ",\"spillCount\":" + std::to_string(store_->spill_count()) +
                    ",\"restoreCount\":" + std::to_string(store_->restore_count()) + ",\"objects\":[";
  bool first = true;
  for (const auto& o : store_->ListObjects()) {
    if (!first) out += ',';
    first = false;
    const char* where = o.in_memory ? (o.spilled ? "both" : "memory") : "spilled";
    out += "{\"id\":\"" + o.id.Hex() + "\",\"size\":" + std::to_string(o.size) +
           ",\"sealed\":" + (o.sealed ? "true" : "false") + ",\"location\":\"" + where +
           "\",\"pinned\":" + (o.pinned ? "true" : "false") + ",\"refs\":" + std::to_string(o.refs) + "}";
  }
  return out + "]}";
}

std::string NodeServer::StoreObjectsJson() {
  if (stopped_) return "{}";
  auto p = std::make_shared<std::promise<std::string>>();  // outlives a timed-out wait
  auto f = p->get_future();
  asio::post(io_, [this, p] { p->set_value(StoreObjectsJsonLocked()); });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return "{}";
  return f.get();
}

std::string NodeServer::StatsJson() {
  if (stopped_) return "{}";
  std::promise<std::string> p;
  auto f = p.get_future();
  asio::post(io_, [this, &p] { p.set_value(StatsJsonLocked()); });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return "{}";
  return f.get();
}

namespace {
std::vector<std::string> SplitNul(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t z = s.find('\0', start);
    out.push_back(s.substr(start, z == std::string::npos ? std::string::npos : z - start));
    if (z == std::string::npos) return out;
    start = z + 1;
  }
}
std::string JoinNul(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); i++) {
    if (i) out.push_back('\0');
    out += v[i];
  }
  return out;
}
bool ActorIdFromHex(const std::string& hex, gcs::ActorID* out) {
  if (hex.size() != 2 * gcs::ActorID::kSize) return false;
  for (size_t i = 0; i < gcs::ActorID::kSize; i++) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}
}  // namespace

void NodeServer::SendGcsReply(const std::shared_ptr<Client>& c, uint64_t request_id, const Status& s, const std::string& out) {
  Fbb fbb(128 + out.size());
  auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
  auto b = fbb.CreateString(out);
  c->conn->Send(FinishFrame(fbb, proto::CreateGcsReply(fbb, request_id, static_cast<int>(s.code()), msg, b)));
}

// Actor table calls (fields separated by NUL):
//   actor_register id, name, ns, class, detached, get_if_exists, info -> "new" | "existing\0id\0info"
//   actor_alive id, address;  actor_dead id, cause
//   actor_wait id -> "ALIVE\0address" | "DEAD\0cause" (answered when it is one of those)
//   actor_get_by_name ns, name -> "id\0info"
// `info` is the owner's opaque description of the actor (class, methods, owner).
bool NodeServer::HandleActorGcs(const std::shared_ptr<Client>& c, uint64_t request_id, const std::string& method,
                                const std::string& body) {
  auto& table = gcs_.actors();
  auto f = SplitNul(body);
  gcs::ActorID id;
  auto bad = [&](const std::string& why) { SendGcsReply(c, request_id, Status::InvalidArgument(method + ": " + why), ""); };
  if (method == "actor_register") {
    if (f.size() < 7 || !ActorIdFromHex(f[0], &id)) { bad("malformed request"); return true; }
    gcs::ActorInfo info;
    info.id = id;
    info.name = f[1];
    info.ns = f[2];
    info.class_name = f[3];
    info.detached = f[4] == "1";
    info.owner_worker = c->worker_id;
    info.job = current_job_;
    info.creation_spec = f[6];
    if (f.size() > 7 && !f[7].empty()) info.max_restarts = std::atoi(f[7].c_str());
    auto r = table.Register(info, f[5] == "1");
    if (!r.ok()) { SendGcsReply(c, request_id, r.status(), ""); return true; }
    if (r->id == id) SendGcsReply(c, request_id, Status::OK(), "new");
    else SendGcsReply(c, request_id, Status::OK(), JoinNul({"existing", r->id.Hex(), r->creation_spec}));
    return true;
  }
  if (method == "actor_alive") {
    if (f.size() < 2 || !ActorIdFromHex(f[0], &id)) { bad("malformed request"); return true; }
    SendGcsReply(c, request_id, table.OnCreated(id, WorkerID::Nil(), f[1]), "");
    return true;
  }
  if (method == "actor_restarting") {
    if (f.size() < 2 || !ActorIdFromHex(f[0], &id)) { bad("malformed request"); return true; }
    auto st = table.OnWorkerDied(id, f[1]);
    SendGcsReply(c, request_id, st.ok() ? Status::OK() : st.status(), "");
    return true;
  }
  if (method == "actor_kill") {
    // A kill from a process that does not own the actor (e.g. a detached
    // actor whose creator is gone): end its worker and record the death.
    if (f.size() < 2 || !ActorIdFromHex(f[0], &id)) { bad("malformed request"); return true; }
    const gcs::ActorInfo* a = table.Get(id);
    if (!a) { SendGcsReply(c, request_id, Status::NotFound("no actor " + f[0]), ""); return true; }
    std::string address = a->address;
    Status s = table.Kill(id, /*no_restart=*/true, f[1]);
    for (auto& [wid, addr] : worker_address_) {
      if (addr != address || address.empty()) continue;
      WorkerID victim = wid;
      for (auto it = lease_worker_.begin(); it != lease_worker_.end(); ++it) {
        if (it->second == victim) {
          uint64_t lease = it->first;
          lease_worker_.erase(it);
          lease_owner_.erase(lease);
          actor_leases_.erase(lease);
          detached_leases_.erase(lease);
          leases_->ReturnLease(lease, true);
          break;
        }
      }
      WorkerGone(victim);
      break;
    }
    SendGcsReply(c, request_id, s, "");
    return true;
  }
  if (method == "actor_dead") {
    if (f.size() < 2 || !ActorIdFromHex(f[0], &id)) { bad("malformed request"); return true; }
    SendGcsReply(c, request_id, table.Kill(id, /*no_restart=*/true, f[1]), "");
    return true;
  }
  if (method == "actor_wait") {
    if (f.empty() || !ActorIdFromHex(f[0], &id)) { bad("malformed request"); return true; }
    const gcs::ActorInfo* a = table.Get(id);
    if (!a) { SendGcsReply(c, request_id, Status::NotFound("no actor " + f[0]), ""); return true; }
    auto answer = [this, request_id](const std::shared_ptr<Client>& to, const gcs::ActorInfo& info) {
      if (info.state == gcs::ActorState::kAlive) SendGcsReply(to, request_id, Status::OK(), JoinNul({"ALIVE", info.address}));
      else SendGcsReply(to, request_id, Status::OK(), JoinNul({"DEAD", info.death_cause}));
    };
    if (a->state == gcs::ActorState::kAlive || a->state == gcs::ActorState::kDead) {
      answer(c, *a);
      return true;
    }
    std::weak_ptr<Client> weak = c;
    auto sub = std::make_shared<uint64_t>(0);
    *sub = table.Subscribe(id, [this, weak, answer, sub](const gcs::ActorInfo& info) {
      if (info.state != gcs::ActorState::kAlive && info.state != gcs::ActorState::kDead) return;
      if (auto to = weak.lock()) answer(to, info);
      gcs_.actors().Unsubscribe(*sub);
    });
    return true;
  }
  if (method == "actor_get_by_name") {
    if (f.size() < 2) { bad("malformed request"); return true; }
    const gcs::ActorInfo* a = table.GetByName(f[0], f[1]);
    if (!a) {
      SendGcsReply(c, request_id, Status::NotFound("no actor named '" + f[1] + "' in namespace '" + f[0] + "'"), "");
    } else {
      SendGcsReply(c, request_id, Status::OK(), JoinNul({a->id.Hex(), a->creation_spec}));
    }
    return true;
  }
  return false;
}

void NodeServer::HandleGcs(const std::shared_ptr<Client>& c, const proto::GcsRequest* r) {
  std::string method = Str(r->method());
  std::string body = Str(r->body());
  if (method.rfind("actor_", 0) == 0 && HandleActorGcs(c, r->request_id(), method, body)) return;
  Status s;
  std::string out;
  if (method == "nodes") {
    out = gcs_.NodesJson();
  } else if (method == "cluster_resources") {
    out = gcs::ResourcesJson(leases_->total().ToVector());
  } else if (method == "available_resources") {
    // Every resource the node has, including those at zero.
    std::vector<std::pair<std::string, double>> avail;
    ResourceSet a = leases_->available();
    for (auto& [name, total] : leases_->total().ToVector()) avail.emplace_back(name, std::max(0.0, a.Get(name)));
    out = gcs::ResourcesJson(avail);
  } else if (method == "stats") {
    out = StatsJsonLocked();
  } else if (method == "store_objects") {
    out = StoreObjectsJsonLocked();
  } else if (method == "jobs") {
    out = gcs_.JobsJson();
  } else if (method == "kv_put") {
    size_t z = body.find('\0');
    if (z == std::string::npos) s = Status::InvalidArgument("kv_put body must be key\\0value");
    else gcs_.KvPut(body.substr(0, z), body.substr(z + 1));
  } else if (method == "kv_get") {
    auto v = gcs_.KvGet(body);
    if (v.ok()) out = *v; else s = v.status();
  } else if (method == "kv_del") {
    out = gcs_.KvDel(body) ? "1" : "0";
  } else {
    s = Status::InvalidArgument("unknown GCS method '" + method + "'");
  }
  Fbb fbb(128 + out.size());
  auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
  auto b = fbb.CreateString(out);
  c->conn->Send(FinishFrame(fbb, proto::CreateGcsReply(fbb, r->request_id(), static_cast<int>(s.code()), msg, b)));
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
  for (auto& [lease, worker] : lease_worker_) {
    auto pid = worker_pid_.find(worker);
    if (pid == worker_pid_.end()) continue;
    candidates.push_back(KillCandidate{worker, pid->second, lease, retriable_leases_.count(lease) > 0, 0});
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
