#include "core/core_worker/core_worker.h"

#include <unistd.h>

#include <cstring>

#include "core/common/json.h"

namespace rayts {

namespace {

constexpr size_t kMaxInflightPerLease = 64;
constexpr auto kLeaseIdleReturn = std::chrono::milliseconds(50);

using Fbb = flatbuffers::FlatBufferBuilder;

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(Fbb& fbb, const uint8_t* p, size_t n) {
  return fbb.CreateVector(p, n);
}
template <size_t N>
flatbuffers::Offset<flatbuffers::Vector<uint8_t>> IdBytes(Fbb& fbb, const BaseId<N>& id) {
  return fbb.CreateVector(id.data(), N);
}
template <typename Id>
Id IdFrom(const flatbuffers::Vector<uint8_t>* v) {
  if (!v || v->size() != Id::kSize) return Id::Nil();
  return Id::FromBytes(v->data());
}
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

uint64_t KeyOf(const SubmitRequest& r) {
  std::string k = r.function.hash;
  for (auto& [name, amount] : r.resources) {
    k += '|';
    k += name;
    k += '=';
    k += std::to_string(amount);
  }
  return std::hash<std::string>{}(k);
}

flatbuffers::Offset<proto::ReturnObject> BuildReturn(Fbb& fbb, const ObjectID& id, const ReturnValue& v) {
  auto oid = IdBytes(fbb, id);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
  if (v.data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(v.data->data()), v.data->size());
  proto::ReturnObjectBuilder b(fbb);
  b.add_object_id(oid);
  if (v.data) b.add_data(data);
  b.add_in_plasma(v.in_plasma);
  b.add_is_error(v.is_error);
  b.add_size(v.size);
  return b.Finish();
}

}  // namespace

struct CoreWorker::Pending {
  TaskID task_id;
  SubmitRequest req;
  uint64_t key = 0;
  int retries_left = 0;
  int attempt = 0;
  int unresolved = 0;
  bool cancelled = false;
  std::vector<ObjectID> return_ids;
  std::vector<ObjectID> owned_arg_refs;
  std::shared_ptr<Lease> lease;
};

struct CoreWorker::Lease {
  uint64_t lease_id = 0;
  WorkerID worker_id;
  std::string address;
  uint64_t key = 0;
  std::shared_ptr<Connection> conn;
  std::unordered_set<std::string> sent_functions;
  std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> inflight;
  bool returned = false;
  uint64_t idle_epoch = 0;
  std::unique_ptr<asio::steady_timer> idle_timer;
};

struct CoreWorker::KeyState {
  uint64_t key = 0;
  std::vector<std::pair<std::string, double>> resources;
  std::deque<std::shared_ptr<Pending>> queue;
  std::vector<std::shared_ptr<Lease>> leases;
  int pending_requests = 0;
  uint64_t pending_request_id = 0;
  int spare_hint = 1;
};

CoreWorker::CoreWorker(CoreWorkerOptions opts)
    : opts_(std::move(opts)),
      refs_([this](const ObjectID& id, const ReferenceCounter::Ref& r) { OnReleased(id, r); }),
      put_task_id_(TaskID::FromRandom()) {}

CoreWorker::~CoreWorker() { Shutdown(); }

StatusOr<std::unique_ptr<CoreWorker>> CoreWorker::Start(CoreWorkerOptions opts) {
  std::unique_ptr<CoreWorker> cw(new CoreWorker(std::move(opts)));
  RAYTS_RETURN_IF_ERROR(cw->Connect());
  return cw;
}

Status CoreWorker::Connect() {
  // 1. Listen first: a worker may be leased as soon as it registers.
  ::unlink(opts_.listen_path.c_str());
  acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  asio::error_code ec;
  acceptor_->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor_->bind(asio::local::stream_protocol::endpoint(opts_.listen_path), ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + opts_.listen_path + ": " + ec.message());

  // 2. Plasma channel: register and receive the store memfd.
  RAYTS_RETURN_IF_ERROR(plasma_.Connect(opts_.node_socket));
  auto build_register = [&](bool control) {
    Fbb fbb(256);
    auto wid = IdBytes(fbb, opts_.worker_id);
    auto path = fbb.CreateString(opts_.listen_path);
    proto::RegisterClientBuilder b(fbb);
    b.add_worker_id(wid);
    b.add_is_driver(opts_.is_driver);
    b.add_pid(::getpid());
    b.add_listen_path(path);
    b.add_job_id(opts_.job_id);
    b.add_control(control);
    return FinishFrame(fbb, b.Finish());
  };
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  int fd = -1;
  RAYTS_RETURN_IF_ERROR(plasma_.Call(build_register(false), proto::Body::RegisterReply, &storage, &env, &fd));
  auto* reply = env->body_as_RegisterReply();
  if (reply->code() != 0) {
    if (fd >= 0) ::close(fd);
    return Status(static_cast<StatusCode>(reply->code()), Str(reply->message()));
  }
  if (fd < 0) return Status::IOError("node server did not pass the object store fd");
  node_id_ = IdFrom<NodeID>(reply->node_id());
  job_id_ = reply->job_id();
  session_dir_ = Str(reply->session_dir());
  auto region = plasma::ShmRegion::Map(fd, reply->store_size());
  if (!region.ok()) return region.status();
  store_ = std::move(region).value();

  // 3. Control connection (async, io thread).
  auto sock = ConnectUnix(io_, opts_.node_socket);
  if (!sock.ok()) return sock.status();
  control_ = std::make_shared<Connection>(std::move(sock).value());
  control_->Start([this](const proto::Envelope& e) { OnControl(e); },
                  [this](const Status& s) {
                    if (!opts_.is_driver && !shutting_down_) {
                      // The node server is gone: a worker must not outlive it.
                      ::_exit(0);
                    }
                  });
  control_->Send(build_register(true));

  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  Accept();
  io_thread_ = std::thread([this] { io_.run(); });
  return Status::OK();
}

void CoreWorker::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
  }
  asio::post(io_, [this] {
    asio::error_code ec;
    if (acceptor_) acceptor_->close(ec);
    if (control_) control_->Close();
    std::vector<std::shared_ptr<Connection>> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [k, ks] : keys_)
        for (auto& l : ks->leases) if (l->conn) conns.push_back(l->conn);
      for (auto& [a, c] : owner_conns_) conns.push_back(c);
    }
    // Close outside mu_: close handlers take it.
    for (auto& c : conns) c->Close();
  });
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  plasma_.Close();
  ::unlink(opts_.listen_path.c_str());
}

