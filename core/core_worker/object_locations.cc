// ObjectManager: where the copies of an object are (Ray's owner-based object
// directory). The owner keeps, per object in plasma, the primary's node
// (StoredObject::location) and the other nodes holding a copy (copies_),
// as those nodes report them in batches (ObjectLocationsUpdate, sent by
// their node servers: core/raylet/node_server_locations.cc). Every answer to
// a GetObject names them (ReturnObject.copies); a reader passes them to its
// node as pull sources after the primary (PlasmaGet.pull_sources,
// FetchObject.sources) and names the owner first (ObjectOwner) so that its
// node reports the copy it pulls. When the primary's node dies, or a read
// finds the primary gone, a copy on an alive node becomes the primary
// (PromoteCopyLocked: PinObjects pins it there) instead of a rebuild.
#include <algorithm>

#include "core/core_worker/object_manager.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

namespace {
void AppendId(std::string* out, const NodeID& n) { out->append(reinterpret_cast<const char*>(n.data()), NodeID::kSize); }
void Erase(std::vector<NodeID>* v, const NodeID& n) { v->erase(std::remove(v->begin(), v->end(), n), v->end()); }
}  // namespace

std::string ObjectManager::CopiesBytesLocked(const ObjectID& id, const NodeID& except) const {
  std::string out;
  auto it = copies_.find(id);
  if (it == copies_.end()) return out;
  for (const NodeID& n : it->second.held) {
    if (n != except) AppendId(&out, n);
  }
  return out;
}

ReturnValue ObjectManager::AnswerForLocked(const ObjectID& id, const StoredObject* o) const {
  ReturnValue v;
  if (!o) return v;
  v.data = o->data;
  v.in_plasma = o->in_plasma;
  v.is_error = o->is_error;
  v.size = o->size;
  if (o->in_plasma) {
    // A getter on another node pulls it from the primary's node, then from
    // the other copies (core/raylet/object_pull.h).
    v.node = o->location.IsNil() ? ctx_.node_id() : o->location;
    if (!copies_.empty()) v.copies = CopiesBytesLocked(id, v.node);
  }
  return v;
}

PullFrom ObjectManager::RemoteLocation(const ObjectID& id) {
  CoreGuard lock(ctx_);
  PullFrom f;
  const StoredObject* o = store_.Find(id);
  if (!o || !o->in_plasma || o->location.IsNil() || o->location == ctx_.node_id()) return f;
  f.node = o->location;
  f.size = o->size;
  f.sources = CopiesBytesLocked(id, f.node);
  const ReferenceCounter::Ref* r = refs_->Find(id);
  f.owner = r && !r->owned && !r->owner_address.empty() ? r->owner_address : ctx_.address();
  return f;
}

void ObjectManager::OnLocationsUpdateLocked(const proto::ObjectLocationsUpdate& u) {
  if (!u.node_id() || u.node_id()->size() != NodeID::kSize) return;
  const NodeID node = IdFrom<NodeID>(u.node_id());
  if (ctx_.dead_nodes().Find(node)) return;  // late: its copies are gone
  auto each = [&](const flatbuffers::Vector<uint8_t>* ids, auto&& f) {
    if (!ids) return;
    for (size_t i = 0; i + ObjectID::kSize <= ids->size(); i += ObjectID::kSize) f(ObjectID::FromBytes(ids->data() + i));
  };
  each(u.added(), [&](const ObjectID& id) {
    ctx_.AssertHeld();
    const ReferenceCounter::Ref* r = refs_->Find(id);
    const StoredObject* o = store_.Find(id);
    if (!r || !r->owned || !o || !o->in_plasma) return;  // freed meanwhile (the free reached that node too)
    const NodeID primary = o->location.IsNil() ? ctx_.node_id() : o->location;
    if (node == primary) return;
    Copies& c = copies_[id];
    Erase(&c.asked, node);
    if (std::find(c.held.begin(), c.held.end(), node) == c.held.end()) c.held.push_back(node);
  });
  each(u.removed(), [&](const ObjectID& id) {
    ctx_.AssertHeld();
    auto it = copies_.find(id);
    if (it == copies_.end()) return;
    Erase(&it->second.held, node);
    if (it->second.held.empty() && it->second.asked.empty()) copies_.erase(it);
  });
}

void ObjectManager::DropNodeCopiesLocked(const NodeID& dead) {
  for (auto it = copies_.begin(); it != copies_.end();) {
    Erase(&it->second.held, dead);
    Erase(&it->second.asked, dead);
    if (it->second.held.empty() && it->second.asked.empty()) it = copies_.erase(it);
    else ++it;
  }
}

bool ObjectManager::PromoteCopyLocked(const ObjectID& id) {
  const ReferenceCounter::Ref* r = refs_->Find(id);
  const StoredObject* o = store_.Find(id);
  auto it = copies_.find(id);
  if (!r || !r->owned || !o || !o->ready || !o->in_plasma || it == copies_.end()) return false;
  auto& held = it->second.held;
  auto alive = std::find_if(held.begin(), held.end(), [&](const NodeID& n) {
    ctx_.AssertHeld();
    return !ctx_.dead_nodes().Find(n);
  });
  if (alive == held.end()) return false;
  const NodeID to = *alive;
  held.erase(alive);
  const NodeID from = o->location.IsNil() ? ctx_.node_id() : o->location;
  // The old primary's node, if it lives, may still hold it: freed with the object.
  if (from != ctx_.node_id() && !ctx_.dead_nodes().Find(from)) it->second.asked.push_back(from);
  store_.SetLocation(id, to == ctx_.node_id() ? NodeID::Nil() : to);
  // Pinned there until the owner frees it (FreeObjects names its node: the
  // location). If it was evicted meanwhile, the next read finds it missing
  // and recovers it as any lost copy.
  Fbb fbb(128);
  auto ov = IdBytes(fbb, id);
  auto nv = IdBytes(fbb, to);
  transport_.SendToNode(FinishFrame(fbb, proto::CreatePinObjects(fbb, ov, nv)));
  return true;
}

}  // namespace rayts
