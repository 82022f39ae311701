#include "core/core_worker/core_worker.h"
#include "core/common/error_record.h"

#include <unistd.h>

#include <cstring>

#include "core/common/json.h"
#include "core/core_worker/internal.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

CoreWorker::CoreWorker(CoreWorkerOptions opts)
    : opts_(std::move(opts)),
      // Called from inside refs_'s methods, which run under mu_.
      refs_([this](const ObjectID& id, const ReferenceCounter::Ref& r)
                NO_THREAD_SAFETY_ANALYSIS { OnReleased(id, r); }),
      put_task_id_(TaskID::FromRandom()),
      lineage_(opts_.lineage_max_bytes) {}

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

  // 2. Plasma channel: register, map the store the node passes.
  PlasmaClient::Registration reg{opts_.worker_id, opts_.is_driver, opts_.listen_path, opts_.job_id};
  auto node = plasma_.Connect(opts_.node_socket, reg);
  if (!node.ok()) return node.status();
  node_id_ = node->node_id;
  job_id_ = node->job_id;
  session_dir_ = node->session_dir;

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
  control_->Send(PlasmaClient::RegisterFrame(reg, /*control=*/true));

  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  Accept();
  io_thread_ = std::thread([this] {
    io_thread_id_.store(std::this_thread::get_id());
    io_.run();
  });
  return Status::OK();
}

void CoreWorker::Shutdown() {
  {
    Guard lock(this);
    if (shutting_down_) return;
    shutting_down_ = true;
  }
  asio::post(io_, [this] {
    asio::error_code ec;
    if (acceptor_) acceptor_->close(ec);
    if (control_) control_->Close();
    std::vector<std::shared_ptr<Connection>> conns;
    {
      Guard lock(this);
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
    {
      Guard lock(this);
      inbound_.push_back(weak);
    }
    c->Start([this, weak](const proto::Envelope& e) {
               if (auto c = weak.lock()) OnInbound(c, e);
             },
             [this, weak](const Status&) {
               Guard lock(this);
               DropCallerLocked(weak.lock());
             });
    Accept();
  });
}

// ---------------------------------------------------------------- outbox --

void CoreWorker::EmitLocked(Event e) {
  // The host is notified when the lock is released (Guard), so the JS thread
  // it wakes does not find mu_ still held.
  if (events_.empty()) notify_pending_ = true;
  events_.push_back(std::move(e));
}

CoreWorker::Guard::~Guard() {
  bool notify = cw_->notify_pending_;
  cw_->notify_pending_ = false;
  cw_->mu_.Unlock();
  if (notify && cw_->opts_.notify) cw_->opts_.notify();
}

std::vector<Event> CoreWorker::DrainEvents() {
  Guard lock(this);
  std::vector<Event> out;
  out.swap(events_);
  return out;
}

void CoreWorker::QueueControlLocked(flatbuffers::DetachedBuffer frame) { QueueToLocked(control_, std::move(frame)); }

void CoreWorker::QueueToLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame) {
  if (!c) return;
  outbox_.emplace_back(c, std::move(frame));
  if (std::this_thread::get_id() == io_thread_id_.load(std::memory_order_relaxed)) {
    // io thread: flush once the current handler (a whole read batch) is done.
    // A post from the io thread itself costs no wake-up.
    if (!io_flush_scheduled_) {
      io_flush_scheduled_ = true;
      asio::post(io_, [this] {
        Guard lock(this);
        io_flush_scheduled_ = false;
        SendOutboxLocked();
      });
    }
    return;
  }
  // Host (JS) thread: the host flushes at the end of its turn.
  host_flush_requested_.store(true, std::memory_order_relaxed);
}

void CoreWorker::SendOutboxLocked() {
  // Consecutive frames to one connection go out in one sendmsg.
  std::vector<flatbuffers::DetachedBuffer> run;
  Connection* current = nullptr;
  std::shared_ptr<Connection> conn;
  for (auto& [c, f] : outbox_) {
    if (c.get() != current) {
      if (conn) conn->SendBatch(&run);
      conn = c;
      current = c.get();
    }
    run.push_back(std::move(f));
  }
  if (conn) conn->SendBatch(&run);
  outbox_.clear();
}

void CoreWorker::FlushOutbox() {
  Guard lock(this);
  SendOutboxLocked();
}

bool CoreWorker::TakeHostFlushRequest() {
  return host_flush_requested_.exchange(false, std::memory_order_relaxed);
}

// --------------------------------------------------------------- objects --