void CoreWorker::Accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, UnixSocket sock) {
    if (ec) return;
    auto c = std::make_shared<Connection>(std::move(sock));
    std::weak_ptr<Connection> weak = c;
    c->Start([this, weak](const proto::Envelope& e) {
               if (auto c = weak.lock()) OnInbound(c, e);
             },
             [](const Status&) {});
    Accept();
  });
}

// ---------------------------------------------------------------- outbox --

void CoreWorker::EmitLocked(Event e) {
  bool was_empty = events_.empty();
  events_.push_back(std::move(e));
  if (was_empty && opts_.notify) opts_.notify();
}

std::vector<Event> CoreWorker::DrainEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> out;
  out.swap(events_);
  return out;
}

void CoreWorker::QueueControlLocked(flatbuffers::DetachedBuffer frame) { QueueToLocked(control_, std::move(frame)); }

void CoreWorker::QueueToLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame) {
  if (!c) return;
  outbox_.emplace_back(c, std::move(frame));
  ScheduleFlushLocked();
}

void CoreWorker::ScheduleFlushLocked() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [this] { FlushOutbox(); });
}

void CoreWorker::FlushOutbox() {
  std::vector<std::pair<std::shared_ptr<Connection>, flatbuffers::DetachedBuffer>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(outbox_);
    flush_scheduled_ = false;
  }
  for (auto& [c, f] : batch) c->Send(std::move(f));
}

// --------------------------------------------------------------- objects --

ObjectID CoreWorker::NextPutId() {
  std::lock_guard<std::mutex> lock(mu_);
  return ObjectIdFor(put_task_id_, kPutIndexBit | static_cast<uint32_t>(++put_counter_ & 0x7fffffff));
}

void CoreWorker::PutInline(const ObjectID& id, std::shared_ptr<const std::string> data) {
  std::lock_guard<std::mutex> lock(mu_);
  refs_.AddOwned(id, 1);
  uint64_t size = data ? data->size() : 0;
  memory_store_.Put(id, std::move(data), false, false, size);
}

StatusOr<uint64_t> CoreWorker::PlasmaCreate(const ObjectID& id, uint64_t size) {
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaCreate(fbb, 0, oid, size));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(plasma_.Call(frame, proto::Body::PlasmaCreateReply, &storage, &env));
  auto* r = env->body_as_PlasmaCreateReply();
  if (r->code() != 0) return Status(static_cast<StatusCode>(r->code()), Str(r->message()));
  return r->offset();
}

Status CoreWorker::PlasmaSeal(const ObjectID& id, bool owned_put) {
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaSeal(fbb, oid));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(plasma_.Call(frame, proto::Body::Ack, &storage, &env));
  auto* a = env->body_as_Ack();
  if (a->code() != 0) return Status(static_cast<StatusCode>(a->code()), Str(a->message()));
  if (owned_put) {
    std::lock_guard<std::mutex> lock(mu_);
    refs_.AddOwned(id, 1);
    memory_store_.Put(id, nullptr, true, false, 0);
  }
  return Status::OK();
}

StatusOr<PlasmaView> CoreWorker::PlasmaGet(const ObjectID& id) {
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaGet(fbb, 0, oid, 5000));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(plasma_.Call(frame, proto::Body::PlasmaGetReply, &storage, &env));
  auto* r = env->body_as_PlasmaGetReply();
  if (!r->objects() || r->objects()->size() != 1 || !r->objects()->Get(0)->found()) {
    return Status::ObjectLost("object " + id.Hex() + " is not in the object store");
  }
  auto* o = r->objects()->Get(0);
  return PlasmaView{o->offset(), o->size()};
}

