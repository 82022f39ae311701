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
    Fbb fbb(128);
    auto oid = IdBytes(fbb, id);
    auto node = IdBytes(fbb, o->location);
    transport_.SendToNode(FinishFrame(fbb, proto::CreateFetchObject(fbb, oid, node, o->size)));
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