ObjectID CoreWorker::NextPutId() {
  Guard lock(this);
  return ObjectIdFor(put_task_id_, kPutIndexBit | static_cast<uint32_t>(++put_counter_ & 0x7fffffff));
}

ObjectID CoreWorker::PutInlineNew(std::shared_ptr<const std::string> data) {
  Guard lock(this);
  ObjectID id = ObjectIdFor(put_task_id_, kPutIndexBit | static_cast<uint32_t>(++put_counter_ & 0x7fffffff));
  refs_.AddOwned(id, 1);
  uint64_t size = data ? data->size() : 0;
  memory_store_.Put(id, std::move(data), false, false, size);
  if (!staged_nested_.empty()) HoldNestedLocked(TakeStagedLocked(), &id, nullptr);
  return id;
}

void CoreWorker::PutInline(const ObjectID& id, std::shared_ptr<const std::string> data) {
  Guard lock(this);
  refs_.AddOwned(id, 1);
  uint64_t size = data ? data->size() : 0;
  memory_store_.Put(id, std::move(data), false, false, size);
  if (!staged_nested_.empty()) HoldNestedLocked(TakeStagedLocked(), &id, nullptr);
}

StatusOr<uint64_t> CoreWorker::PlasmaCreate(const ObjectID& id, uint64_t size, bool allow_spill) {
  auto offset = plasma_.Create(id, size, allow_spill);
  if (!offset.ok()) return offset.status();
  {
    Guard lock(this);
    creating_sizes_[id] = size;
  }
  return offset;
}

Status CoreWorker::PlasmaSeal(const ObjectID& id, bool owned_put) {
  if (Status s = plasma_.Seal(id); !s.ok()) {
    Guard lock(this);
    creating_sizes_.erase(id);
    if (owned_put) staged_nested_.clear();  // the put failed: nothing holds its nested refs
    return s;
  }
  Guard lock(this);
  uint64_t size = 0;
  if (auto it = creating_sizes_.find(id); it != creating_sizes_.end()) {
    size = it->second;
    creating_sizes_.erase(it);
  }
  if (owned_put) {
    refs_.AddOwned(id, 1);
    memory_store_.Put(id, nullptr, true, false, size);
    if (!staged_nested_.empty()) HoldNestedLocked(TakeStagedLocked(), &id, nullptr);
  }
  return Status::OK();
}


LookupResult CoreWorker::TryGet(const ObjectID& id) {
  Guard lock(this);
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
  Guard lock(this);
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
      StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError",
                                           "object " + id.Hex() + " was already freed by its owner", id.Hex()));
    }
    return;
  }
  if (borrowed_fetching_.insert(id).second) {
    auto c = OwnerConnectionLocked(owner_address);
    if (!c) {
      StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kOwnerDied, "OwnerDiedError",
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
    std::weak_ptr<Connection> weak = c;
    c->Start([this, address](const proto::Envelope& e) { OnOwnerMessage(address, e); },
             [this, address, weak](const Status&) {
               Guard lock(this);
               OnPeerClosedLocked(address, weak.lock());
             });
  });
  return c;
}

void CoreWorker::OnOwnerMessage(const std::string& address, const proto::Envelope& env) {
  if (env.body_type() == proto::Body::BorrowerAck) {
    Guard lock(this);
    AckedLocked(env.body_as_BorrowerAck()->request_id());
    return;
  }
  if (env.body_type() != proto::Body::GetObjectReply) return;
  auto* r = env.body_as_GetObjectReply();
  Guard lock(this);
  if (!r->item()) return;
  ObjectID id = IdFrom<ObjectID>(r->item()->object_id());
  borrowed_fetching_.erase(id);
  if (r->code() != 0) {
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError", Str(r->message()), id.Hex()));
    return;
  }
  StoreResultLocked(id, r->item());
}

void CoreWorker::AddLocalRef(const ObjectID& id, const std::string& owner_address) {
  Guard lock(this);
  std::string owner = owner_address == opts_.listen_path ? std::string() : owner_address;
  if (refs_.AddLocal(id, owner)) RegisterBorrowLocked(id, owner);
}

void CoreWorker::AddLocalRefs(const std::vector<std::pair<ObjectID, std::string>>& refs) {
  Guard lock(this);
  for (auto& [id, owner_address] : refs) {
    std::string owner = owner_address == opts_.listen_path ? std::string() : owner_address;
    if (refs_.AddLocal(id, owner)) RegisterBorrowLocked(id, owner);
  }
}

void CoreWorker::ReadyMask(const std::vector<ObjectID>& ids, uint8_t* out) {
  Guard lock(this);
  for (size_t i = 0; i < ids.size(); i++) {
    const StoredObject* o = memory_store_.Find(ids[i]);
    out[i] = o && o->ready ? 1 : 0;
  }
}