void CoreWorker::PlasmaRelease(const ObjectID& id) {
  Fbb fbb(64);
  auto oid = IdBytes(fbb, id);
  plasma_.Send(FinishFrame(fbb, proto::CreatePlasmaRelease(fbb, oid)));
}

LookupResult CoreWorker::TryGet(const ObjectID& id) {
  std::lock_guard<std::mutex> lock(mu_);
  LookupResult r;
  const StoredObject* o = memory_store_.Find(id);
  if (!o) return r;
  r.known = true;
  r.ready = o->ready;
  r.in_plasma = o->in_plasma;
  r.is_error = o->is_error;
  r.data = o->data;
  r.size = o->size;
  return r;
}

void CoreWorker::Subscribe(const ObjectID& id, const std::string& owner_address) {
  std::lock_guard<std::mutex> lock(mu_);
  const StoredObject* o = memory_store_.Find(id);
  if (o && o->ready) {
    Event e{Event::Type::kObjectReady};
    e.object_id = id;
    EmitLocked(std::move(e));
    return;
  }
  js_subscribed_.insert(id);
  if (owner_address.empty() || owner_address == opts_.listen_path) {
    if (!o && !refs_.Has(id)) {
      StoreErrorLocked(id, ErrorRecordJson("object_lost", "ObjectLostError",
                                           "object " + id.Hex() + " was already freed by its owner", id.Hex()));
    }
    return;
  }
  if (borrowed_fetching_.insert(id).second) {
    auto c = OwnerConnectionLocked(owner_address);
    if (!c) {
      StoreErrorLocked(id, ErrorRecordJson("owner_died", "OwnerDiedError",
                                           "the owner of object " + id.Hex() + " (" + owner_address +
                                               ") is unreachable: it has died", id.Hex()));
      return;
    }
    Fbb fbb(128);
    auto oid = IdBytes(fbb, id);
    QueueToLocked(c, FinishFrame(fbb, proto::CreateGetObject(fbb, next_request_id_++, oid)));
  }
}

std::shared_ptr<Connection> CoreWorker::OwnerConnectionLocked(const std::string& address) {
  auto it = owner_conns_.find(address);
  if (it != owner_conns_.end() && !it->second->closed()) return it->second;
  auto sock = ConnectUnix(io_, address);
  if (!sock.ok()) return nullptr;
  auto c = std::make_shared<Connection>(std::move(sock).value());
  owner_conns_[address] = c;
  // Start on the io thread: handlers run there.
  asio::post(io_, [this, c, address] {
    c->Start([this, address](const proto::Envelope& e) { OnOwnerMessage(address, e); },
             [this, address](const Status& s) {
               std::lock_guard<std::mutex> lock(mu_);
               // Every fetch still waiting on this owner fails.
               std::vector<ObjectID> lost;
               for (auto& id : borrowed_fetching_) {
                 const StoredObject* o = memory_store_.Find(id);
                 if (!o || !o->ready) lost.push_back(id);
               }
               for (auto& id : lost) {
                 borrowed_fetching_.erase(id);
                 StoreErrorLocked(id, ErrorRecordJson("owner_died", "OwnerDiedError",
                                                      "the owner of object " + id.Hex() + " (" + address +
                                                          ") died before the object could be fetched",
                                                      id.Hex()));
               }
             });
  });
  return c;
}

void CoreWorker::OnOwnerMessage(const std::string& address, const proto::Envelope& env) {
  if (env.body_type() != proto::Body::GetObjectReply) return;
  auto* r = env.body_as_GetObjectReply();
  std::lock_guard<std::mutex> lock(mu_);
  if (!r->item()) return;
  ObjectID id = IdFrom<ObjectID>(r->item()->object_id());
  borrowed_fetching_.erase(id);
  if (r->code() != 0) {
    StoreErrorLocked(id, ErrorRecordJson("object_lost", "ObjectLostError", Str(r->message()), id.Hex()));
    return;
  }
  StoreResultLocked(id, r->item());
}

void CoreWorker::AddLocalRef(const ObjectID& id, const std::string& owner_address) {
  std::lock_guard<std::mutex> lock(mu_);
  refs_.AddLocal(id, owner_address == opts_.listen_path ? std::string() : owner_address);
}

void CoreWorker::RemoveLocalRefs(const std::vector<ObjectID>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& id : ids) refs_.RemoveLocal(id);
}

void CoreWorker::OnReleased(const ObjectID& id, const ReferenceCounter::Ref& ref) {
  // mu_ is held (called from inside refs_ operations).
  const StoredObject* o = memory_store_.Find(id);
  if (ref.owned && o && o->in_plasma) {
    Fbb fbb(64);
    auto oid = IdBytes(fbb, id);
    QueueControlLocked(FinishFrame(fbb, proto::CreatePlasmaDelete(fbb, oid)));
  }
  memory_store_.Erase(id);
  js_subscribed_.erase(id);
}

