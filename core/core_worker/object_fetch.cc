// ObjectManager: ray.wait with fetchLocal. A ready object whose value is in
// plasma on another node is brought to this node before the wait counts it
// (Ray's semantics): this process asks its node server (FetchObject on the
// control connection), which pulls it (core/raylet/object_pull.h) and
// answers once it is sealed here; each answer becomes a kObjectLocal event.
// One request per object in flight per process.
#include "core/core_worker/object_manager.h"
#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

void ObjectManager::FetchLocal(const std::vector<ObjectID>& ids) {
  CoreGuard lock(ctx_);
  for (const ObjectID& id : ids) {
    const StoredObject* o = store_.Find(id);
    const bool remote = o && o->ready && o->in_plasma && !o->location.IsNil() && o->location != ctx_.node_id();
    if (!remote) {
      Event e{Event::Type::kObjectLocal};
      e.object_id = id;
      ctx_.Emit(std::move(e));
      continue;
    }
    if (!fetching_.insert(id).second) continue;  // asked already: its reply answers every wait
    // The owner first (the node reports the copy it pulls there), then the
    // fetch with the other copies as sources after the primary's node.
    const ReferenceCounter::Ref* r = refs_->Find(id);
    Fbb ofb(128);
    auto ov = IdBytes(ofb, id);
    auto oa = ofb.CreateString(r && !r->owned && !r->owner_address.empty() ? r->owner_address : ctx_.address());
    transport_.SendToNode(FinishFrame(ofb, proto::CreateObjectOwner(ofb, ov, oa)));
    Fbb fbb(128);
    auto oid = IdBytes(fbb, id);
    auto node = IdBytes(fbb, o->location);
    const std::string copies = CopiesBytesLocked(id, o->location);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> sources;
    if (!copies.empty()) sources = fbb.CreateVector(reinterpret_cast<const uint8_t*>(copies.data()), copies.size());
    transport_.SendToNode(FinishFrame(fbb, proto::CreateFetchObject(fbb, oid, node, o->size, sources)));
  }
}

void ObjectManager::OnFetchReplyLocked(const proto::FetchObjectReply& r) {
  if (!r.object_id() || r.object_id()->size() != ObjectID::kSize) return;
  ObjectID id = ObjectID::FromBytes(r.object_id()->data());
  fetching_.erase(id);
  Event e{Event::Type::kObjectLocal};
  e.object_id = id;
  e.code = r.code();
  ctx_.Emit(std::move(e));
}

}  // namespace rayts
