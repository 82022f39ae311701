#include "core/core_worker/object_manager.h"

#include <algorithm>

#include "core/common/error_record.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

// ------------------------------------------------------------------ puts --

ObjectID ObjectManager::NextPutId() {
  CoreGuard lock(ctx_);
  return ctx_.NextPutId();
}

void ObjectManager::PutOwnedLocked(const ObjectID& id, std::shared_ptr<const std::string> data) {
  refs_->AddOwned(id, 1);
  uint64_t size = data ? data->size() : 0;
  store_.Put(id, std::move(data), false, false, size);
  if (borrowers_.HasStagedLocked()) borrowers_.HoldNestedLocked(borrowers_.TakeStagedLocked(), &id, nullptr);
}

ObjectID ObjectManager::PutInlineNew(std::shared_ptr<const std::string> data) {
  CoreGuard lock(ctx_);
  ObjectID id = ctx_.NextPutId();
  PutOwnedLocked(id, std::move(data));
  return id;
}

void ObjectManager::PutInline(const ObjectID& id, std::shared_ptr<const std::string> data) {
  CoreGuard lock(ctx_);
  PutOwnedLocked(id, std::move(data));
}

StatusOr<uint64_t> ObjectManager::PlasmaCreate(const ObjectID& id, uint64_t size, bool allow_spill) {
  if (!plasma_) return Status::Disconnected("no object store connection");
  WorkerID owner = WorkerID::Nil();
  if (!IsPutObject(id) && hooks_.owner_of) {
    CoreGuard lock(ctx_);
    owner = hooks_.owner_of(id);
  }
  auto offset = plasma_->Create(id, size, allow_spill, owner);
  if (!offset.ok()) return offset.status();
  CoreGuard lock(ctx_);
  creating_sizes_[id] = size;
  return offset;
}

Status ObjectManager::PlasmaSeal(const ObjectID& id, bool owned_put) {
  Status sealed = plasma_ ? plasma_->Seal(id) : Status::Disconnected("no object store connection");
  CoreGuard lock(ctx_);
  if (!sealed.ok()) {
    creating_sizes_.erase(id);
    if (owned_put) borrowers_.ClearStagedLocked();  // the put failed: nothing holds its nested refs
    return sealed;
  }
  uint64_t size = 0;
  if (auto it = creating_sizes_.find(id); it != creating_sizes_.end()) {
    size = it->second;
    creating_sizes_.erase(it);
  }
  if (owned_put) {
    refs_->AddOwned(id, 1);
    store_.Put(id, nullptr, true, false, size);
    if (borrowers_.HasStagedLocked()) borrowers_.HoldNestedLocked(borrowers_.TakeStagedLocked(), &id, nullptr);
  }
  return Status::OK();
}

// ----------------------------------------------------------------- reads --

LookupResult ObjectManager::TryGet(const ObjectID& id) {
  CoreGuard lock(ctx_);
  LookupResult r;
  const StoredObject* o = store_.Find(id);
  if (!o) return r;
  r.known = true;
  r.ready = o->ready;
  r.in_plasma = o->in_plasma;
  r.is_error = o->is_error;
  r.data = o->data;
  r.size = o->size;
  return r;
}

void ObjectManager::ReadyMask(const std::vector<ObjectID>& ids, uint8_t* out) {
  CoreGuard lock(ctx_);
  for (size_t i = 0; i < ids.size(); i++) {
    const StoredObject* o = store_.Find(ids[i]);
    if (!o || !o->ready) out[i] = 0;
    else out[i] = o->in_plasma && !o->location.IsNil() && o->location != ctx_.node_id() ? 2 : 1;
  }
}

void ObjectManager::Subscribe(const ObjectID& id, const std::string& owner_address) {
  CoreGuard lock(ctx_);
  const StoredObject* o = store_.Find(id);
  if (o && o->ready) {
    Event e{Event::Type::kObjectReady};
    e.object_id = id;
    ctx_.Emit(std::move(e));
    return;
  }
  js_subscribed_.insert(id);
  if (ctx_.IsSelf(owner_address)) {
    if (!o && !refs_->Has(id)) {
      StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError",
                                           "object " + id.Hex() + " was already freed by its owner", id.Hex()));
    }
    return;
  }
  if (!borrowed_fetching_.insert(id).second) return;
  auto link = borrowers_.LinkToLocked(owner_address);
  if (!link) {
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kOwnerDied, "OwnerDiedError",
                                         "the owner of object " + id.Hex() + " (" + owner_address +
                                             ") is unreachable: it has died",
                                         id.Hex()));
    return;
  }
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto node = fbb.CreateVector(ctx_.node_id().data(), NodeID::kSize);
  link->Send(FinishFrame(fbb, proto::CreateGetObject(fbb, ctx_.NextRequestId(), oid, false, node)));
}