void CoreWorker::StoreErrorLocked(const ObjectID& id, const std::string& json) {
  auto data = std::make_shared<const std::string>(json);
  memory_store_.Put(id, data, false, true, data->size());
  ObjectReadyLocked(id);
}

void CoreWorker::StoreResultLocked(const ObjectID& id, const proto::ReturnObject* ret) {
  bool in_plasma = ret->in_plasma();
  if (!refs_.Has(id)) {
    // Every handle was dropped while the task ran: free the value at once.
    if (in_plasma) {
      Fbb fbb(64);
      auto oid = IdBytes(fbb, id);
      QueueControlLocked(FinishFrame(fbb, proto::CreatePlasmaDelete(fbb, oid)));
    }
    return;
  }
  std::shared_ptr<const std::string> data;
  if (ret->data()) data = std::make_shared<const std::string>(reinterpret_cast<const char*>(ret->data()->data()), ret->data()->size());
  memory_store_.Put(id, std::move(data), in_plasma, ret->is_error(), ret->size());
  ObjectReadyLocked(id);
}

void CoreWorker::ObjectReadyLocked(const ObjectID& id) {
  if (js_subscribed_.erase(id)) {
    Event e{Event::Type::kObjectReady};
    e.object_id = id;
    EmitLocked(std::move(e));
  }
  auto rw = remote_waiters_.find(id);
  if (rw != remote_waiters_.end()) {
    const StoredObject* o = memory_store_.Find(id);
    for (auto& [conn, req] : rw->second) {
      Fbb fbb(256);
      ReturnValue v;
      if (o) { v.data = o->data; v.in_plasma = o->in_plasma; v.is_error = o->is_error; v.size = o->size; }
      auto item = BuildReturn(fbb, id, v);
      QueueToLocked(conn, FinishFrame(fbb, proto::CreateGetObjectReply(fbb, req, 0, 0, item)));
    }
    remote_waiters_.erase(rw);
  }
  auto dep = dependents_.find(id);
  if (dep != dependents_.end()) {
    auto waiting = std::move(dep->second);
    dependents_.erase(dep);
    for (auto& t : waiting) {
      if (--t->unresolved == 0 && !t->cancelled) EnqueueReadyLocked(t);
    }
  }
}

// ----------------------------------------------------------------- tasks --

StatusOr<TaskID> CoreWorker::SubmitTask(SubmitRequest req, std::vector<ObjectID>* return_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return Status::Disconnected("rayts is shutting down");
  auto t = std::make_shared<Pending>();
  TaskID tid = put_task_id_;
  uint64_t counter = ++task_counter_;
  std::memcpy(tid.bytes.data() + 8, &counter, 8);
  t->task_id = tid;
  t->key = KeyOf(req);
  t->retries_left = req.max_retries;
  for (int i = 0; i < req.num_returns; i++) {
    ObjectID id = ObjectIdFor(tid, static_cast<uint32_t>(i + 1));
    refs_.AddOwned(id, 1);
    memory_store_.GetOrCreate(id);
    t->return_ids.push_back(id);
  }
  if (return_ids) *return_ids = t->return_ids;
  for (auto& a : req.args) {
    if (!a.by_ref || !(a.owner_address.empty() || a.owner_address == opts_.listen_path)) continue;
    a.owner_address.clear();
    refs_.AddSubmitted(a.id);
    t->owned_arg_refs.push_back(a.id);
    const StoredObject* o = memory_store_.Find(a.id);
    if (o && !o->ready) {
      t->unresolved++;
      dependents_[a.id].push_back(t);
    }
  }
  t->req = std::move(req);
  auto& ks = keys_[t->key];
  if (!ks) {
    ks = std::make_unique<KeyState>();
    ks->key = t->key;
    ks->resources = t->req.resources;
  }
  tasks_[tid] = t;
  if (t->unresolved == 0) EnqueueReadyLocked(t);
  return tid;
}

void CoreWorker::EnqueueReadyLocked(const std::shared_ptr<Pending>& t) {
  // A failed dependency fails the task with the same error (as in Ray).
  for (auto& id : t->owned_arg_refs) {
    const StoredObject* o = memory_store_.Find(id);
    if (o && o->ready && o->is_error) {
      FailTaskLocked(t, o->data ? *o->data : std::string("{}"));
      return;
    }
    if (!o) {
      FailTaskLocked(t, ErrorRecordJson("object_lost", "ObjectLostError",
                                        "argument object " + id.Hex() + " was freed before the task ran", id.Hex()));
      return;
    }
  }
  auto& ks = *keys_[t->key];
  ks.queue.push_back(t);
  DispatchLocked(ks);
}

