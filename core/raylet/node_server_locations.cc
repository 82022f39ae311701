// NodeServer in cluster mode: the copies this node holds of objects owned
// elsewhere, reported to their owners (Ray's object directory is
// owner-based: the owner keeps each object's locations).
//
// A process of this node that may pull an object (PlasmaGet or FetchObject
// naming another node) first names its owner (ObjectOwner). When the pulled
// copy is sealed here, and again when it leaves the store (evicted or
// deleted other than by its owner's free), the node queues the change for
// that owner; every 100 ms (at once past kMaxBatchIds ids) it sends each
// owner one ObjectLocationsUpdate{node_id, added, removed} over a
// connection to the owner's listen socket (unix on this node, TCP with
// AuthHello otherwise), opened on first use. PinObjects makes a copy here
// the primary (its owner's primary node died).
// See docs/cluster.md ("Objects across nodes").
#include "core/protocol/peer_address.h"
#include "core/protocol/peer_auth.h"
#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
constexpr auto kReportPeriod = std::chrono::milliseconds(100);
constexpr size_t kMaxBatchIds = 1024;            // a batch this large goes at once
constexpr size_t kMaxPendingOwners = 1u << 16;   // pull_owner_ bound (pulls that never started)
}  // namespace

void NodeServer::OnObjectOwner(const proto::ObjectOwner& r) {
  if (!r.object_id() || r.object_id()->size() != ObjectID::kSize || !r.owner_address()) return;
  const ObjectID id = ObjectID::FromBytes(r.object_id()->data());
  // Here already (a copy or the primary): nothing will be pulled.
  if (store_->Contains(id) || copy_owner_.count(id)) return;
  if (pull_owner_.size() >= kMaxPendingOwners) pull_owner_.clear();  // stale: pulls that never started
  pull_owner_[id] = r.owner_address()->str();
}

void NodeServer::NoteCopySealed(const ObjectID& id) {
  auto it = pull_owner_.find(id);
  if (it == pull_owner_.end()) return;
  std::string owner = std::move(it->second);
  pull_owner_.erase(it);
  QueueLocationReport(owner, id, /*added=*/true);
  copy_owner_.insert_or_assign(id, std::move(owner));
}

void NodeServer::NoteCopyFreed(const ObjectID& id) {
  pull_owner_.erase(id);  // an aborted pull
  auto it = copy_owner_.find(id);
  if (it == copy_owner_.end()) return;
  std::string owner = std::move(it->second);
  copy_owner_.erase(it);
  QueueLocationReport(owner, id, /*added=*/false);
}

void NodeServer::QueueLocationReport(const std::string& owner, const ObjectID& id, bool added) {
  if (stopped_) return;
  LocationBatch& b = location_batches_[owner];
  (added ? b.added : b.removed).append(reinterpret_cast<const char*>(id.data()), ObjectID::kSize);
  if (++location_batch_ids_ >= kMaxBatchIds) {
    FlushLocationReports();
    return;
  }
  if (location_timer_armed_) return;
  if (!location_timer_) location_timer_ = std::make_unique<asio::steady_timer>(io_);
  location_timer_armed_ = true;
  location_timer_->expires_after(kReportPeriod);
  location_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    FlushLocationReports();
  });
}

void NodeServer::FlushLocationReports() {
  location_timer_armed_ = false;
  if (location_timer_) location_timer_->cancel();
  auto batches = std::move(location_batches_);
  location_batches_.clear();
  location_batch_ids_ = 0;
  for (auto& [owner, b] : batches) {
    auto link = OwnerLink(owner);
    if (!link) continue;  // the owner is gone: so is its interest in the copies
    Fbb fbb(128 + b.added.size() + b.removed.size());
    auto node = fbb.CreateVector(node_id_.data(), NodeID::kSize);
    auto added = fbb.CreateVector(reinterpret_cast<const uint8_t*>(b.added.data()), b.added.size());
    auto removed = fbb.CreateVector(reinterpret_cast<const uint8_t*>(b.removed.data()), b.removed.size());
    link->Send(FinishFrame(fbb, proto::CreateObjectLocationsUpdate(fbb, node, added, removed)));
  }
}

std::shared_ptr<Connection> NodeServer::OwnerLink(const std::string& owner) {
  auto it = owner_links_.find(owner);
  if (it != owner_links_.end() && !it->second->closed()) return it->second;
  PeerAddress a = ParsePeerAddress(owner);
  std::shared_ptr<Connection> conn;
  if (!a.path.empty() && (!a.has_tcp() || OnNodeOf(owner, opts_.socket_path))) {
    auto sock = ConnectUnix(io_, a.path);
    if (!sock.ok()) return nullptr;
    conn = std::make_shared<Connection>(std::move(*sock));
  } else if (a.has_tcp()) {
    auto sock = StartPeerConnect(io_, TcpAddress(a.host, a.port));
    if (!sock.ok()) return nullptr;
    conn = std::make_shared<Connection>(std::move(*sock));
    conn->Send(AuthHelloFrame(opts_.auth_token, proto::PeerRole::Node));
  } else {
    return nullptr;
  }
  conn->SetMaxFrameBytes(PeerLimits{}.max_frame_bytes);
  std::weak_ptr<Connection> weak = conn;
  conn->Start([](const proto::Envelope&) {},
              [this, owner, weak](const Status&) {
                if (stopped_) return;
                auto it = owner_links_.find(owner);
                if (it != owner_links_.end() && it->second == weak.lock()) owner_links_.erase(it);
              });
  owner_links_.insert_or_assign(owner, conn);
  return conn;
}

void NodeServer::HandlePinObjects(const std::shared_ptr<Client>& c, const proto::PinObjects& r) {
  auto* ids = r.object_ids();
  if (!ids || ids->size() % ObjectID::kSize != 0) return;
  auto pin_here = [this, ids] {
    for (size_t i = 0; i < ids->size(); i += ObjectID::kSize) {
      const ObjectID id = ObjectID::FromBytes(ids->data() + i);
      copy_owner_.erase(id);  // the primary now: its owner frees it, no report
      if (!store_->Pin(id)) NodeLog(node_id_, "cannot make object " + id.Hex() + " primary here: it is not in the store");
    }
  };
  if (c->remote) {
    pin_here();
    return;
  }
  auto* nodes = r.node_ids();
  if (!nodes) return;
  for (size_t i = 0; i + NodeID::kSize <= nodes->size(); i += NodeID::kSize) {
    const NodeID node = NodeID::FromBytes(nodes->data() + i);
    if (node == node_id_) {
      pin_here();
      continue;
    }
    auto link = PeerNodeLink(node);
    if (!link) continue;
    Fbb fbb(128);
    auto v = fbb.CreateVector(ids->data(), ids->size());
    link->Send(FinishFrame(fbb, proto::CreatePinObjects(fbb, v)));
  }
}

}  // namespace rayts::raylet