// ------------------------------------------------------------- local refs --

void ObjectManager::AddLocalRefLocked(const ObjectID& id, const std::string& owner_address) {
  std::string owner = owner_address == ctx_.address() ? std::string() : owner_address;
  if (refs_->AddLocal(id, owner)) borrowers_.RegisterBorrowLocked(id, owner);
}

void ObjectManager::AddLocalRef(const ObjectID& id, const std::string& owner_address) {
  CoreGuard lock(ctx_);
  AddLocalRefLocked(id, owner_address);
}

void ObjectManager::AddLocalRefs(const std::vector<std::pair<ObjectID, std::string>>& refs) {
  CoreGuard lock(ctx_);
  for (auto& [id, owner_address] : refs) AddLocalRefLocked(id, owner_address);
}

void ObjectManager::AddLocalRefs(const uint8_t* ids, size_t n, const uint32_t* owner_of,
                                 const std::vector<std::string>& owners) {
  // Normalized once per distinct owner: this process's own address means owned here.
  std::vector<std::string> owner(owners.size());
  for (size_t k = 0; k < owners.size(); k++) {
    if (owners[k] != ctx_.address()) owner[k] = owners[k];
  }
  static const std::string kHere;
  CoreGuard lock(ctx_);
  for (size_t i = 0; i < n; i++) {
    ObjectID id = ObjectID::FromBytes(ids + i * ObjectID::kSize);
    const std::string& o = owner_of[i] < owner.size() ? owner[owner_of[i]] : kHere;
    if (refs_->AddLocal(id, o)) borrowers_.RegisterBorrowLocked(id, o);
  }
}

void ObjectManager::RemoveLocalRefs(const uint8_t* ids, size_t n) {
  CoreGuard lock(ctx_);
  for (size_t i = 0; i < n; i++) refs_->RemoveLocal(ObjectID::FromBytes(ids + i * ObjectID::kSize));
}

void ObjectManager::RemoveLocalRefs(const std::vector<ObjectID>& ids) {
  CoreGuard lock(ctx_);
  for (auto& id : ids) refs_->RemoveLocal(id);
}

void ObjectManager::FreeCopiesLocked(const ObjectID& id, const std::vector<NodeID>& nodes) {
  if (nodes.empty()) return;
  Fbb fbb(128);
  auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
  std::string ids;
  for (auto& n : nodes) ids.append(reinterpret_cast<const char*>(n.data()), NodeID::kSize);
  auto nv = fbb.CreateVector(reinterpret_cast<const uint8_t*>(ids.data()), ids.size());
  transport_.SendToNode(FinishFrame(fbb, proto::CreateFreeObjects(fbb, oid, nv)));
}

void ObjectManager::OnReleasedLocked(const ObjectID& id, const ReferenceCounter::Ref& ref) {
  const StoredObject* o = store_.Find(id);
  if (ref.owned && o && o->in_plasma) transport_.SendToNode(PlasmaClient::DeleteFrame(id));
  auto copies = copies_.find(id);
  std::vector<NodeID> nodes;
  if (copies != copies_.end()) {
    nodes = std::move(copies->second.held);
    nodes.insert(nodes.end(), copies->second.asked.begin(), copies->second.asked.end());
    copies_.erase(copies);
  }
  if (ref.owned && o && o->in_plasma && !o->location.IsNil()) nodes.push_back(o->location);
  // Copies on other nodes (the primary of a task's result made there, the
  // copies pulled by askers there).
  if (ref.owned && o && o->in_plasma) FreeCopiesLocked(id, nodes);
  if (ref.owned && hooks_.on_owned_released) hooks_.on_owned_released(id);
  borrowers_.ReleaseLocked(id, ref);
  store_.Erase(id);
  js_subscribed_.erase(id);
}

// ---------------------------------------------------------------- results --

void ObjectManager::PutErrorLocked(const ObjectID& id, const std::shared_ptr<const std::string>& data) {
  store_.Put(id, data, false, true, data->size());
  ObjectReadyLocked(id);
}