void CoreWorker::DispatchLocked(KeyState& ks) {
  size_t cap = ks.spare_hint > 0 ? 1 : kMaxInflightPerLease;
  for (auto& lease : ks.leases) {
    if (lease->returned) continue;
    while (!ks.queue.empty() && lease->inflight.size() < cap) {
      auto t = ks.queue.front();
      ks.queue.pop_front();
      PushLocked(lease, t);
    }
  }
  if (!ks.queue.empty() && ks.pending_requests == 0) RequestLeaseLocked(ks);
  if (ks.queue.empty() && ks.pending_requests > 0) {
    // Nothing left to run: withdraw the outstanding lease request.
    Fbb fbb(64);
    QueueControlLocked(FinishFrame(fbb, proto::CreateCancelLeaseRequest(fbb, ks.pending_request_id)));
  }
}

void CoreWorker::RequestLeaseLocked(KeyState& ks) {
  uint64_t req_id = next_request_id_++;
  ks.pending_requests++;
  ks.pending_request_id = req_id;
  lease_requests_[req_id] = ks.key;
  Fbb fbb(256);
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> res;
  for (auto& [name, amount] : ks.resources) res.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  auto rv = fbb.CreateVector(res);
  QueueControlLocked(FinishFrame(fbb, proto::CreateRequestWorkerLease(fbb, req_id, ks.key, rv)));
}

void CoreWorker::OnControl(const proto::Envelope& env) {
  std::lock_guard<std::mutex> lock(mu_);
  switch (env.body_type()) {
    case proto::Body::LeaseReply:
      OnLeaseReplyLocked(env.body_as_LeaseReply());
      break;
    case proto::Body::GcsReply: {
      auto* r = env.body_as_GcsReply();
      Event e{Event::Type::kGcsReply};
      e.id = r->request_id();
      e.code = r->code();
      e.text = r->code() == 0 ? Str(r->body()) : Str(r->message());
      EmitLocked(std::move(e));
      break;
    }
    default:
      break;
  }
}

void CoreWorker::OnLeaseReplyLocked(const proto::LeaseReply* r) {
  auto it = lease_requests_.find(r->request_id());
  if (it == lease_requests_.end()) return;
  uint64_t key = it->second;
  lease_requests_.erase(it);
  auto kit = keys_.find(key);
  if (kit == keys_.end()) return;
  KeyState& ks = *kit->second;
  ks.pending_requests--;
  if (r->code() != 0) {
    if (static_cast<StatusCode>(r->code()) == StatusCode::kCancelled) {
      DispatchLocked(ks);
      return;
    }
    // Infeasible or failed: every queued task of this shape fails now.
    std::string json = ErrorRecordJson("system", r->code() == static_cast<int>(StatusCode::kInfeasible)
                                                     ? "InfeasibleResourceError" : "RaySystemError",
                                       Str(r->message()));
    auto queue = std::move(ks.queue);
    ks.queue.clear();
    for (auto& t : queue) FailTaskLocked(t, json);
    return;
  }
  ks.spare_hint = r->spare();
  auto lease = std::make_shared<Lease>();
  lease->lease_id = r->lease_id();
  lease->worker_id = IdFrom<WorkerID>(r->worker_id());
  lease->address = Str(r->worker_address());
  lease->key = key;
  auto sock = ConnectUnix(io_, lease->address);
  if (!sock.ok()) {
    ReturnLeaseLocked(lease, true);
    DispatchLocked(ks);
    return;
  }
  lease->conn = std::make_shared<Connection>(std::move(sock).value());
  std::weak_ptr<Lease> weak = lease;
  lease->conn->Start(
      [this, weak](const proto::Envelope& e) {
        if (auto l = weak.lock()) OnWorkerMessage(l, e);
      },
      [this, weak](const Status& s) {
        if (auto l = weak.lock()) {
          std::lock_guard<std::mutex> lock(mu_);
          OnLeaseConnectionClosedLocked(l, s);
        }
      });
  lease->idle_timer = std::make_unique<asio::steady_timer>(io_);
  ks.leases.push_back(lease);
  DispatchLocked(ks);
  MaybeReturnLeaseLocked(lease);
}

void CoreWorker::PushLocked(const std::shared_ptr<Lease>& lease, const std::shared_ptr<Pending>& t) {
  t->lease = lease;
  lease->inflight[t->task_id] = t;
  lease->idle_epoch++;
  const SubmitRequest& r = t->req;
  Fbb fbb(512);
  auto& fn = r.function;
  bool send_source = lease->sent_functions.insert(fn.hash).second;
  auto fd = proto::CreateFunctionDescriptor(fbb, fbb.CreateString(fn.hash),
                                            send_source ? fbb.CreateString(fn.source) : 0,
                                            fn.module_url.empty() ? 0 : fbb.CreateString(fn.module_url),
                                            fn.export_name.empty() ? 0 : fbb.CreateString(fn.export_name));
  std::vector<flatbuffers::Offset<proto::TaskArg>> args;
  args.reserve(r.args.size());
  for (auto& a : r.args) {
    if (!a.by_ref) {
      auto data = Bytes(fbb, reinterpret_cast<const uint8_t*>(a.data->data()), a.data->size());
      proto::TaskArgBuilder b(fbb);
      b.add_data(data);
      args.push_back(b.Finish());
      continue;
    }
    auto oid = IdBytes(fbb, a.id);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
    bool in_plasma = false;
    if (a.owner_address.empty()) {
      const StoredObject* o = memory_store_.Find(a.id);
      if (o && o->in_plasma) in_plasma = true;
      else if (o && o->data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(o->data->data()), o->data->size());
    }
    auto owner = fbb.CreateString(a.owner_address.empty() ? opts_.listen_path : a.owner_address);
    proto::TaskArgBuilder b(fbb);
    b.add_object_id(oid);
    if (!data.IsNull()) b.add_data(data);
    b.add_in_plasma(in_plasma);
    b.add_owner_address(owner);
    args.push_back(b.Finish());
  }
  auto argv = fbb.CreateVector(args);
  auto tid = IdBytes(fbb, t->task_id);
  auto caller = IdBytes(fbb, opts_.worker_id);
  auto owner = fbb.CreateString(opts_.listen_path);
  auto name = fbb.CreateString(r.name);
  auto spec = proto::CreateTaskSpec(fbb, tid, job_id_, caller, owner, fd, argv, r.num_returns, name, t->attempt);
  QueueToLocked(lease->conn, FinishFrame(fbb, proto::CreatePushTask(fbb, spec)));
}