void CoreWorker::RemoveLocalRefs(const std::vector<ObjectID>& ids) {
  Guard lock(this);
  for (auto& id : ids) refs_.RemoveLocal(id);
}

void CoreWorker::OnReleased(const ObjectID& id, const ReferenceCounter::Ref& ref) {
  // mu_ is held (called from inside refs_ operations).
  const StoredObject* o = memory_store_.Find(id);
  if (ref.owned && o && o->in_plasma) QueueControlLocked(PlasmaClient::DeleteFrame(id));
  if (ref.owned && !IsPutObject(id)) lineage_.ReturnReleased(TaskIdOf(id));
  if (!ref.owned && ref.registered > 0) {
    // Give our registrations back to the owner (after any pending ack).
    auto c = OwnerConnectionLocked(ref.owner_address);
    if (c) {
      Fbb fbb(128);
      auto oid = IdBytes(fbb, id);
      auto me = fbb.CreateString(opts_.listen_path);
      QueueReleasingLocked(c, FinishFrame(fbb, proto::CreateRemoveBorrower(fbb, oid, me, ref.registered)));
    }
  }
  if (ref.owned && !actor_tokens_.empty()) ActorTokenReleasedLocked(id);
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
  if (ret->nested() && ret->nested()->size() > 0) AdoptNestedLocked(id, refs_.Has(id), ret);
  if (!refs_.Has(id)) {
    // Every handle was dropped while the task ran: free the value at once.
    if (in_plasma) QueueControlLocked(PlasmaClient::DeleteFrame(id));
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

void CoreWorker::OnControl(const proto::Envelope& env) {
  Guard lock(this);
  switch (env.body_type()) {
    case proto::Body::LeaseReply:
      OnLeaseReplyLocked(env.body_as_LeaseReply());
      break;
    case proto::Body::GcsReply:
    case proto::Body::NodeStatsReply:
    case proto::Body::StoreObjectsReply: {
      uint64_t rid = gcs::QueryReplyId(env);
      if (rid == 0) break;  // fire-and-forget (actor table updates)
      auto aw = actor_waits_.find(rid);
      if (aw != actor_waits_.end()) {
        uint64_t key = aw->second;
        actor_waits_.erase(aw);
        KeyState* ks = FindPtr(keys_, key);
        ActorState* a = FindPtr(actors_, key);
        if (ks && a && env.body_type() == proto::Body::GcsReply)
          OnActorAddressLocked(*ks, *a, gcs::ReadWaitActorReply(*env.body_as_GcsReply()));
        break;
      }
      auto json = gcs::QueryReplyJson(env);
      Event e{Event::Type::kGcsReply};
      e.id = rid;
      e.code = json.ok() ? 0 : static_cast<int>(json.status().code());
      e.text = json.ok() ? *json : json.status().message();
      EmitLocked(std::move(e));
      break;
    }
    case proto::Body::TriggerGc:
      EmitLocked(Event(Event::Type::kTriggerGc));
      break;
    case proto::Body::KillWorker:  // the node's memory monitor: never returns
      OnKillWorkerLocked(Str(env.body_as_KillWorker()->reason()));
      break;
    default:
      break;
  }
}

void CoreWorker::SetBlocked(bool blocked) {
  Guard lock(this);
  if (opts_.is_driver) return;
  int before = blocked_depth_;
  blocked_depth_ += blocked ? 1 : -1;
  if (blocked_depth_ < 0) blocked_depth_ = 0;
  if ((before == 0) != (blocked_depth_ == 0)) {
    Fbb fbb(32);
    QueueControlLocked(FinishFrame(fbb, proto::CreateNotifyBlocked(fbb, blocked_depth_ > 0)));
  }
}

void CoreWorker::ReportExit(int code) {
  Guard lock(this);
  for (auto& w : inbound_) {
    auto c = w.lock();
    if (!c || c->closed()) continue;
    Fbb fbb(32);
    c->Send(FinishFrame(fbb, proto::CreateWorkerExiting(fbb, code)));  // written at once if nothing is queued
  }
}

StatusOr<uint64_t> CoreWorker::Query(int query) {
  Guard lock(this);
  uint64_t id = next_request_id_++;
  auto frame = gcs::QueryFrame(id, query);
  if (!frame.ok()) return frame.status();
  QueueControlLocked(std::move(frame).value());
  return id;
}

CoreWorker::Stats CoreWorker::GetStats() {
  Guard lock(this);
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
