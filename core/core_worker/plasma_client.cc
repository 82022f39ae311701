#include "core/core_worker/plasma_client.h"

#include <unistd.h>

#include <vector>

#include "core/protocol/connection.h"

namespace rayts {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> IdBytes(Fbb& fbb, const ObjectID& id) {
  return fbb.CreateVector(id.data(), ObjectID::kSize);
}
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
Status FromCode(int code, const flatbuffers::String* message) {
  return code == 0 ? Status::OK() : Status(static_cast<StatusCode>(code), Str(message));
}
}  // namespace

flatbuffers::DetachedBuffer PlasmaClient::RegisterFrame(const Registration& r, bool control) {
  Fbb fbb(256);
  auto wid = fbb.CreateVector(r.worker_id.data(), WorkerID::kSize);
  auto path = fbb.CreateString(r.listen_path);
  proto::RegisterClientBuilder b(fbb);
  b.add_worker_id(wid);
  b.add_is_driver(r.is_driver);
  b.add_pid(::getpid());
  b.add_listen_path(path);
  b.add_job_id(r.job_id);
  b.add_control(control);
  return FinishFrame(fbb, b.Finish());
}

flatbuffers::DetachedBuffer PlasmaClient::DeleteFrame(const ObjectID& id) {
  Fbb fbb(64);
  auto oid = IdBytes(fbb, id);
  return FinishFrame(fbb, proto::CreatePlasmaDelete(fbb, oid));
}

StatusOr<PlasmaClient::NodeInfo> PlasmaClient::Connect(const std::string& node_socket, const Registration& r) {
  RAYTS_RETURN_IF_ERROR(channel_.Connect(node_socket));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  int fd = -1;
  RAYTS_RETURN_IF_ERROR(channel_.Call(RegisterFrame(r, false), proto::Body::RegisterReply, &storage, &env, &fd));
  auto* reply = env->body_as_RegisterReply();
  if (reply->code() != 0) {
    if (fd >= 0) ::close(fd);
    return FromCode(reply->code(), reply->message());
  }
  if (fd < 0) return Status::IOError("node server did not pass the object store fd");
  NodeInfo info;
  auto* nid = reply->node_id();
  if (nid && nid->size() == NodeID::kSize) info.node_id = NodeID::FromBytes(nid->data());
  info.job_id = reply->job_id();
  info.session_dir = Str(reply->session_dir());
  info.auth_token = Str(reply->auth_token());
  auto region = plasma::ShmRegion::Map(fd, reply->store_size());
  if (!region.ok()) return region.status();
  store_ = std::move(region).value();
  // Fill this process's page tables for the store in the background, up to
  // what the node server has committed, so a large write or read here takes
  // no page fault per 4 KiB page (see shm_region.h).
  store_->StartPrefault();
  return info;
}

StatusOr<uint64_t> PlasmaClient::Create(const ObjectID& id, uint64_t size, bool allow_spill, const WorkerID& owner) {
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> own;
  if (!owner.IsNil()) own = fbb.CreateVector(owner.data(), WorkerID::kSize);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaCreate(fbb, 0, oid, size, !allow_spill, own));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(channel_.Call(frame, proto::Body::PlasmaCreateReply, &storage, &env));
  auto* r = env->body_as_PlasmaCreateReply();
  RAYTS_RETURN_IF_ERROR(FromCode(r->code(), r->message()));
  return r->offset();
}

Status PlasmaClient::Seal(const ObjectID& id) {
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaSeal(fbb, oid));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(channel_.Call(frame, proto::Body::Ack, &storage, &env));
  auto* a = env->body_as_Ack();
  return FromCode(a->code(), a->message());
}

StatusOr<PlasmaView> PlasmaClient::Get(const ObjectID& id, const NodeID& pull_from, uint64_t pull_size,
                                       uint8_t pull_priority) {
  return Get(id, PullFrom{pull_from, pull_size, {}, {}}, pull_priority);
}

