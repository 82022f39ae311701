#include "core/raylet/plasma_service.h"

#include <algorithm>
#include <vector>

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;

std::vector<ObjectID> IdsFrom(const flatbuffers::Vector<uint8_t>* v) {
  std::vector<ObjectID> out;
  if (!v) return out;
  for (size_t i = 0; i + ObjectID::kSize <= v->size(); i += ObjectID::kSize)
    out.push_back(ObjectID::FromBytes(v->data() + i));
  return out;
}

// Seal and Lose are answered with an Ack of their Status.
void SendAck(Connection& conn, const Status& s) {
  Fbb fbb(64);
  auto msg = s.ok() ? 0 : fbb.CreateString(s.message());
  conn.Send(FinishFrame(fbb, proto::CreateAck(fbb, 0, static_cast<int>(s.code()), msg)));
}

Status OneId(const flatbuffers::Vector<uint8_t>* v, ObjectID* out) {
  auto ids = IdsFrom(v);
  if (ids.size() != 1) return Status::InvalidArgument("bad object id");
  *out = ids[0];
  return Status::OK();
}
}  // namespace

bool PlasmaService::Handle(uint64_t cid, const std::shared_ptr<Connection>& conn, const proto::Envelope& env) {
  ObjectID id;
  switch (env.body_type()) {
    case proto::Body::PlasmaCreate:
      Create(cid, *conn, *env.body_as_PlasmaCreate());
      return true;
    case proto::Body::PlasmaSeal: {
      Status s = OneId(env.body_as_PlasmaSeal()->object_id(), &id);
      SendAck(*conn, s.ok() ? store_->Seal(cid, id) : s);
      return true;
    }
    case proto::Body::PlasmaAbort:
      for (auto& oid : IdsFrom(env.body_as_PlasmaAbort()->object_id())) (void)store_->Abort(cid, oid);  // unknown: gone already
      return true;
    case proto::Body::PlasmaGet:
      Get(cid, conn, *env.body_as_PlasmaGet());
      return true;
    case proto::Body::PlasmaRelease:
      for (auto& oid : IdsFrom(env.body_as_PlasmaRelease()->object_ids())) store_->Release(cid, oid);
      return true;
    case proto::Body::PlasmaDelete:
      for (auto& oid : IdsFrom(env.body_as_PlasmaDelete()->object_ids())) Free(oid);
      return true;
#ifdef RAYTS_TEST_HOOKS
    case proto::Body::PlasmaLose: {  // test hook: simulate the loss of a copy
      Status s = OneId(env.body_as_PlasmaLose()->object_id(), &id);
      SendAck(*conn, s.ok() ? store_->Lose(id) : s);
      return true;
    }
#endif
    default:
      return false;
  }
}

void PlasmaService::Create(uint64_t cid, Connection& conn, const proto::PlasmaCreate& r) {
  ObjectID id = r.object_id() && r.object_id()->size() == ObjectID::kSize ? ObjectID::FromBytes(r.object_id()->data())
                                                                           : ObjectID::Nil();
  auto off = store_->Create(cid, id, r.data_size(), /*pinned=*/true, /*allow_spill=*/!r.no_spill());
  if (!off.ok() && (off.status().code() == StatusCode::kObjectExists ||
                    off.status().code() == StatusCode::kObjectBeingCreated)) {
    // A copy whose creator is gone: a worker killed after storing a return
    // (or put) but before its owner heard of it, so the owner re-ran the
    // task. If sealed, the new run replaces the orphan (readers of the old
    // bytes keep them under a tombstone, as for a lost copy); Ray keeps the
    // existing copy instead, but our writer cannot skip its write. If still
    // being written, the creator died mid-write and its close is not
    // processed yet: drop its store state now (the close does the rest).
    auto creator = store_->CreatorOf(id);
    if (creator && *creator != cid && hooks_.client_gone(*creator)) {
      if (store_->SealedCreator(id)) (void)store_->Lose(id);
      else store_->DisconnectClient(*creator);
      off = store_->Create(cid, id, r.data_size(), /*pinned=*/true, /*allow_spill=*/!r.no_spill());
    }
  }
  if (off.ok()) {
    WorkerID owner = r.owner_id() && r.owner_id()->size() == WorkerID::kSize ? WorkerID::FromBytes(r.owner_id()->data())
                     : hooks_.worker_of ? hooks_.worker_of(cid) : WorkerID::Nil();
    if (!owner.IsNil()) {
      auto [it, fresh] = owner_of_.emplace(id, owner);
      if (!fresh && it->second != owner) {
        owned_[it->second].erase(id);
        it->second = owner;
      }
      owned_[owner].insert(id);
    }
  }
  if (!off.ok() && off.status().code() == StatusCode::kOutOfMemory) hooks_.store_pressure();
  Fbb fbb(128);
  auto msg = off.ok() ? 0 : fbb.CreateString(off.status().message());
  conn.Send(FinishFrame(fbb, proto::CreatePlasmaCreateReply(fbb, r.request_id(), static_cast<int>(off.status().code()),
                                                            msg, off.ok() ? *off : 0)));
}