void CoreWorker::OnWorkerMessage(const std::shared_ptr<Lease>& lease, const proto::Envelope& env) {
  std::lock_guard<std::mutex> lock(mu_);
  if (env.body_type() == proto::Body::PushTaskReply) {
    OnPushReplyLocked(lease, env.body_as_PushTaskReply());
  } else if (env.body_type() == proto::Body::GeneratorItem) {
    auto* g = env.body_as_GeneratorItem();
    if (!g->item()) return;
    ObjectID id = IdFrom<ObjectID>(g->item()->object_id());
    TaskID tid = IdFrom<TaskID>(g->task_id());
    refs_.AddOwned(id, 1);  // held for the generator until JS adopts it
    StoreResultLocked(id, g->item());
    Event e{Event::Type::kGeneratorItem};
    e.task_id = tid;
    e.object_id = id;
    e.index = g->index();
    EmitLocked(std::move(e));
  }
}

void CoreWorker::OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply* r) {
  TaskID tid = IdFrom<TaskID>(r->task_id());
  auto it = lease->inflight.find(tid);
  if (it == lease->inflight.end()) return;
  auto t = it->second;
  lease->inflight.erase(it);
  if (r->code() != 0) {
    FailTaskLocked(t, ErrorRecordJson("system", "RaySystemError", Str(r->message())));
  } else if (t->req.num_returns < 0) {
    // Streaming: an error (if any) is the last item.
    int64_t n = r->num_streamed();
    if (r->returns() && r->returns()->size() > 0) {
      auto* ret = r->returns()->Get(0);
      ObjectID id = IdFrom<ObjectID>(ret->object_id());
      refs_.AddOwned(id, 1);
      StoreResultLocked(id, ret);
      Event e{Event::Type::kGeneratorItem};
      e.task_id = tid;
      e.object_id = id;
      e.index = n;
      EmitLocked(std::move(e));
      n++;
    }
    Event e{Event::Type::kGeneratorEnd};
    e.task_id = tid;
    e.index = n;
    EmitLocked(std::move(e));
    FinishTaskLocked(t);
  } else {
    if (r->returns()) {
      for (auto* ret : *r->returns()) StoreResultLocked(IdFrom<ObjectID>(ret->object_id()), ret);
    }
    FinishTaskLocked(t);
  }
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) DispatchLocked(*kit->second);
  MaybeReturnLeaseLocked(lease);
}

void CoreWorker::FinishTaskLocked(const std::shared_ptr<Pending>& t) {
  tasks_.erase(t->task_id);
  t->lease.reset();
  auto args = std::move(t->owned_arg_refs);
  t->owned_arg_refs.clear();
  for (auto& id : args) refs_.RemoveSubmitted(id);
}

void CoreWorker::FailTaskLocked(const std::shared_ptr<Pending>& t, const std::string& json) {
  auto data = std::make_shared<const std::string>(json);
  if (t->req.num_returns < 0) {
    ObjectID id = ObjectIdFor(t->task_id, 1);
    refs_.AddOwned(id, 1);
    memory_store_.Put(id, data, false, true, data->size());
    Event e{Event::Type::kGeneratorItem};
    e.task_id = t->task_id;
    e.object_id = id;
    e.index = 0;
    EmitLocked(std::move(e));
    Event end{Event::Type::kGeneratorEnd};
    end.task_id = t->task_id;
    end.index = 1;
    EmitLocked(std::move(end));
  }
  for (auto& id : t->return_ids) {
    if (!refs_.Has(id)) continue;
    memory_store_.Put(id, data, false, true, data->size());
    ObjectReadyLocked(id);
  }
  FinishTaskLocked(t);
}