void ObjectManager::StoreErrorLocked(const ObjectID& id, const std::string& json) {
  PutErrorLocked(id, std::make_shared<const std::string>(json));
}

void ObjectManager::StoreResultLocked(const ObjectID& id, const proto::ReturnObject* ret) {
  bool in_plasma = ret->in_plasma();
  if (ret->nested() && ret->nested()->size() > 0) borrowers_.AdoptNestedLocked(id, refs_->Has(id), ret);
  if (!refs_->Has(id)) {
    // Every handle was dropped while the task ran: free the value at once
    // (where it was made).
    if (in_plasma) transport_.SendToNode(PlasmaClient::DeleteFrame(id));
    if (in_plasma && ret->node_id() && ret->node_id()->size() == NodeID::kSize) {
      NodeID node = IdFrom<NodeID>(ret->node_id());
      if (node != ctx_.node_id()) FreeCopiesLocked(id, {node});
    }
    return;
  }
  std::shared_ptr<const std::string> data;
  if (ret->data()) {
    data = std::make_shared<const std::string>(reinterpret_cast<const char*>(ret->data()->data()), ret->data()->size());
  }
  store_.Put(id, std::move(data), in_plasma, ret->is_error(), ret->size());
  if (in_plasma && ret->node_id() && ret->node_id()->size() == NodeID::kSize) {
    NodeID node = IdFrom<NodeID>(ret->node_id());
    if (node != ctx_.node_id()) store_.SetLocation(id, node);
  }
  if (in_plasma && ret->copies() && ret->copies()->size() >= NodeID::kSize) {
    // From the owner: the other copies, pull sources after the primary.
    auto& held = copies_[id].held;
    held.clear();
    for (size_t i = 0; i + NodeID::kSize <= ret->copies()->size(); i += NodeID::kSize)
      held.push_back(NodeID::FromBytes(ret->copies()->data() + i));
  }
  ObjectReadyLocked(id);
}

void ObjectManager::ObjectReadyLocked(const ObjectID& id) {
  if (js_subscribed_.erase(id)) {
    Event e{Event::Type::kObjectReady};
    e.object_id = id;
    ctx_.Emit(std::move(e));
  }
  auto rw = remote_waiters_.find(id);
  if (rw != remote_waiters_.end()) {
    const StoredObject* o = store_.Find(id);
    for (auto& [link, req] : rw->second) {
      Fbb fbb(256);
      ReturnValue v = AnswerForLocked(id, o);
      auto item = BuildReturn(fbb, id, v);
      link->Send(FinishFrame(fbb, proto::CreateGetObjectReply(fbb, req, 0, 0, item)));
    }
    remote_waiters_.erase(rw);
  }
  if (hooks_.on_ready) hooks_.on_ready(id);
}

// ------------------------------------------------------- owner / borrower --

void ObjectManager::OnGetObjectLocked(const std::shared_ptr<Link>& from, const proto::GetObject& g) {
  ObjectID id = IdFrom<ObjectID>(g.object_id());
  const StoredObject* o = store_.Find(id);
  if (g.node_id() && g.node_id()->size() == NodeID::kSize && (!o || !o->ready || o->in_plasma) && refs_->Has(id)) {
    // An asker of another node may pull a copy there: freed with the object.
    NodeID node = IdFrom<NodeID>(g.node_id());
    if (node != ctx_.node_id() && (!o || node != o->location)) {
      auto& c = copies_[id];
      if (std::find(c.held.begin(), c.held.end(), node) == c.held.end() &&
          std::find(c.asked.begin(), c.asked.end(), node) == c.asked.end())
        c.asked.push_back(node);
    }
  }
  if (o && o->ready && o->in_plasma && g.lost() && refs_->Has(id) && !from->remote()) {
    // The asker found the plasma copy missing: the host recovers it
    // (Reconstruct, on the JS thread); the answer follows when ready.
    remote_waiters_[id].emplace_back(from, g.request_id());
    if (recover_requested_.insert(id).second) {
      Event e{Event::Type::kRecoverObject};
      e.object_id = id;
      ctx_.Emit(std::move(e));
    }
  } else if (o && o->ready) {
    Fbb fbb(256);
    ReturnValue v = AnswerForLocked(id, o);
    auto item = BuildReturn(fbb, id, v);
    from->Send(FinishFrame(fbb, proto::CreateGetObjectReply(fbb, g.request_id(), 0, 0, item)));
  } else if (o || refs_->Has(id)) {
    remote_waiters_[id].emplace_back(from, g.request_id());
  } else {
    Fbb fbb(256);
    auto item = BuildReturn(fbb, id, ReturnValue{});
    auto msg = fbb.CreateString("object " + id.Hex() + " is not owned by this process or was already freed");
    from->Send(FinishFrame(
        fbb, proto::CreateGetObjectReply(fbb, g.request_id(), static_cast<int>(StatusCode::kObjectLost), msg, item)));
  }
}