void PlasmaService::Get(uint64_t cid, const std::shared_ptr<Connection>& conn, const proto::PlasmaGet& r) {
  auto ids = IdsFrom(r.object_ids());
  uint64_t req_id = r.request_id();
  std::weak_ptr<Connection> weak = conn;
  auto answered = std::make_shared<bool>(false);  // a failed pull answers first
  auto reply = [this, weak, req_id, answered](std::vector<plasma::GetResult> results) {
    auto c = weak.lock();
    if (!c || *answered) return;
    *answered = true;
    bool restore_failed = false;
    Fbb fbb(256);
    std::vector<flatbuffers::Offset<proto::PlasmaObject>> objs;
    for (auto& g : results) {
      restore_failed |= g.error.code() == StatusCode::kOutOfMemory;
      auto msg = g.error.ok() ? 0 : fbb.CreateString(g.error.message());
      objs.push_back(proto::CreatePlasmaObject(fbb, fbb.CreateVector(g.id.data(), ObjectID::kSize), g.found,
                                               g.offset, g.size, static_cast<int>(g.error.code()), msg));
    }
    auto v = fbb.CreateVector(objs);
    c->Send(FinishFrame(fbb, proto::CreatePlasmaGetReply(fbb, req_id, v)));
    // A restore found no room: ask every process to drop what it no longer uses.
    if (restore_failed) hooks_.store_pressure();
  };
  bool pull = hooks_.pull && ids.size() == 1 && r.pull_node() && r.pull_node()->size() == NodeID::kSize;
  uint64_t get_id = store_->Get(cid, ids, reply);
  if (get_id != 0 && pull) {
    // Not sealed here: the get waits for the pulled copy's seal (a pull
    // already running is joined); a failed pull answers why.
    ObjectID id = ids[0];
    std::vector<NodeID> sources{NodeID::FromBytes(r.pull_node()->data())};
    if (auto* more = r.pull_sources()) {
      for (size_t i = 0; i + NodeID::kSize <= more->size(); i += NodeID::kSize) {
        NodeID n = NodeID::FromBytes(more->data() + i);
        if (std::find(sources.begin(), sources.end(), n) == sources.end()) sources.push_back(n);
      }
    }
    const auto prio = r.pull_priority() <= static_cast<uint8_t>(PullPriority::kTaskArgument)
                          ? static_cast<PullPriority>(r.pull_priority())
                          : PullPriority::kTaskArgument;
    // A queued pull fails with the full-store error before the get's own
    // timer (and the reader's 30 s reply bound) could answer "not found".
    const auto bound = std::min(GetTimeout(r.timeout_ms()) * 2 / 3, kPullQueueBound);
    hooks_.pull(id, std::move(sources), r.pull_size(), prio, bound,
                [this, weak, req_id, answered, get_id, id](const Status& s) {
                  if (s.ok() || *answered) return;
                  *answered = true;
                  store_->CancelGet(get_id);
                  auto c = weak.lock();
                  if (!c) return;
                  Fbb fbb(256);
                  auto msg = fbb.CreateString(s.message());
                  std::vector<flatbuffers::Offset<proto::PlasmaObject>> objs{proto::CreatePlasmaObject(
                      fbb, fbb.CreateVector(id.data(), ObjectID::kSize), false, 0, 0, static_cast<int>(s.code()), msg)};
                  auto v = fbb.CreateVector(objs);
                  c->Send(FinishFrame(fbb, proto::CreatePlasmaGetReply(fbb, req_id, v)));
                });
  }
  if (get_id != 0) {
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(GetTimeout(r.timeout_ms()));
    timer->async_wait([this, timer, get_id](const asio::error_code&) { store_->CancelGet(get_id); });
  }
}

void PlasmaService::Free(const ObjectID& oid) {
  store_->Delete(oid);
  auto it = owner_of_.find(oid);
  if (it != owner_of_.end()) {
    auto o = owned_.find(it->second);
    if (o != owned_.end() && (o->second.erase(oid), o->second.empty())) owned_.erase(o);
    owner_of_.erase(it);
  }
}

void PlasmaService::OwnerGone(const WorkerID& owner) {
  auto it = owned_.find(owner);
  if (it == owned_.end()) return;
  for (auto& id : it->second) {
    store_->Delete(id);
    owner_of_.erase(id);
  }
  owned_.erase(it);
}

}  // namespace rayts::raylet