void CoreWorker::MaybeReturnLeaseLocked(const std::shared_ptr<Lease>& lease) {
  if (lease->returned || !lease->inflight.empty()) return;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end() && !kit->second->queue.empty()) return;
  uint64_t epoch = ++lease->idle_epoch;
  std::weak_ptr<Lease> weak = lease;
  lease->idle_timer->expires_after(kLeaseIdleReturn);
  lease->idle_timer->async_wait([this, weak, epoch](const asio::error_code& ec) {
    if (ec) return;
    auto l = weak.lock();
    if (!l) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (l->idle_epoch == epoch && l->inflight.empty()) ReturnLeaseLocked(l, false);
  });
}

void CoreWorker::ReturnLeaseLocked(const std::shared_ptr<Lease>& lease, bool worker_exiting) {
  if (lease->returned) return;
  lease->returned = true;
  Fbb fbb(64);
  QueueControlLocked(FinishFrame(fbb, proto::CreateReturnWorkerLease(fbb, lease->lease_id, worker_exiting)));
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    auto& v = kit->second->leases;
    v.erase(std::remove(v.begin(), v.end(), lease), v.end());
  }
  if (lease->conn) {
    auto c = lease->conn;
    asio::post(io_, [c] { c->Close(); });
  }
}

void CoreWorker::OnLeaseConnectionClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) {
  if (shutting_down_) return;
  bool was_returned = lease->returned;
  lease->returned = true;
  auto kit = keys_.find(lease->key);
  if (kit != keys_.end()) {
    auto& v = kit->second->leases;
    v.erase(std::remove(v.begin(), v.end(), lease), v.end());
  }
  auto inflight = std::move(lease->inflight);
  lease->inflight.clear();
  if (!was_returned) {
    // The worker died (its lease is reclaimed by the node server).
  }
  for (auto& [tid, t] : inflight) {
    t->lease.reset();
    if (t->cancelled) {
      FailTaskLocked(t, ErrorRecordJson("cancelled", "TaskCancelledError",
                                        "task " + t->req.name + " (" + tid.Hex() + ") was cancelled"));
    } else if (t->retries_left != 0) {
      if (t->retries_left > 0) t->retries_left--;
      t->attempt++;
      if (kit != keys_.end()) kit->second->queue.push_front(t);
    } else {
      FailTaskLocked(t, ErrorRecordJson("worker_crashed", "WorkerCrashedError",
                                        "the worker running task " + t->req.name +
                                            " died unexpectedly (" + s.message() + "); retries exhausted"));
    }
  }
  if (kit != keys_.end()) DispatchLocked(*kit->second);
}

void CoreWorker::CancelTask(const TaskID& task, bool force, bool recursive) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return;
  auto t = it->second;
  t->cancelled = true;
  std::string json = ErrorRecordJson("cancelled", "TaskCancelledError",
                                     "task " + t->req.name + " (" + task.Hex() + ") was cancelled");
  if (!t->lease) {
    auto kit = keys_.find(t->key);
    if (kit != keys_.end()) {
      auto& q = kit->second->queue;
      q.erase(std::remove(q.begin(), q.end(), t), q.end());
    }
    for (auto& [id, v] : dependents_) v.erase(std::remove(v.begin(), v.end(), t), v.end());
    FailTaskLocked(t, json);
    return;
  }
  Fbb fbb(64);
  auto tid = IdBytes(fbb, task);
  QueueToLocked(t->lease->conn, FinishFrame(fbb, proto::CreateCancelTask(fbb, tid, force, recursive)));
}

// ------------------------------------------------------------- execution --

void CoreWorker::OnInbound(const std::shared_ptr<Connection>& c, const proto::Envelope& env) {
  std::lock_guard<std::mutex> lock(mu_);
  switch (env.body_type()) {
    case proto::Body::PushTask: {
      auto* spec = env.body_as_PushTask()->spec();
      if (!spec) return;
      auto task = std::make_shared<ExecTask>();
      task->handle = next_exec_handle_++;
      task->task_id = IdFrom<TaskID>(spec->task_id());
      if (auto* f = spec->function()) {
        task->function.hash = Str(f->hash());
        task->function.source = Str(f->source());
        task->function.module_url = Str(f->module_url());
        task->function.export_name = Str(f->export_name());
      }
      task->name = Str(spec->name());
      task->num_returns = spec->num_returns();
      if (spec->args()) {
        for (auto* a : *spec->args()) {
          ExecArg arg;
          if (a->data()) arg.data = std::make_shared<const std::string>(reinterpret_cast<const char*>(a->data()->data()), a->data()->size());
          arg.by_ref = !arg.data;
          arg.in_plasma = a->in_plasma();
          arg.id = IdFrom<ObjectID>(a->object_id());
          arg.owner_address = Str(a->owner_address());
          task->args.push_back(std::move(arg));
        }
      }
      executing_[task->handle] = Executing{c, task->task_id, task->num_returns, 0};
      executing_by_task_[task->task_id] = task->handle;
      Event e{Event::Type::kExecuteTask};
      e.task = std::move(task);
      EmitLocked(std::move(e));
      break;
    }
    case proto::Body::GetObject: {
      auto* g = env.body_as_GetObject();
      ObjectID id = IdFrom<ObjectID>(g->object_id());
      const StoredObject* o = memory_store_.Find(id);
      if (o && o->ready) {
        Fbb fbb(256);
        ReturnValue v{o->data, o->in_plasma, o->is_error, o->size};
        auto item = BuildReturn(fbb, id, v);
        QueueToLocked(c, FinishFrame(fbb, proto::CreateGetObjectReply(fbb, g->request_id(), 0, 0, item)));
      } else if (o || refs_.Has(id)) {
        remote_waiters_[id].emplace_back(c, g->request_id());
      } else {
        Fbb fbb(256);
        auto item = BuildReturn(fbb, id, ReturnValue{});
        auto msg = fbb.CreateString("object " + id.Hex() + " is not owned by this process or was already freed");
        QueueToLocked(c, FinishFrame(fbb, proto::CreateGetObjectReply(fbb, g->request_id(),
                                                                       static_cast<int>(StatusCode::kObjectLost), msg, item)));
      }
      break;
    }
    case proto::Body::CancelTask: {
      auto* ct = env.body_as_CancelTask();
      TaskID tid = IdFrom<TaskID>(ct->task_id());
      if (ct->force() && executing_by_task_.count(tid)) {
        // Force: the task may be stuck in JS; end the process from here.
        ::_exit(1);
      }
      Event e{Event::Type::kCancelTask};
      e.task_id = tid;
      e.force = ct->force();
      EmitLocked(std::move(e));
      break;
    }
    default:
      break;
  }
}