void ObjectManager::OnGetObjectReplyLocked(const proto::GetObjectReply& r) {
  if (!r.item()) return;
  ObjectID id = IdFrom<ObjectID>(r.item()->object_id());
  borrowed_fetching_.erase(id);
  if (r.code() != 0) {
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLostError", Str(r.message()), id.Hex()));
    return;
  }
  StoreResultLocked(id, r.item());
}

void ObjectManager::OnOwnerGoneLocked(const std::string& address, const std::string& why) {
  std::vector<ObjectID> lost;
  for (auto& id : borrowed_fetching_) {
    const ReferenceCounter::Ref* r = refs_->Find(id);
    const StoredObject* o = store_.Find(id);
    if ((!o || !o->ready) && (!r || r->owner_address == address)) lost.push_back(id);
  }
  for (auto& id : lost) {
    borrowed_fetching_.erase(id);
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kOwnerDied, "OwnerDiedError",
                                         "the owner of object " + id.Hex() + " (" + address +
                                             ") died before the object could be fetched" +
                                             (why.empty() ? "" : ": " + why),
                                         id.Hex()));
  }
}

std::vector<ObjectID> ObjectManager::OnNodeDeadLocked(const DeadNode& dead) {
  // Borrowed objects being fetched from owners that lived there.
  std::unordered_set<std::string> owners;
  for (auto& id : borrowed_fetching_) {
    const ReferenceCounter::Ref* r = refs_->Find(id);
    if (r && !r->owned && OnNodeOf(r->owner_address, dead.socket)) owners.insert(r->owner_address);
  }
  for (auto& a : owners) OnOwnerGoneLocked(a, dead.Describe());
  DropNodeCopiesLocked(dead.id);
  // Owned objects whose primary copy was there: another copy becomes the
  // primary; without one they are lost.
  std::vector<ObjectID> there;
  refs_->ForEach([&](const ObjectID& id, const ReferenceCounter::Ref& r) {
    ctx_.AssertHeld();
    if (!r.owned) return;
    const StoredObject* o = store_.Find(id);
    if (o && o->ready && o->in_plasma && o->location == dead.id) there.push_back(id);
  });
  std::vector<ObjectID> lost;
  for (const ObjectID& id : there) {
    if (!PromoteCopyLocked(id)) lost.push_back(id);
  }
  return lost;
}

void ObjectManager::FailRemoteWaitersLocked(const ObjectID& id, const Status& s) {
  auto rw = remote_waiters_.find(id);
  if (rw == remote_waiters_.end()) return;
  for (auto& [link, req] : rw->second) {
    Fbb fbb(256);
    auto item = BuildReturn(fbb, id, ReturnValue{});
    auto msg = fbb.CreateString(s.message());
    link->Send(FinishFrame(
        fbb, proto::CreateGetObjectReply(fbb, req, static_cast<int>(StatusCode::kObjectLost), msg, item)));
  }
  remote_waiters_.erase(rw);
}

void ObjectManager::ReportLost(const ObjectID& id, const std::string& owner_address) {
  CoreGuard lock(ctx_);
  if (ctx_.IsSelf(owner_address)) return;
  store_.Erase(id);  // our cached "in plasma" is stale
  if (!borrowed_fetching_.insert(id).second) return;
  auto link = borrowers_.LinkToLocked(owner_address);
  if (!link) {
    borrowed_fetching_.erase(id);
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kOwnerDied, "OwnerDiedError",
                                         "the plasma copy of object " + id.Hex() + " was lost and its owner (" +
                                             owner_address + ") has died, so it cannot be recovered",
                                         id.Hex()));
    return;
  }
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  link->Send(FinishFrame(fbb, proto::CreateGetObject(fbb, ctx_.NextRequestId(), oid, /*lost=*/true)));
}

}  // namespace rayts