StatusOr<PlasmaView> PlasmaClient::Get(const ObjectID& id, const PullFrom& from, uint8_t pull_priority) {
  const NodeID& pull_from = from.node;
  if (!pull_from.IsNil() && !from.owner.empty()) {
    // The owner first, on this channel (ordered before the get): the node
    // reports the copy it pulls there.
    Fbb ofb(128);
    auto ov = IdBytes(ofb, id);
    auto oa = ofb.CreateString(from.owner);
    RAYTS_RETURN_IF_ERROR(channel_.Send(FinishFrame(ofb, proto::CreateObjectOwner(ofb, ov, oa))));
  }
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> node, sources;
  if (!pull_from.IsNil()) node = fbb.CreateVector(pull_from.data(), NodeID::kSize);
  if (!pull_from.IsNil() && !from.sources.empty()) {
    sources = fbb.CreateVector(reinterpret_cast<const uint8_t*>(from.sources.data()), from.sources.size());
  }
  // A pull is bounded by the node server (PullManager); the wait here too.
  auto frame = FinishFrame(fbb, proto::CreatePlasmaGet(fbb, 0, oid, pull_from.IsNil() ? 5000 : 60000, node,
                                                       from.size, pull_priority, sources));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(channel_.Call(frame, proto::Body::PlasmaGetReply, &storage, &env));
  auto* r = env->body_as_PlasmaGetReply();
  if (!r->objects() || r->objects()->size() != 1 || !r->objects()->Get(0)->found()) {
    // Present but not restorable from spill (no room): the store says why.
    if (r->objects() && r->objects()->size() == 1 && r->objects()->Get(0)->code() != 0)
      return Status(static_cast<StatusCode>(r->objects()->Get(0)->code()), Str(r->objects()->Get(0)->message()));
    return Status::ObjectLost("object " + id.Hex() + " is not in the object store");
  }
  auto* o = r->objects()->Get(0);
  PlasmaView view{o->offset(), o->size()};
  {
    MutexLock lock(&pins_mu_);
    Pin& p = pins_[id];
    p.count++;
    p.view = view;
  }
  return view;
}

void PlasmaClient::Release(const ObjectID& id) {
  {
    MutexLock lock(&pins_mu_);
    auto it = pins_.find(id);
    if (it != pins_.end() && --it->second.count == 0) pins_.erase(it);
  }
  SendRelease(id);
}

size_t PlasmaClient::num_pinned() const {
  MutexLock lock(&pins_mu_);
  return pins_.size();
}

void PlasmaClient::Close() {
  channel_.Close();
  if (!store_) return;
  std::vector<std::pair<uint64_t, uint64_t>> keep;
  {
    MutexLock lock(&pins_mu_);
    for (auto& [id, p] : pins_) keep.emplace_back(p.view.offset, p.view.size);
  }
  store_->DropShared(keep);
}

void PlasmaClient::SendRelease(const ObjectID& id) {
  Fbb fbb(64);
  auto oid = IdBytes(fbb, id);
  // Best effort: a closed channel means the node is gone and so is the copy.
  (void)channel_.Send(FinishFrame(fbb, proto::CreatePlasmaRelease(fbb, oid)));
}

bool PlasmaClient::Contains(const ObjectID& id) {
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaGet(fbb, 0, oid, 0));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  if (!channel_.Call(frame, proto::Body::PlasmaGetReply, &storage, &env).ok()) return false;
  auto* r = env->body_as_PlasmaGetReply();
  bool found = r->objects() && r->objects()->size() == 1 && r->objects()->Get(0)->found();
  if (found) SendRelease(id);  // best effort; never counted as a pin
  return found;
}

#ifdef RAYTS_TEST_HOOKS
Status PlasmaClient::Lose(const ObjectID& id) {
  Fbb fbb(64);
  auto frame = FinishFrame(fbb, proto::CreatePlasmaLose(fbb, IdBytes(fbb, id)));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(channel_.Call(frame, proto::Body::Ack, &storage, &env));
  auto* a = env->body_as_Ack();
  return FromCode(a->code(), a->message());
}
#endif

}  // namespace rayts