void CoreWorker::SendReplyLocked(uint64_t handle, std::vector<ReturnValue> returns, int code, const std::string& msg) {
  auto it = executing_.find(handle);
  if (it == executing_.end()) return;
  Executing ex = it->second;
  executing_.erase(it);
  executing_by_task_.erase(ex.task_id);
  auto c = ex.conn.lock();
  if (!c) return;
  Fbb fbb(256);
  std::vector<flatbuffers::Offset<proto::ReturnObject>> rets;
  for (size_t i = 0; i < returns.size(); i++) {
    uint32_t index = ex.num_returns < 0 ? static_cast<uint32_t>(ex.streamed + 1) : static_cast<uint32_t>(i + 1);
    rets.push_back(BuildReturn(fbb, ObjectIdFor(ex.task_id, index), returns[i]));
  }
  auto rv = fbb.CreateVector(rets);
  auto tid = IdBytes(fbb, ex.task_id);
  auto m = msg.empty() ? 0 : fbb.CreateString(msg);
  QueueToLocked(c, FinishFrame(fbb, proto::CreatePushTaskReply(fbb, tid, code, m, rv, static_cast<int>(ex.streamed))));
}

void CoreWorker::TaskDone(uint64_t handle, std::vector<ReturnValue> returns) {
  std::lock_guard<std::mutex> lock(mu_);
  SendReplyLocked(handle, std::move(returns), 0, "");
}

void CoreWorker::ReportGeneratorItem(uint64_t handle, int64_t index, ReturnValue item) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = executing_.find(handle);
  if (it == executing_.end()) return;
  auto c = it->second.conn.lock();
  it->second.streamed = std::max(it->second.streamed, index + 1);
  if (!c) return;
  Fbb fbb(256);
  auto ret = BuildReturn(fbb, ObjectIdFor(it->second.task_id, static_cast<uint32_t>(index + 1)), item);
  auto tid = IdBytes(fbb, it->second.task_id);
  QueueToLocked(c, FinishFrame(fbb, proto::CreateGeneratorItem(fbb, tid, static_cast<int>(index), ret)));
}

void CoreWorker::SetBlocked(bool blocked) {
  std::lock_guard<std::mutex> lock(mu_);
  if (opts_.is_driver) return;
  int before = blocked_depth_;
  blocked_depth_ += blocked ? 1 : -1;
  if (blocked_depth_ < 0) blocked_depth_ = 0;
  if ((before == 0) != (blocked_depth_ == 0)) {
    Fbb fbb(32);
    QueueControlLocked(FinishFrame(fbb, proto::CreateNotifyBlocked(fbb, blocked_depth_ > 0)));
  }
}

uint64_t CoreWorker::GcsCall(const std::string& method, const std::string& body) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_request_id_++;
  Fbb fbb(128 + body.size());
  auto m = fbb.CreateString(method);
  auto b = fbb.CreateString(body);
  QueueControlLocked(FinishFrame(fbb, proto::CreateGcsRequest(fbb, id, m, b)));
  return id;
}

CoreWorker::Stats CoreWorker::GetStats() {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s{};
  s.owned_refs = refs_.size();
  s.memory_store_objects = memory_store_.size();
  for (auto& [k, ks] : keys_) {
    s.queued_tasks += ks->queue.size();
    s.leases += ks->leases.size();
    for (auto& l : ks->leases) s.inflight_tasks += l->inflight.size();
  }
  s.bad_decrements = refs_.bad_decrements();
  return s;
}

}  // namespace rayts
